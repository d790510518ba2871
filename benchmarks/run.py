"""Run every benchmark and print one table: ``python benchmarks/run.py [--quick] [--only PART]``.

Each part runs in its own process (``benchmarks/PART.py --json``), so imports and memory of one do not
touch the next. hooks.py runs under this interpreter and under every other one given with ``--python``
or found in the checkout's ``.venvs/*/bin/python``, since ``sys.monitoring`` needs 3.12+.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import BENCHMARKS, ROOT, Row, emit
from harness import parser as base_parser

PARTS = [
    "hooks",
    "record_overhead",
    "checkpoint_stall",
    "snapshots",
    "replay_speed",
    "multirun",
    "instrument_cost",
]


def interpreters(extra: list[str]) -> list[str]:
    """One interpreter per Python version, oldest first; this one wins for its version, then ``extra``."""
    found = [sys.executable, *extra, *sorted(str(p) for p in ROOT.glob(".venvs/*/bin/python"))]
    by_version: dict[tuple, str] = {}
    for exe in found:
        try:
            probe = [exe, "-c", "import sys; print(*sys.version_info[:2])"]
            out = subprocess.run(probe, capture_output=True, text=True, check=True).stdout
        except (OSError, subprocess.CalledProcessError):
            continue
        by_version.setdefault(tuple(map(int, out.split())), exe)
    return [by_version[v] for v in sorted(by_version)]


def run_part(exe: str, part: str, quick: bool) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="flortrace-bench-") as tmp:
        out = Path(tmp) / "rows.json"
        argv = [exe, str(BENCHMARKS / f"{part}.py"), "--json", str(out), *(["--quick"] if quick else [])]
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            print(proc.stderr[-4000:], file=sys.stderr)
            return [Row(part, "FAILED", f"exit code {proc.returncode}", _last_line(proc.stderr))]
        return [Row(**row) for row in json.loads(out.read_text())]


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def machine() -> str:
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    system = f"{platform.system()} {platform.release()}"
    return f"{os.cpu_count()} cores, {system}, Python {platform.python_version()}, load average {load}"


def commit() -> str:
    """The checkout's commit, and whether the working tree differs from it."""

    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)

    try:
        head, dirty = git("rev-parse", "--short", "HEAD"), git("status", "--porcelain")
    except OSError:
        return "commit unknown"
    if head.returncode != 0:
        return "commit unknown"
    return f"commit {head.stdout.strip()}{' with uncommitted changes' if dirty.stdout.strip() else ''}"


def main(argv=None):
    p = base_parser(__doc__.splitlines()[0])
    p.add_argument("--only", action="append", choices=PARTS, help="run only this part (repeatable)")
    p.add_argument("--python", action="append", default=[], help="another interpreter for hooks.py")
    ns = p.parse_args(argv)
    began = time.perf_counter()
    print(f"start: {machine()}; {commit()}", flush=True)
    rows = []
    for part in ns.only or PARTS:
        exes = interpreters(ns.python) if part == "hooks" else [sys.executable]
        for exe in exes:
            print(f"... {part} ({exe})", file=sys.stderr, flush=True)
            rows.extend(run_part(exe, part, ns.quick))
    print(f"end:   {machine()}; {time.perf_counter() - began:.0f} s in all\n")
    emit(rows, ns.json)


if __name__ == "__main__":
    main()
