"""A while epoch loop with early stopping and batch loops inside."""

values = [9.0, 4.0, 7.0, 1.0]
target = 5.0
epoch = 0
best, patience, bad = float("inf"), 2, 0
while epoch < 20:
    for i in range(len(values)):
        values[i] += 0.3 * (target - values[i])
    loss = 0.0
    for v in values:
        loss += (v - target) ** 2
    print(f"epoch {epoch} loss {loss:.10f}")
    if loss < best - 0.5:
        best, bad = loss, 0
    else:
        bad += 1
        if bad >= patience:
            print("early stop at epoch", epoch)
            break
    epoch += 1
else:
    print("ran out of epochs")
print([round(v, 6) for v in values])
