# argv: int3 => 3
# argv: message => 1
# argv: bare
# argv: none
# argv: list => 1
# argv: true => 1
# argv: big => 7
# argv: negative => 255
# argv: builtin_exit => 5
"""sys.exit and SystemExit in their many forms, raised from inside loops with finally clauses pending."""

import sys

VALUES = {
    "int3": 3,
    "message": "fatal: giving up",
    "none": None,
    "list": ["a", 1],
    "true": True,
    "big": 256 + 7,
    "negative": -1,
    "zero": 0,
}


def train(kind):
    for epoch in range(5):
        try:
            for step in range(3):
                if epoch == 2 and step == 1:
                    print("exiting at", epoch, step, flush=True)
                    if kind == "bare":
                        raise SystemExit
                    if kind == "builtin_exit":
                        exit(5)
                    sys.exit(VALUES[kind])
        finally:
            print("finally in epoch", epoch)


print("start")
train(sys.argv[1])
print("not reached")
