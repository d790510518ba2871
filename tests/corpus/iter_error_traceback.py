"""r08: errors raised by iter() in outermost loops and blocks (a non-iterable, a user __iter__ that
raises) show only the user's frames in the tracebacks a program prints; the run goes on normally."""

import traceback


class NoIter:
    def __iter__(self):
        raise ValueError("no iteration here")


def loop_over(x):
    for _ in x:
        pass


for bad in (5, None, NoIter()):
    try:
        loop_over(bad)
    except (TypeError, ValueError):
        traceback.print_exc()


def train(bad_epoch):
    total = 0
    for epoch in range(3):
        try:
            for step in NoIter() if epoch == bad_epoch else range(2):
                total += step
        except ValueError:
            traceback.print_exc()
    return total


print(train(1))
