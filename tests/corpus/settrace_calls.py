# known: all | hooks and the loop stack are Python functions
"""r13: a sys.settrace tool sees the calls made while a loop runs."""
import sys

calls = []


def tracer(frame, event, arg):
    if event == "call":
        calls.append(frame.f_code.co_name)


def work(n):
    s = 0
    for i in range(n):
        s += i
    return s


sys.settrace(tracer)
work(3)
sys.settrace(None)
print(calls)
