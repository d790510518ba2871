"""Pretrain a small conv backbone on digits 0-4, freeze it, and fine-tune a new head on digits 5-9.

Two epoch loops run one after the other. In the second, the backbone's parameters never change: only the
new head and its optimizer move. The DataLoaders shuffle with their own seeded ``torch.Generator``.
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


def make_backbone(width):
    """Conv feature extractor mapping 1x8x8 images to a 64-d feature vector."""
    return nn.Sequential(
        nn.Conv2d(1, width, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.Conv2d(width, 2 * width, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(2 * width * 4 * 4, 64),
        nn.ReLU(),
    )


def task_loaders(images, labels, digits, batch_size, seed):
    """Train/test loaders for the images whose label is in ``digits``, relabelled 0..len(digits)-1."""
    mask = np.isin(labels, digits)
    x, y = images[mask], labels[mask] - min(digits)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=seed, stratify=y)

    def to_dataset(x, y):
        return TensorDataset(torch.from_numpy(x).unsqueeze(1), torch.from_numpy(y).long())

    shuffler = torch.Generator().manual_seed(seed)
    train = DataLoader(to_dataset(x_train, y_train), batch_size=batch_size, shuffle=True, generator=shuffler)
    test = DataLoader(to_dataset(x_test, y_test), batch_size=256)
    return train, test


def train_epoch(model, loader, opt):
    """One epoch of SGD; returns the mean training loss."""
    model.train()
    total, seen = 0.0, 0
    for x, y in loader:
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        total += loss.item() * len(y)
        seen += len(y)
    return total / seen


def evaluate(model, loader):
    """Accuracy on ``loader``."""
    model.eval()
    correct, seen = 0, 0
    with torch.no_grad():
        for x, y in loader:
            correct += (model(x).argmax(dim=1) == y).sum().item()
            seen += len(y)
    return correct / seen


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8, help="epochs of fine-tuning")
    parser.add_argument("--pretrain-epochs", type=int, default=None, help="defaults to --epochs")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.02)
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="small subset and backbone, for smoke tests")
    args = parser.parse_args()
    pretrain_epochs = args.epochs if args.pretrain_epochs is None else args.pretrain_epochs

    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)

    digits = load_digits()
    images = digits.images.astype(np.float32) / 16.0
    labels = digits.target
    if args.quick:
        images, labels = images[:600], labels[:600]

    backbone = make_backbone(width=8 if args.quick else 16)

    pre_train, pre_test = task_loaders(images, labels, [0, 1, 2, 3, 4], args.batch_size, args.seed)
    pre_model = nn.Sequential(backbone, nn.Linear(64, 5))
    opt = torch.optim.SGD(pre_model.parameters(), lr=args.lr, momentum=args.momentum)
    for epoch in range(pretrain_epochs):
        loss = train_epoch(pre_model, pre_train, opt)
        acc = evaluate(pre_model, pre_test)
        print(f"pretrain epoch {epoch}: loss={loss:.4f} acc={acc:.4f}")

    backbone.requires_grad_(False)
    head = nn.Linear(64, 5)
    model = nn.Sequential(backbone, head)
    frozen = sum(p.numel() for p in backbone.parameters())
    print(f"frozen backbone: {frozen} parameters; training head: {sum(p.numel() for p in head.parameters())}")

    ft_train, ft_test = task_loaders(images, labels, [5, 6, 7, 8, 9], args.batch_size, args.seed)
    opt = torch.optim.SGD(head.parameters(), lr=args.lr, momentum=args.momentum)
    for epoch in range(args.epochs):
        loss = train_epoch(model, ft_train, opt)
        acc = evaluate(model, ft_test)
        print(f"finetune epoch {epoch}: loss={loss:.4f} acc={acc:.4f}")


if __name__ == "__main__":
    main()
