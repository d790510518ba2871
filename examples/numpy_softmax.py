"""A numpy-only one-hidden-layer softmax classifier on scikit-learn's 8x8 digits.

The epoch loop lives inside ``SoftmaxMLP.fit``; minibatch order and dropout masks come from the model's
own ``np.random.Generator``; weights are attributes updated in place. No torch anywhere.
"""

import argparse

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


def softmax(logits):
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


class SoftmaxMLP:
    """ReLU hidden layer with inverted dropout, softmax output, SGD with L2 weight decay."""

    def __init__(self, n_in, n_hidden, n_out, lr=0.1, decay=0.95, weight_decay=1e-4, dropout=0.2, seed=0):
        self.rng = np.random.default_rng(seed)
        self.W1 = self.rng.normal(0.0, np.sqrt(2.0 / n_in), size=(n_in, n_hidden))
        self.b1 = np.zeros(n_hidden)
        self.W2 = self.rng.normal(0.0, np.sqrt(1.0 / n_hidden), size=(n_hidden, n_out))
        self.b2 = np.zeros(n_out)
        self.lr = lr
        self.decay = decay
        self.weight_decay = weight_decay
        self.dropout = dropout
        self.history = []

    def forward(self, X, train=False):
        hidden = np.maximum(X @ self.W1 + self.b1, 0.0)
        if train and self.dropout:
            keep = self.rng.random(hidden.shape) >= self.dropout
            hidden = hidden * keep / (1.0 - self.dropout)
        return hidden, softmax(hidden @ self.W2 + self.b2)

    def train_step(self, X, y):
        """One SGD step on a minibatch; returns its mean cross-entropy."""
        hidden, probs = self.forward(X, train=True)
        loss = -np.log(probs[np.arange(len(y)), y] + 1e-12).mean()
        dlogits = probs
        dlogits[np.arange(len(y)), y] -= 1.0
        dlogits /= len(y)
        dW2 = hidden.T @ dlogits + self.weight_decay * self.W2
        dhidden = (dlogits @ self.W2.T) * (hidden > 0)
        dW1 = X.T @ dhidden + self.weight_decay * self.W1
        self.W2 -= self.lr * dW2
        self.b2 -= self.lr * dlogits.sum(axis=0)
        self.W1 -= self.lr * dW1
        self.b1 -= self.lr * dhidden.sum(axis=0)
        return loss

    def fit(self, X, y, epochs, batch_size=32, validation=None):
        """Train for ``epochs`` passes over shuffled minibatches, printing a line per epoch."""
        for epoch in range(epochs):
            order = self.rng.permutation(len(X))
            total = 0.0
            for start in range(0, len(X), batch_size):
                batch = order[start : start + batch_size]
                total += self.train_step(X[batch], y[batch]) * len(batch)
            line = f"epoch {epoch}: train_loss={total / len(X):.4f} lr={self.lr:.4f}"
            if validation is not None:
                val_loss, val_acc = self.evaluate(*validation)
                line += f" val_loss={val_loss:.4f} val_acc={val_acc:.4f}"
            print(line)
            self.history.append(total / len(X))
            self.lr *= self.decay
        return self

    def evaluate(self, X, y, batch_size=256):
        """Return (mean cross-entropy, accuracy), computed in batches."""
        nll, correct = 0.0, 0
        for start in range(0, len(X), batch_size):
            xb, yb = X[start : start + batch_size], y[start : start + batch_size]
            _, probs = self.forward(xb)
            nll -= np.log(probs[np.arange(len(yb)), yb] + 1e-12).sum()
            correct += int((probs.argmax(axis=1) == yb).sum())
        return nll / len(X), correct / len(X)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="small subset, for smoke tests")
    args = parser.parse_args()

    digits = load_digits()
    X, y = digits.data / 16.0, digits.target
    if args.quick:
        X, y = X[:400], y[:400]
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.2, random_state=args.seed, stratify=y
    )

    model = SoftmaxMLP(X.shape[1], args.hidden, 10, lr=args.lr, seed=args.seed)
    model.fit(X_train, y_train, args.epochs, batch_size=args.batch_size, validation=(X_test, y_test))
    test_loss, test_acc = model.evaluate(X_test, y_test)
    print(f"test: loss={test_loss:.4f} acc={test_acc:.4f}")


if __name__ == "__main__":
    main()
