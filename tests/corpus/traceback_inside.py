"""The script prints tracebacks itself (traceback.print_exc) for errors raised in what its loops iterate."""

import sys
import traceback


def records():
    for i in range(4):
        if i == 2:
            raise ValueError("bad record 2")
        yield i


class Reader:
    def __init__(self):
        self.pos = 0

    def __iter__(self):
        return self

    def __next__(self):
        self.pos += 1
        if self.pos == 2:
            raise KeyError("missing field")
        if self.pos > 3:
            raise StopIteration
        return self.pos


for source in (records, Reader):
    try:
        for item in source():
            print("item", item)
    except Exception:
        traceback.print_exc()
        print("stack depth inside except:", len(traceback.extract_tb(sys.exc_info()[2])))


def inner_frames():
    frames = []
    for item in (sys._getframe(0).f_back.f_code.co_name for _ in range(1)):
        frames.append(item)
    gen = (sys._getframe(1).f_code.co_name for _ in range(1))
    for name in gen:
        frames.append(name)
    return frames


print("callers seen from generators", inner_frames())
try:
    [1 / x for x in (1, 0)]
except ZeroDivisionError:
    print("".join(traceback.format_exc().splitlines(keepends=True)[1:]), end="")
