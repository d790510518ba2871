"""Three loops deep in pure Python: epochs, batches, features (linear regression by SGD)."""

import random

rng = random.Random(7)
true_w = [0.5, -1.25, 2.0]
data = []
for _ in range(24):
    x = [rng.uniform(-1, 1) for _ in true_w]
    y = sum(w * xi for w, xi in zip(true_w, x)) + rng.gauss(0, 0.01)
    data.append((x, y))

w = [0.0, 0.0, 0.0]
lr = 0.2
batch_size = 6
losses = []
for epoch in range(4):
    rng.shuffle(data)
    epoch_loss = 0.0
    for start in range(0, len(data), batch_size):
        batch = data[start : start + batch_size]
        grad = [0.0] * len(w)
        for x, y in batch:
            err = sum(wk * xk for wk, xk in zip(w, x)) - y
            epoch_loss += err * err
            for k in range(len(w)):
                grad[k] += 2 * err * x[k] / len(batch)
        for k in range(len(w)):
            w[k] -= lr * grad[k]
    losses.append(epoch_loss / len(data))
    print(f"epoch {epoch}: loss {epoch_loss / len(data):.6f} w {[round(v, 5) for v in w]}")
print("final", [round(v, 8) for v in w], "best", min(losses) == losses[-1])
