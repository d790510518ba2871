"""Training restarted after a crash: the epoch loop sits in a retry loop, and epochs end in unusual ways."""

state = {"w": 0.0, "epoch": 0}
for attempt in range(3):
    try:
        for epoch in range(state["epoch"], 6):
            for step in range(4):
                state["w"] += 0.25
                if attempt == 0 and epoch == 2 and step == 1:
                    raise MemoryError("simulated out-of-memory")
            state["epoch"] = epoch + 1
            print("attempt", attempt, "epoch", epoch, "w", state["w"])
        break
    except MemoryError as exc:
        print("attempt", attempt, "crashed:", exc, "- resuming from epoch", state["epoch"])

for epoch in range(5):
    epoch += 100
    for step in range(2):
        if epoch == 103:
            break
    else:
        continue
    print("broke out mid-epoch at", epoch, "step", step)
    break

epochs = [0, 1]
for epoch in epochs:
    for step in range(2):
        pass
    if len(epochs) < 4:
        epochs.append(epoch + 2)
print("epochs grew to", epochs)
