# needs: numpy
"""Softmax regression in numpy: in-place updates, views that alias the weights, both random APIs."""

import numpy as np

np.random.seed(0)
rng = np.random.default_rng(42)
x = rng.normal(size=(60, 4))
labels = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int64) + (x[:, 2] > 1).astype(np.int64)
w = np.zeros((4, 3))
b = np.zeros(3)
first_row = w[0]
velocity = np.zeros_like(w)
history = np.empty(0)
for epoch in range(4):
    order = rng.permutation(len(x))
    for start in range(0, len(x), 16):
        idx = order[start : start + 16]
        logits = x[idx] @ w + b
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        p[np.arange(len(idx)), labels[idx]] -= 1
        grad = x[idx].T @ p / len(idx)
        velocity *= 0.9
        velocity += grad
        w -= 0.5 * velocity
        b -= 0.5 * p.mean(axis=0)
    noise = np.random.rand()
    acc = float(((x @ w + b).argmax(axis=1) == labels).mean())
    history = np.append(history, acc)
    print(f"epoch {epoch} acc {acc:.4f} noise {noise:.8f} w00 {w[0, 0]:.10f}")
print("view still aliases", np.shares_memory(first_row, w), np.array_equal(first_row, w[0]))
print(np.round(w, 8).tolist(), np.round(b, 8).tolist(), history.tolist())
print(np.random.rand(2).round(8).tolist(), rng.integers(0, 100, 3).tolist())
