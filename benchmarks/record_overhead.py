"""Wall time of recording with flortrace vs running the script plainly, and vs what users do instead.

Besides the default budget, flortrace runs with ``--overhead 0`` ("no checkpoints": hooks, timings, the
catalog and the sources, no snapshots). Full sizes are runs of 6-12 s, a small training job; flortrace's
fixed start-up (imports, instrumenting, opening the catalog) is measured on its own first, on a script of
two tiny nested loops, since on a run of a few seconds it is most of the overhead. For each workload the
commands run interleaved, each in every position of the rotation in turn (plain, flortrace; flortrace,
plain; ...), and the medians of wall time and of CPU time (user + system of the
command and its children, the writer process included) are compared; each time is shown with its range.
On digits_cnn two alternatives join the rotation: the same script with a synchronous ``torch.save`` of
model, optimizer and scheduler after every epoch, and the script under a minimal ``sys.settrace`` hook
(settrace_run.py). Every command must print what the plain run prints.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from harness import (
    BENCHMARKS,
    EXAMPLES,
    Row,
    emit,
    flortrace_json,
    fmt_overhead,
    fmt_seconds,
    has_module,
    median,
)
from harness import parser as base_parser
from harness import run as run_command
from variants import digits_torch_save

# name, full-size arguments, quick arguments, needs torch
WORKLOADS = [
    ("pure_python", ["--epochs", "30"], ["--quick"], False),
    ("numpy_softmax", ["--epochs", "400", "--hidden", "256"], ["--quick"], False),
    ("digits_cnn", ["--epochs", "30"], ["--quick", "--epochs", "3"], True),
    ("char_lm", [], ["--quick", "--epochs", "3"], True),
]
TINY = "for epoch in range(2):\n    for step in range(2):\n        pass\n"


def measure_start_up(repeats: int) -> Row:
    """flortrace's fixed cost: a script of two tiny nested loops, plain and recorded without checkpoints."""
    with tempfile.TemporaryDirectory(prefix="flortrace-bench-startup-") as tmp:
        work = Path(tmp)
        (work / "tiny.py").write_text(TINY)
        store = {"FLORTRACE_STORE": str(work / "store")}
        argv = {
            "plain": [sys.executable, "tiny.py"],
            "flortrace": [sys.executable, "-m", "flortrace", "-q", "--overhead", "0", "tiny.py"],
        }
        wall = {mode: [] for mode in argv}
        for r in range(repeats):
            for mode in sorted(argv, reverse=r % 2 == 1):
                wall[mode].append(run_command(argv[mode], work, store).wall)
    plain, recorded = median(wall["plain"]), median(wall["flortrace"])
    return Row(
        "record",
        f"fixed start-up, median of {repeats}",
        f"flortrace +{fmt_seconds(recorded - plain)}",
        f"python {fmt_seconds(plain)}, python -m flortrace --overhead 0 {fmt_seconds(recorded)}",
    )


def commands(name: str, args: list[str], work: Path, store: Path) -> dict:
    """{mode: function running the command once, returning its Timed} for one workload."""
    script = str(EXAMPLES / f"{name}.py")
    py = sys.executable

    def command(argv, env=None):
        return lambda: run_command(argv, work, env)

    out = {
        "plain": command([py, script, *args]),
        "flortrace": command([py, "-m", "flortrace", "-q", script, *args], {"FLORTRACE_STORE": str(store)}),
        "no checkpoints": command(
            [py, "-m", "flortrace", "-q", "--overhead", "0", script, *args],
            {"FLORTRACE_STORE": str(store.with_name("store-no-checkpoints"))},
        ),
    }
    if name == "digits_cnn":
        out["torch.save every epoch"] = command([py, str(digits_torch_save(work)), *args])
        out["settrace hook"] = command([py, str(BENCHMARKS / "settrace_run.py"), script, *args])
    return out


def snapshot_summary(store: Path, work: Path) -> str:
    runs = flortrace_json("runs", store=store, cwd=work)
    ckpt = sorted({r["checkpoints"] for r in runs})
    memos = sorted({r["memos"] for r in runs})
    epochs = sorted({r["epochs"] for r in runs})

    def span(values):
        return str(values[0]) if len(values) == 1 else f"{values[0]}-{values[-1]}"

    return f"{span(ckpt)} checkpoints + {span(memos)} memos of {span(epochs)} epochs per run"


def measure_workload(name: str, args: list[str], repeats: int) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix=f"flortrace-bench-{name}-") as tmp:
        work = Path(tmp)
        store = work / "store"
        modes = commands(name, args, work, store)
        wall = {mode: [] for mode in modes}
        cpu = {mode: [] for mode in modes}
        outputs = {}
        names = list(modes)
        for r in range(repeats):
            for mode in names[r % len(names) :] + names[: r % len(names)]:  # each mode in each position
                timed = modes[mode]()
                wall[mode].append(timed.wall)
                cpu[mode].append(timed.cpu)
                outputs.setdefault(mode, timed.proc.stdout)
        med = {mode: median(ts) for mode, ts in wall.items()}
        cpu_med = {mode: median(ts) for mode, ts in cpu.items()}
        snapshots = snapshot_summary(store, work)
    differ = [mode for mode in modes if outputs[mode] != outputs["plain"]]
    label = f"{name} {' '.join(args)}".strip()

    def cpu_overhead(mode):
        return f"CPU {fmt_overhead(cpu_med[mode] / cpu_med['plain'])}"

    def spread(mode):
        low, high = fmt_seconds(min(wall[mode])), fmt_seconds(max(wall[mode]))
        return f"{mode} {fmt_seconds(med[mode])} ({low} to {high})"

    rows = [
        Row(
            "record",
            f"{label}: wall, median of {repeats}",
            f"flortrace {fmt_overhead(med['flortrace'] / med['plain'])}",
            f"{cpu_overhead('flortrace')}; {spread('plain')}, {spread('flortrace')}; {snapshots}",
        )
    ]
    for mode in modes:
        if mode not in ("plain", "flortrace"):
            rows.append(
                Row(
                    "record",
                    f"{label}: instead, {mode}",
                    f"{mode} {fmt_overhead(med[mode] / med['plain'])}",
                    f"{cpu_overhead(mode)}; {spread(mode)}",
                )
            )
    if differ:
        rows.append(Row("record", f"{label}: OUTPUT DIFFERS from the plain run", ", ".join(differ)))
    return rows


def main(argv=None):
    p = base_parser(__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, help="runs of each command (default 5, 3 with --quick)")
    p.add_argument("--only", action="append", help="run only this workload (repeatable)")
    ns = p.parse_args(argv)
    repeats = ns.repeats or (3 if ns.quick else 5)
    rows = [measure_start_up(3 * repeats)]
    for name, full, quick, needs_torch in WORKLOADS:
        if ns.only and name not in ns.only:
            continue
        if needs_torch and not has_module("torch"):
            rows.append(Row("record", f"{name}: skipped", "torch is not installed"))
            continue
        rows.extend(measure_workload(name, quick if ns.quick else full, repeats))
    emit(rows, ns.json)


if __name__ == "__main__":
    main()
