# argv: --epochs 3 --lr 0.5
# argv: --help
# argv: --epochs many => 2
# argv: --bogus => 2
"""argparse reading sys.argv: its prog name, --help (exit 0) and errors (exit 2) go through as usual."""

import argparse

parser = argparse.ArgumentParser(description="toy trainer")
parser.add_argument("--epochs", type=int, default=2, help="how many epochs")
parser.add_argument("--lr", type=float, default=0.1)
parser.add_argument("-q", action="store_true", help="quiet")
args = parser.parse_args()
w = 1.0
for epoch in range(args.epochs):
    for step in range(2):
        w -= args.lr * w
    print(parser.prog, "epoch", epoch, round(w, 8))
