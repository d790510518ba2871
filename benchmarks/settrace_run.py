"""Run a script under a minimal ``sys.settrace`` hook: what a hand-made loop watcher costs.

``python benchmarks/settrace_run.py script.py [args...]`` runs the script as ``__main__`` with a global
trace function that returns a local one (line events) for frames of the script's own file only, and does
nothing else: the least a settrace-based tool that watches a script's loops has to pay.
"""

from __future__ import annotations

import os
import runpy
import sys


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: settrace_run.py script.py [args...]")
    script = os.path.abspath(sys.argv[1])
    sys.argv = [script, *sys.argv[2:]]
    sys.path[0] = os.path.dirname(script)

    def local(frame, event, arg):
        return local

    def watch(frame, event, arg):
        return local if frame.f_code.co_filename == script else None

    sys.settrace(watch)
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
