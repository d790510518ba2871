# argv: cause => 1
# argv: context => 1
# argv: suppressed => 1
# argv: notes => 1
"""Chained exceptions escaping from loops: raise X from Y, implicit context, from None, and notes."""

import sys


class TrainingError(Exception):
    pass


def parse(values):
    out = []
    for v in values:
        out.append(int(v))
    return out


def run(kind):
    for epoch in range(2):
        try:
            parse(["1", "2", "x" if epoch == 1 else "3"])
        except ValueError as exc:
            if kind == "cause":
                raise TrainingError(f"epoch {epoch} failed") from exc
            if kind == "suppressed":
                raise TrainingError("no context shown") from None
            if kind == "notes" and hasattr(exc, "add_note"):
                exc.add_note(f"while parsing epoch {epoch}")
                raise
            {}["missing"]
        print("epoch", epoch, "ok")


run(sys.argv[1])
