"""Train a character-level LSTM language model on the source code of a stdlib module.

Batches are random windows drawn with the torch RNG, gradients are clipped, validation perplexity is
printed every epoch, and a short greedy sample is printed at the end.
"""

import argparse
import inspect
import math
import random
import textwrap

import torch
import torch.nn.functional as F
from torch import nn


class CharLSTM(nn.Module):
    """Embedding, one LSTM layer, dropout, and a linear read-out over the vocabulary."""

    def __init__(self, vocab_size, embed_dim=32, hidden=128, dropout=0.1):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.lstm = nn.LSTM(embed_dim, hidden, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, vocab_size)

    def forward(self, tokens, state=None):
        out, state = self.lstm(self.embed(tokens), state)
        return self.head(self.dropout(out)), state


def load_corpus(quick):
    """Return (train ids, validation ids, vocabulary) built from a stdlib module's source."""
    text = inspect.getsource(textwrap)
    if quick:
        text = text[:6000]
    vocab = sorted(set(text))
    ids = torch.tensor([vocab.index(ch) for ch in text], dtype=torch.long)
    split = int(0.9 * len(ids))
    return ids[:split], ids[split:], vocab


def get_batch(data, seq_len, batch_size):
    """Sample random windows; targets are the inputs shifted by one character."""
    starts = torch.randint(0, len(data) - seq_len - 1, (batch_size,))
    x = torch.stack([data[s : s + seq_len] for s in starts.tolist()])
    y = torch.stack([data[s + 1 : s + seq_len + 1] for s in starts.tolist()])
    return x, y


def train_epoch(model, data, opt, args):
    """Run ``args.steps`` optimisation steps on random windows; returns the mean loss."""
    model.train()
    total = 0.0
    for _ in range(args.steps):
        x, y = get_batch(data, args.seq_len, args.batch_size)
        logits, _ = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        opt.step()
        total += loss.item()
    return total / args.steps


def evaluate(model, data, seq_len):
    """Perplexity over consecutive, non-overlapping windows of ``data``."""
    model.eval()
    nll, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(data) - seq_len - 1, seq_len):
            x = data[start : start + seq_len].unsqueeze(0)
            y = data[start + 1 : start + seq_len + 1].unsqueeze(0)
            logits, _ = model(x)
            nll += F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1), reduction="sum").item()
            count += y.numel()
    return math.exp(nll / count)


def sample(model, vocab, prompt, length):
    """Greedy decoding: feed the prompt, then repeatedly append the most likely next character."""
    model.eval()
    out = list(prompt)
    with torch.no_grad():
        logits, state = model(torch.tensor([[vocab.index(ch) for ch in prompt]]))
        for _ in range(length):
            nxt = int(logits[0, -1].argmax())
            out.append(vocab[nxt])
            logits, state = model(torch.tensor([[nxt]]), state)
    return "".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--steps", type=int, default=40, help="optimisation steps per epoch")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--clip", type=float, default=1.0, help="max gradient norm")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--quick", action="store_true", help="tiny corpus and model, for smoke tests")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.seq_len, args.hidden = 8, 32, 48

    random.seed(args.seed)
    torch.manual_seed(args.seed)

    train_data, val_data, vocab = load_corpus(args.quick)
    print(f"corpus: {len(train_data)} train / {len(val_data)} val characters, vocabulary {len(vocab)}")

    model = CharLSTM(len(vocab), hidden=args.hidden)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)

    for epoch in range(args.epochs):
        train_loss = train_epoch(model, train_data, opt, args)
        val_ppl = evaluate(model, val_data, args.seq_len)
        print(f"epoch {epoch}: train_loss={train_loss:.4f} val_ppl={val_ppl:.3f}")

    print("sample:", repr(sample(model, vocab, "def ", 60)))


if __name__ == "__main__":
    main()
