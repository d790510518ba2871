"""A torch MLP with epochs of about half a second and 1.3 MB of state: the workload of issue 12.

Written like a user's script (no flortrace in it): synthetic data from a seeded generator, a three-layer MLP
(about 85k parameters: with gradients and Adam's two moments, 1.3 MB), Adam, a per-epoch print. With the
default 90 batches an epoch trains for about half a second on the 2-core development VM (``--steps``).
"""

import argparse

import torch
from torch import nn

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--epochs", type=int, default=12)
parser.add_argument("--steps", type=int, default=90, help="batches per epoch")
parser.add_argument("--batch-size", type=int, default=256)
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()

torch.manual_seed(args.seed)
torch.set_num_threads(1)
inputs = torch.randn(4096, 64)
targets = (inputs[:, :10] * inputs[:, 10:20]).argmax(dim=1)
model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
loss_fn = nn.CrossEntropyLoss()


def train_epoch():
    model.train()
    total = 0.0
    for _ in range(args.steps):
        idx = torch.randint(0, len(inputs), (args.batch_size,))
        loss = loss_fn(model(inputs[idx]), targets[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += loss.item()
    return total / args.steps


for epoch in range(args.epochs):
    loss = train_epoch()
    with torch.no_grad():
        acc = (model(inputs).argmax(dim=1) == targets).float().mean().item()
    print(f"epoch {epoch}: loss {loss:.4f} acc {acc:.3f}")
