"""Nanoseconds per hooked loop iteration and per loop execution, flortrace's patched code vs tracing hooks.

The same pure-Python loops run plainly, as flortrace patches them (an active loop stack, no recorder: the
cost of the hooks themselves), under a minimal ``sys.settrace`` hook, and on 3.12+ under a minimal
``sys.monitoring`` hook on JUMP events (one per loop iteration). Three functions:

- ``two_deep``: an epoch loop around a block loop with an empty body: the block's iterations are hooked;
- ``three_deep_empty``: the same with an empty deeper loop in the block: one deeper-loop execution per
  block iteration, which flortrace sees once per execution and never per iteration;
- ``three_deep``: a three-deep loop whose innermost body does the work, as training code does.

Every function is timed in every mode in turn, several times, in CPU time of the thread (other processes
on a busy machine then cost less precision); the minimum of each is kept.
"""

from __future__ import annotations

import platform
import sys
from time import thread_time

from harness import Row, emit, fmt_overhead, parser

from flortrace.instrument.patch import instrument_module_code
from flortrace.runtime import hooks
from flortrace.runtime.session import Session

SOURCE = """
def two_deep(epochs, blocks):
    for e in range(epochs):
        for b in range(blocks):
            pass

def three_deep_empty(epochs, blocks):
    empty = ()
    for e in range(epochs):
        for b in range(blocks):
            for i in empty:
                pass

def three_deep(epochs, blocks, inner):
    total = 0
    for e in range(epochs):
        for b in range(blocks):
            for i in range(inner):
                total += i
    return total
"""
FILE = "bench_loops.py"


def load(patched: bool) -> dict:
    code = compile(SOURCE, FILE, "exec")
    if patched:
        code, _ = instrument_module_code(code, FILE, hooks.HOOKS, SOURCE)
    namespace: dict = {}
    exec(code, namespace)
    return namespace


def _tracer(frame, event, arg):
    return _tracer


class Mode:
    """How a function is run: which code, and what is switched on around the call."""

    def __init__(self, name: str, patched: bool):
        self.name, self.funcs = name, load(patched)

    def on(self):
        pass

    def off(self):
        pass

    def time(self, func: str, args: tuple) -> float:
        f = self.funcs[func]
        self.on()
        try:
            began = thread_time()
            f(*args)
            return thread_time() - began
        finally:
            self.off()


class Flortrace(Mode):
    def on(self):
        hooks.activate(Session())

    def off(self):
        hooks.deactivate()


class Settrace(Mode):
    def on(self):
        sys.settrace(_tracer)

    def off(self):
        sys.settrace(None)


class Monitoring(Mode):
    TOOL = 4  # ids 3 and 4 have no assigned role (0 debugger, 1 coverage, 2 profiler, 5 optimizer)

    def on(self):
        mon = sys.monitoring
        mon.use_tool_id(self.TOOL, "flortrace-bench")
        mon.register_callback(self.TOOL, mon.events.JUMP, lambda code, src, dst: None)
        mon.set_events(self.TOOL, mon.events.JUMP)

    def off(self):
        mon = sys.monitoring
        mon.set_events(self.TOOL, 0)
        mon.register_callback(self.TOOL, mon.events.JUMP, None)
        mon.free_tool_id(self.TOOL)


def modes() -> list[Mode]:
    out = [Mode("plain", False), Flortrace("flortrace", True), Settrace("settrace", False)]
    if hasattr(sys, "monitoring"):
        out.append(Monitoring("monitoring", False))
    return out


def best_times(modes_: list[Mode], func: str, args: tuple, repeats: int) -> dict[str, float]:
    """Minimum seconds of ``func(*args)`` per mode, the modes interleaved in each repeat."""
    best = {m.name: float("inf") for m in modes_}
    for _ in range(repeats):
        for m in modes_:
            best[m.name] = min(best[m.name], m.time(func, args))
    return best


def measure(quick: bool) -> list[Row]:
    epochs = 10
    blocks = 5_000 if quick else 20_000
    repeats = 3 if quick else 15
    inner = 100
    ms = modes()
    t2 = best_times(ms, "two_deep", (epochs, blocks), repeats)
    t3 = best_times(ms, "three_deep_empty", (epochs, blocks), repeats)
    deep_blocks = max(blocks // inner, 10)
    tw = best_times(ms, "three_deep", (epochs, deep_blocks, inner), repeats)
    n = epochs * blocks
    per_iter = {k: (t2[k] - t2["plain"]) / n * 1e9 for k in t2}
    per_exec = {k: ((t3[k] - t3["plain"]) - (t2[k] - t2["plain"])) / n * 1e9 for k in t3}
    py = f"py{sys.version_info[0]}.{sys.version_info[1]}"
    others = [k for k in t2 if k not in ("plain", "flortrace")]

    def rest(values, fmt):
        return ", ".join(f"{k} {fmt(values[k])}" for k in others)

    def ns(v):
        return f"{v:+.0f} ns"

    return [
        Row(
            "hooks",
            f"{py} per hooked loop iteration ({epochs}x{blocks}, plain {t2['plain'] / n * 1e9:.0f} ns)",
            f"flortrace {ns(per_iter['flortrace'])}",
            rest(per_iter, ns),
        ),
        Row(
            "hooks",
            f"{py} per deeper-loop execution ({epochs}x{blocks}x0)",
            f"flortrace {ns(per_exec['flortrace'])}",
            rest(per_exec, ns),
        ),
        Row(
            "hooks",
            f"{py} three-deep loop {epochs}x{deep_blocks}x{inner}, time vs plain",
            f"flortrace {fmt_overhead(tw['flortrace'] / tw['plain'])}",
            rest({k: tw[k] / tw["plain"] for k in tw}, fmt_overhead),
        ),
    ]


def main(argv=None):
    p = parser(__doc__.splitlines()[0])
    ns = p.parse_args(argv)
    if sys.gettrace() is not None:
        p.error("a trace function is already set (coverage or a debugger?); it would distort every number")
    rows = measure(ns.quick)
    if not ns.json:
        print(f"{platform.python_implementation()} {platform.python_version()}")
    emit(rows, ns.json)


if __name__ == "__main__":
    main()
