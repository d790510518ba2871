"""What instrumenting costs: a very long generated function (issue 14's r15) and a big project's import.

Rows: the in-process patch time of the r15 function at two sizes (twice the code should take about twice
the time: patching is linear); whole runs of the r15 script under ``python`` and under ``python -m
flortrace --overhead 0`` with an empty store (every module patched) and again with the same store (patched
code read from its cache); and the import of a big project (a copy of networkx when it is installed,
else ~280 generated modules with loops) the same three ways, in CPU seconds. Medians of 3 runs (1 with
``--quick``), rotated so each command runs in each position.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from harness import ROOT, Row, emit, fmt_seconds, median, parser, run

PART = "instrument_cost"


def r15_source(body):
    """The r15 reproducer's module at ``body`` lines of while-loop body (9000 in the issue)."""
    lines = ["def big(n):", "    total = 0", "    k = 0", "    while k < n:", "        k += 1"]
    lines += [f"        total += k * {i} % 7" for i in range(body)]
    lines += ["        if k == 2:", "            continue", "        for j in range(2):"]
    lines += [f"            total ^= j + {i}" for i in range(body // 3)]
    lines += [
        "            if j: break",
        "        else:",
        "            total += 1",
        "    else:",
        "        total += 5",
    ]
    lines += ["    for q in range(3):", "        try:", "            if q == 1: continue"]
    lines += [f"            total -= q * {i}" for i in range(body // 3)]
    lines += ["        finally:", "            total += 1", "    return total", "", "print(big(3))"]
    lines += ["for e in range(2):", "    for b in range(2):", "        print(e, b, big(2))"]
    return "\n".join(lines) + "\n"


def patch_seconds(source):
    from flortrace.instrument.patch import instrument_module_code
    from flortrace.runtime import hooks

    code = compile(source, "big.py", "exec")
    began = time.perf_counter()
    instrument_module_code(code, "big.py", hooks.HOOKS, source)
    return time.perf_counter() - began


def project(folder: Path):
    """A big project to import: networkx copied in when installed, else generated modules."""
    spec = importlib.util.find_spec("networkx")
    if spec is not None and spec.submodule_search_locations:
        shutil.copytree(spec.submodule_search_locations[0], folder / "networkx")
        (folder / "main.py").write_text("import networkx\nprint(len(vars(networkx)) > 0)\n")
        return f"networkx ({sum(1 for _ in (folder / 'networkx').rglob('*.py'))} files)"
    package = folder / "bigproject"
    package.mkdir()
    names = [f"mod{i}" for i in range(280)]
    for name in names:
        funcs = "".join(
            textwrap.dedent(
                f"""
                def f{k}(xs):
                    total = 0
                    for x in xs:
                        total += x * {k}
                    i = 0
                    while i < len(xs):
                        i += 1
                    return total
                """
            )
            for k in range(20)
        )
        (package / f"{name}.py").write_text(funcs)
    (package / "__init__.py").write_text("".join(f"from . import {n}\n" for n in names))
    (folder / "main.py").write_text("import bigproject\nprint(len(vars(bigproject)) > 0)\n")
    return "280 generated modules"


def compare(folder, script, rounds, label, rows, measure):
    """plain / flortrace with an empty store / flortrace with the store of an earlier run, rotated."""
    stores = Path(tempfile.mkdtemp(prefix="stores-", dir=folder))
    warm = stores / "warm"
    env = {"PYTHONPATH": str(ROOT)}  # this checkout's flortrace, whatever is installed
    run(
        [sys.executable, "-m", "flortrace", "-q", "--overhead", "0", "--store", str(warm), script],
        folder,
        env,
    )
    commands = {
        "plain": lambda i: [sys.executable, script],
        "cold": lambda i: [
            sys.executable,
            "-m",
            "flortrace",
            "-q",
            "--overhead",
            "0",
            "--store",
            str(stores / f"cold{i}"),
            script,
        ],
        "warm": lambda i: [
            sys.executable,
            "-m",
            "flortrace",
            "-q",
            "--overhead",
            "0",
            "--store",
            str(warm),
            script,
        ],
    }
    times = {name: [] for name in commands}
    outputs = set()
    names = list(commands)
    for i in range(rounds):
        for name in names[i % 3 :] + names[: i % 3]:
            done = run(commands[name](i), folder, env)
            times[name].append(done.cpu if measure == "cpu" else done.wall)
            outputs.add(done.proc.stdout)
    assert len(outputs) == 1, "flortrace printed something else"
    plain = median(times["plain"])
    for name, what in (("cold", "every module patched"), ("warm", "patched code from the cache")):
        t = median(times[name])
        rows.append(
            Row(
                PART,
                f"{label}, {measure} time, {what}",
                f"{t / plain:.2f}x ({fmt_seconds(t)})",
                f"plain {fmt_seconds(plain)}",
            )
        )


def main():
    args = parser(__doc__.splitlines()[0]).parse_args()
    body = 2000 if args.quick else 9000
    rounds = 1 if args.quick else 3
    rows = []
    small, large = patch_seconds(r15_source(body // 2)), patch_seconds(r15_source(body))
    rows.append(
        Row(
            PART,
            f"patch the r15 function, {body} vs {body // 2} body lines",
            f"{large / small:.2f}x the time",
            f"{fmt_seconds(large)} vs {fmt_seconds(small)}; linear: 2x",
        )
    )
    with tempfile.TemporaryDirectory(prefix="flortrace-bench-") as tmp:
        folder = Path(tmp)
        (folder / "big.py").write_text(r15_source(body))
        compare(folder, "big.py", rounds, f"r15 script ({body} body lines)", rows, "wall")
    with tempfile.TemporaryDirectory(prefix="flortrace-bench-") as tmp:
        folder = Path(tmp)
        what = project(folder)
        run([sys.executable, "main.py"], folder)  # pyc files written, as a project's own runs leave them
        compare(folder, "main.py", rounds, f"import {what}", rows, "cpu")
    emit(rows, args.json)


if __name__ == "__main__":
    main()
