"""What every benchmark shares: the checkout on sys.path, timed commands, the flortrace CLI, result rows.

Each benchmark script collects ``Row``s and either prints them as a table (run alone) or writes them as JSON
(``--json PATH``, how run.py gathers all parts into one table). Importing this module makes the checkout's
``flortrace`` importable from any interpreter, so ``python benchmarks/X.py`` works without installing.
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
BENCHMARKS = ROOT / "benchmarks"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
# Timed commands run with cached bytecode, as an installed flortrace does: a PYTHONDONTWRITEBYTECODE set on a
# development machine would make every run compile flortrace afresh (tens of milliseconds).
compileall.compile_dir(ROOT / "flortrace", quiet=1)


@dataclass
class Row:
    """One line of the results table."""

    part: str
    measure: str
    result: str
    compared: str = ""


class CommandFailed(RuntimeError):
    """A benchmarked command exited with an unexpected code."""


def parser(description: str) -> argparse.ArgumentParser:
    """The options every part takes: ``--quick`` and ``--json PATH``."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="small sizes, for a CI-like run")
    p.add_argument("--json", metavar="PATH", help="write the rows to PATH as JSON, not a table")
    return p


def emit(rows: list[Row], json_path: str | None) -> None:
    if json_path:
        Path(json_path).write_text(json.dumps([asdict(r) for r in rows], indent=1))
    else:
        print_table(rows)


def print_table(rows: list[Row], out=sys.stdout) -> None:
    """Rows as aligned columns, one blank line between parts."""
    header = Row("part", "measure", "result", "compared with")
    widths = [max(len(getattr(r, f)) for r in [header, *rows]) for f in ("part", "measure", "result")]
    last = header.part
    for r in [header, *rows]:
        if r.part != last and last != header.part:
            print(file=out)
        last = r.part
        cells = [r.part.ljust(widths[0]), r.measure.ljust(widths[1]), r.result.ljust(widths[2]), r.compared]
        print("  ".join(cells).rstrip(), file=out)


@dataclass
class Timed:
    """A finished command: wall seconds, CPU seconds (user + system, its own and its children's)."""

    wall: float
    cpu: float
    proc: subprocess.CompletedProcess


def run(argv: list[str], cwd: str | os.PathLike, env: dict | None = None, expect: int = 0) -> Timed:
    """Run a command to completion and time it. Raises CommandFailed on an unexpected exit code."""
    full_env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"} | (env or {})
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=full_env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    if proc.returncode != expect:
        tail = (proc.stderr or proc.stdout)[-3000:]
        raise CommandFailed(f"{' '.join(map(str, argv))} (in {cwd}) exited {proc.returncode}:\n{tail}")
    return Timed(wall, cpu, proc)


def flortrace(*args: str, store: str | os.PathLike, cwd: str | os.PathLike, expect: int = 0) -> Timed:
    """Run ``python -m flortrace ARGS`` against ``store``."""
    return run([sys.executable, "-m", "flortrace", *args], cwd, {"FLORTRACE_STORE": str(store)}, expect)


def flortrace_json(*args: str, store: str | os.PathLike, cwd: str | os.PathLike):
    """The parsed JSON a flortrace verb prints with ``--json`` (``runs``, ``show``)."""
    return json.loads(flortrace(*args, "--json", store=store, cwd=cwd).proc.stdout)


def has_module(name: str) -> bool:
    """Whether ``name`` can be imported, without importing it."""
    return importlib.util.find_spec(name) is not None


def median(values) -> float:
    return statistics.median(values)


def fmt_seconds(s: float) -> str:
    return f"{s * 1e3:.0f} ms" if s < 1 else f"{s:.2f} s"


def fmt_bytes(n: float) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} B"


def fmt_overhead(ratio: float) -> str:
    """A time ratio as a signed percentage: 1.034 -> '+3.4%'."""
    return f"{(ratio - 1) * 100:+.1f}%"
