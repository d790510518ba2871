"""A character bigram model in pure Python, trained by minibatch SGD on a stdlib module's source.

No numpy, no torch, no main(): plain module code with the epoch loop at top level, the global ``random``
for shuffling and sampling, nested lists for weights, and loops four deep (epochs, batches, examples,
vocabulary).
"""

import argparse
import math
import os
import random
import sysconfig

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--epochs", type=int, default=10)
parser.add_argument("--chars", type=int, default=12000, help="characters of text to train on")
parser.add_argument("--batch-size", type=int, default=32)
parser.add_argument("--lr", type=float, default=10.0, help="SGD step size on batch-mean gradients")
parser.add_argument("--decay", type=float, default=0.9, help="learning rate multiplier per epoch")
parser.add_argument("--seed", type=int, default=3)
parser.add_argument("--quick", action="store_true", help="tiny corpus, for smoke tests")
args = parser.parse_args()
if args.quick:
    args.chars = 2000

random.seed(args.seed)

with open(os.path.join(sysconfig.get_paths()["stdlib"], "heapq.py"), encoding="utf-8") as f:
    text = f.read()[: args.chars]
vocab = sorted(set(text))
index = {ch: i for i, ch in enumerate(vocab)}
pairs = [(index[a], index[b]) for a, b in zip(text, text[1:], strict=False)]
split = int(0.9 * len(pairs))
train, val = pairs[:split], pairs[split:]
V = len(vocab)
print(f"corpus: {len(train)} train / {len(val)} val pairs, vocabulary {V}")


def softmax(row):
    top = max(row)
    exps = [math.exp(w - top) for w in row]
    total = sum(exps)
    return [e / total for e in exps]


def mean_nll(weights, pairs):
    """Average negative log-likelihood of the next character."""
    return -sum(math.log(softmax(weights[prev])[nxt]) for prev, nxt in pairs) / len(pairs)


def sample_next(row, temperature):
    """Draw an index from softmax(row / temperature) by walking the cumulative distribution."""
    probs = softmax([w / temperature for w in row])
    r = random.random()
    j, acc = 0, probs[0]
    while acc < r and j < len(probs) - 1:
        j += 1
        acc += probs[j]
    return j


weights = [[0.0] * V for _ in range(V)]
lr = args.lr
for epoch in range(args.epochs):
    random.shuffle(train)
    total = 0.0
    for start in range(0, len(train), args.batch_size):
        batch = train[start : start + args.batch_size]
        grads = {}
        for prev, nxt in batch:
            probs = softmax(weights[prev])
            total -= math.log(probs[nxt])
            grad = grads.setdefault(prev, [0.0] * V)
            for j in range(V):
                grad[j] += probs[j] - (j == nxt)
        scale = lr / len(batch)
        for prev, grad in grads.items():
            row = weights[prev]
            for j in range(V):
                row[j] -= scale * grad[j]
    val_ppl = math.exp(mean_nll(weights, val))
    print(f"epoch {epoch}: train_nll={total / len(train):.4f} val_ppl={val_ppl:.3f} lr={lr:.3f}")
    lr *= args.decay

out = [index["d"] if "d" in index else 0]
while len(out) < 80:
    out.append(sample_next(weights[out[-1]], temperature=0.7))
print("sample:", repr("".join(vocab[i] for i in out)))
