"""Line numbers as Python reports them in loops: frames, tracebacks, sys.settrace events, source lookups."""

import inspect
import sys
import traceback


def here():
    return sys._getframe(1).f_lineno


def make(n):
    if n < 0:
        raise ValueError("negative")
    return range(n)


def traced(n):
    total = 0
    for i in range(n):
        if i % 2:
            continue
        total += i
    while total > 1:
        total //= 2
    return total


def multi_line_header(n):
    seen = []
    for (
        i,
        v,
    ) in enumerate(
        make(n),
    ):
        seen.append((i, v, here()))
    return seen


lines = []
for i in range(2):
    lines.append(here())
    for j in range(1):
        lines.append(here())
print("f_lineno in loops", lines)
print("multi-line header", multi_line_header(2))

try:
    for x in make(-1):
        pass
except ValueError:
    tb = sys.exc_info()[2]
    print("tb lines", [t.lineno for t in traceback.extract_tb(tb)])

events = []


def tracer(frame, event, arg):
    if frame.f_code.co_filename == __file__ and frame.f_code.co_name == "traced":
        events.append((event, frame.f_lineno - traced.__code__.co_firstlineno))
        return tracer
    return None


sys.settrace(tracer)
result = traced(5)
sys.settrace(None)
print("traced result", result)
print("trace events", events)
print("firstlineno", traced.__code__.co_firstlineno, multi_line_header.__code__.co_firstlineno)
print("source", inspect.getsource(traced).splitlines()[2])
gen = (here() for _ in range(2))
print("genexp lines", list(gen))
