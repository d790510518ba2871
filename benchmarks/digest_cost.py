"""What the fidelity check costs: the digest of the loop-carried state taken at every epoch end.

Part 1, in this process: the 134 MB state of checkpoint_stall.py (two 2048x2048 linear layers with
gradients and Adam moments; 34 MB with --quick) and a 100 MB numpy array are digested the way the recorder
does at an epoch end (``fidelity.take``), against a checkpoint capture (``changeset.capture``) and a memcpy
of as many bytes, median of 5 rounds.

Part 2: digits_cnn and char_lm are recorded at the default budget; the recorder's own measure of the time
it spent digesting (``show``'s run info ``digest_seconds``) is divided by the epochs and set beside the
mean epoch time and the recorded checkpoint stalls.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from time import perf_counter

from checkpoint_stall import State
from harness import (
    EXAMPLES,
    Row,
    emit,
    flortrace,
    flortrace_json,
    fmt_bytes,
    fmt_seconds,
    has_module,
    median,
    parser,
)

from flortrace.runtime import changeset, fidelity


class Frame:
    """Stands for the main loop's frame: the digest resolves names in f_locals and f_globals."""

    def __init__(self, **names):
        self.f_locals, self.f_globals = names, {}


def timed(fn, repeats):
    times = []
    for _ in range(repeats):
        began = perf_counter()
        fn()
        times.append(perf_counter() - began)
    return median(times)


def in_process(quick: bool, repeats: int) -> list[Row]:
    import numpy as np

    rows = []
    state = State(1024 if quick else 2048, 2)
    array = np.random.default_rng(0).standard_normal((25 if quick else 100) * 2**20 // 8)
    for label, names in (
        ("model + grads + Adam", {"model": state.model, "opt": state.opt}),
        ("numpy array", {"data": array}),
    ):
        frame = Frame(**names)
        items = [("local", n) for n in names]
        found = {("main", "local", n): o for n, o in names.items()}
        payload, _ = changeset.capture(found)
        raw = changeset.size(payload)
        del payload
        src, dst = np.ones(raw, dtype=np.uint8), np.zeros(raw, dtype=np.uint8)
        digest = timed(lambda frame=frame, items=items: fidelity.take(frame, items), repeats)
        capture = timed(lambda found=found: changeset.capture(found), repeats)
        copy = timed(lambda dst=dst, src=src: np.copyto(dst, src), repeats)
        rows.append(
            Row(
                "digest",
                f"digest of a {fmt_bytes(raw)} {label}, median of {repeats}",
                f"{fmt_seconds(digest)} ({raw / digest / 1e9:.2f} GB/s)",
                f"checkpoint capture {fmt_seconds(capture)} ({capture / digest:.1f}x); "
                f"memcpy {fmt_seconds(copy)}",
            )
        )
    return rows


def workloads(quick: bool) -> list[Row]:
    rows = []
    for script, args in (("digits_cnn.py", ["--epochs", "10"]), ("char_lm.py", ["--epochs", "6"])):
        if quick:
            args = ["--quick", "--epochs", "4"]
        with tempfile.TemporaryDirectory(prefix="flortrace-bench-digest-") as tmp:
            store = Path(tmp) / "store"
            flortrace("-q", str(EXAMPLES / script), *args, store=store, cwd=tmp)
            (run,) = flortrace_json("runs", store=store, cwd=tmp)
            shown = flortrace_json("show", str(run["id"]), store=store, cwd=tmp)
        epochs = shown["epochs"]
        per_epoch = shown["run"]["info"].get("digest_seconds", 0.0) / len(epochs)
        epoch_time = sum(e["seconds"] for e in epochs) / len(epochs)
        stalls = [s["stall"] for s in shown["snapshots"] if s["kind"] == "checkpoint" and s["stall"]]
        rows.append(
            Row(
                "digest",
                f"{script} {' '.join(args)}: digest per epoch end ({len(epochs)} epochs)",
                f"{fmt_seconds(per_epoch)} = {per_epoch / epoch_time:.2%} of a "
                f"{fmt_seconds(epoch_time)} epoch",
                f"checkpoint stall {fmt_seconds(median(stalls))} (median of {len(stalls)})" if stalls else "",
            )
        )
    return rows


def main(argv=None):
    p = parser(__doc__.splitlines()[0])
    ns = p.parse_args(argv)
    if not (has_module("torch") and has_module("numpy")):
        emit([Row("digest", "skipped", "needs torch and numpy")], ns.json)
        return
    rows = in_process(ns.quick, 3 if ns.quick else 5)
    if has_module("sklearn"):
        rows += workloads(ns.quick)
    emit(rows, ns.json)


if __name__ == "__main__":
    main()
