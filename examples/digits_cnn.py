"""Train a small CNN on scikit-learn's bundled 8x8 handwritten digits.

A typical PyTorch script: argparse flags, a DataLoader with ``shuffle=True`` driven by the global seed,
Adam with a StepLR schedule, dropout (so train/eval mode and the RNG matter), and a per-epoch report.
"""

import argparse
import random

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class DigitsCNN(nn.Module):
    """Two 3x3 convolutions, one max-pool, and a dropout-regularised classifier head."""

    def __init__(self, channels=16, hidden=64, dropout=0.25):
        super().__init__()
        self.conv1 = nn.Conv2d(1, channels, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(channels, 2 * channels, kernel_size=3, padding=1)
        self.dropout = nn.Dropout(dropout)
        self.fc1 = nn.Linear(2 * channels * 4 * 4, hidden)
        self.fc2 = nn.Linear(hidden, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = self.dropout(torch.flatten(x, 1))
        x = self.dropout(F.relu(self.fc1(x)))
        return self.fc2(x)


def load_data(quick, seed):
    """Return (train, test) TensorDatasets of 1x8x8 images scaled to [0, 1]."""
    digits = load_digits()
    images = digits.images.astype(np.float32) / 16.0
    labels = digits.target
    if quick:
        images, labels = images[:500], labels[:500]
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=0.2, random_state=seed, stratify=labels
    )

    def to_dataset(x, y):
        return TensorDataset(torch.from_numpy(x).unsqueeze(1), torch.from_numpy(y).long())

    return to_dataset(x_train, y_train), to_dataset(x_test, y_test)


def train_one_epoch(model, loader, opt):
    """One pass over the training set; returns the mean training loss."""
    model.train()
    total_loss, seen = 0.0, 0
    for images, labels in loader:
        opt.zero_grad()
        loss = F.cross_entropy(model(images), labels)
        loss.backward()
        opt.step()
        total_loss += loss.item() * len(labels)
        seen += len(labels)
    return total_loss / seen


def evaluate(model, loader):
    """Return (mean loss, accuracy) on a held-out loader."""
    model.eval()
    total_loss, correct, seen = 0.0, 0, 0
    with torch.no_grad():
        for images, labels in loader:
            logits = model(images)
            total_loss += F.cross_entropy(logits, labels, reduction="sum").item()
            correct += (logits.argmax(dim=1) == labels).sum().item()
            seen += len(labels)
    return total_loss / seen, correct / seen


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--step-size", type=int, default=4, help="StepLR period in epochs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="small subset and model, for smoke tests")
    args = parser.parse_args(argv)

    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)

    train_set, test_set = load_data(args.quick, args.seed)
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True)
    test_loader = DataLoader(test_set, batch_size=256)

    model = DigitsCNN(channels=8 if args.quick else 16)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=args.step_size, gamma=0.5)

    for epoch in range(1, args.epochs + 1):
        train_loss = train_one_epoch(model, train_loader, opt)
        test_loss, test_acc = evaluate(model, test_loader)
        lr = scheduler.get_last_lr()[0]
        scheduler.step()
        print(
            f"epoch {epoch}/{args.epochs}: train_loss={train_loss:.4f} "
            f"test_loss={test_loss:.4f} test_acc={test_acc:.4f} lr={lr:.2e}"
        )

    print(f"final test accuracy: {test_acc:.4f}")


if __name__ == "__main__":
    main()
