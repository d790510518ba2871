"""Two epoch loops in sequence (pretrain, then finetune), the second inside a function."""

import random

rng = random.Random(11)
weights = {"a": 1.0, "b": -1.0}
history = []

for epoch in range(3):
    for step in range(4):
        key = "a" if step % 2 == 0 else "b"
        weights[key] += rng.uniform(-0.1, 0.1)
    history.append(("pretrain", epoch, round(weights["a"] + weights["b"], 8)))
    print("pretrain epoch", epoch, {k: round(v, 8) for k, v in weights.items()})


def finetune(weights, epochs):
    frozen = weights["a"]
    for epoch in range(epochs):
        for step in range(3):
            weights["b"] = weights["b"] * 0.9 + 0.1 * frozen
        history.append(("finetune", epoch, round(weights["b"], 8)))
        print("finetune epoch", epoch, round(weights["b"], 8))
    return weights


finetune(weights, 2)
print(history)
