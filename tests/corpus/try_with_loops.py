"""try/except/finally and with-blocks inside and around loops; exceptions raised in loops caught outside."""

import contextlib
import io


class Suppress:
    def __init__(self, log):
        self.log = log

    def __enter__(self):
        self.log.append("enter")
        return self

    def __exit__(self, kind, value, tb):
        self.log.append(f"exit {kind.__name__ if kind else None}")
        return kind is ZeroDivisionError


def inverses(values):
    out = []
    for v in values:
        try:
            out.append(round(1 / v, 4))
        except ZeroDivisionError:
            out.append(None)
            continue
        finally:
            out.append("f")
    return out


def fails_in_loop(n):
    for i in range(n):
        for j in range(n):
            if i * j == 2:
                raise RuntimeError(f"bad cell {i},{j}")
    return "no failure"


def caller():
    try:
        fails_in_loop(4)
    except RuntimeError as exc:
        return f"caught: {exc}"


def broken_iterable():
    raise LookupError("no data")


class BadIterator:
    def __iter__(self):
        return self

    def __next__(self):
        raise OSError("disk gone")


class NotAnIterator:
    def __iter__(self):
        return 42


log = []
with Suppress(log):
    for i in range(5):
        log.append(i)
        if i == 2:
            1 / 0
print("suppressed around loop:", log)

log = []
for i in range(3):
    with Suppress(log):
        if i == 1:
            1 / 0
        log.append(f"body {i}")
print("suppressed inside loop:", log)

print(inverses([2, 0, 4]))
print(caller())

for label, make in [
    ("iterable raises", broken_iterable),
    ("next raises", BadIterator),
    ("not iterable", lambda: 5),
    ("iter returns non-iterator", NotAnIterator),
    ("none", lambda: None),
]:
    try:
        for _ in make():
            print("never")
    except Exception as exc:
        print(label, "->", type(exc).__name__, exc)

buf = io.StringIO()
with contextlib.redirect_stdout(buf):
    for i in range(3):
        print("captured", i)
print("captured text:", buf.getvalue().split("\n"))

try:
    try:
        for i in range(3):
            if i == 1:
                raise KeyError("inner")
    finally:
        print("finally after loop, i =", i)
except KeyError as exc:
    print("outer caught", exc)

attempts = 0
while True:
    attempts += 1
    try:
        if attempts < 3:
            raise ConnectionError(f"attempt {attempts}")
        print("succeeded after", attempts)
        break
    except ConnectionError as exc:
        print("retrying:", exc)
