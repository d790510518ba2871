# exit: 1
"""A script that installs its own sys.excepthook, then fails inside a loop."""

import sys


def hook(kind, value, tb):
    frames = []
    while tb is not None:
        frames.append(tb.tb_frame.f_code.co_name)
        tb = tb.tb_next
    print(f"custom hook: {kind.__name__}: {value} frames={frames}", file=sys.stderr)


sys.excepthook = hook


def step(i):
    for k in range(i):
        if k == 2:
            raise ArithmeticError(f"step {i}")
    return i


for i in range(5):
    print("step", step(i))
