"""Training-thread stall per checkpoint, and bytes stored per checkpoint, vs memcpy and torch.save.

Part 1, in this process: a model and its Adam optimizer (with gradients, as at the end of an epoch; about
134 MB, 34 MB with --quick) are checkpointed the way the recorder does it on the training thread
(``changeset.capture`` then ``SnapshotWriter.submit_many``), after an optimizer step each time so every
checkpoint holds new bytes. That stall is compared with a memcpy of as many bytes (numpy, into memory
already touched: capture also allocates, so this is the bound it can approach) and with a
synchronous ``torch.save`` of model and optimizer to a file, timed in the same rounds, and the time the
writer then works in the background is shown. Fresh memory is slow to touch on some machines (VMs): the
best round is shown next to the median.

Part 2: finetune_frozen.py (with a torch.save of model and optimizer added after every epoch) is recorded;
the bytes flortrace stored per snapshotted epoch are compared with the torch.save file of that epoch.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from time import perf_counter

from harness import Row, emit, flortrace, flortrace_json, fmt_bytes, fmt_seconds, has_module, median, parser
from variants import finetune_torch_save

from flortrace.runtime import changeset
from flortrace.store import Store
from flortrace.store.writer import SnapshotWriter


def gbps(nbytes: float, seconds: float) -> str:
    return f"{nbytes / seconds / 1e9:.2f} GB/s"


class State:
    """A stack of square linear layers and Adam, one step taken so gradients and moments exist."""

    def __init__(self, width: int, layers: int):
        import torch

        torch.manual_seed(0)
        self.torch, self.width = torch, width
        self.model = torch.nn.Sequential(*[torch.nn.Linear(width, width) for _ in range(layers)])
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-4)
        self.step()

    def step(self):
        self.opt.zero_grad()
        self.model(self.torch.randn(32, self.width)).square().mean().backward()
        self.opt.step()

    def items(self):
        return {("main", "local", "model"): self.model, ("main", "local", "opt"): self.opt}

    def torch_save(self, path) -> float:
        began = perf_counter()
        self.torch.save({"model": self.model.state_dict(), "opt": self.opt.state_dict()}, path)
        return perf_counter() - began


def submit(writer, payload, epoch) -> bool:
    item = dict(payload=payload, kind="checkpoint", loop_id=None, seq=None, stall=0.0)
    return writer.submit_many([item], epoch=epoch, reason="benchmark")


def stall(quick: bool, repeats: int) -> list[Row]:
    import numpy as np

    state = State(1024 if quick else 2048, 2)
    with tempfile.TemporaryDirectory(prefix="flortrace-bench-stall-") as tmp:
        store = Store(Path(tmp) / "store")
        run_id = store.catalog.begin_run(script="checkpoint_stall", argv=[], cwd=tmp, env={}, versions={})
        writer = SnapshotWriter(store.root, run_id)
        writer.start()
        payload, _ = changeset.capture(state.items())  # warm-up, and the size of the state
        raw = changeset.size(payload)
        del payload
        src, dst, path = np.ones(raw, dtype=np.uint8), np.zeros(raw, dtype=np.uint8), Path(tmp) / "state.pt"
        stalls, copies, saves, written, busy = [], [], [], [], []
        for epoch in range(repeats):
            state.step()
            began = perf_counter()
            np.copyto(dst, src)
            copies.append(perf_counter() - began)
            saves.append(state.torch_save(path))
            before = writer.stats()
            began = perf_counter()
            payload, problems = changeset.capture(state.items())
            taken = submit(writer, payload, epoch)
            submitted = perf_counter()
            stalls.append(submitted - began)
            del payload
            if problems or not taken:
                raise RuntimeError(f"checkpoint not taken: {problems or 'writer busy or failed'}")
            writer.wait()
            busy.append(perf_counter() - submitted)
            if writer.failed:
                raise RuntimeError(writer.failed)
            written.append(writer.stats()["bytes_stored"] - before["bytes_stored"])
        before = writer.stats()  # once more, state unchanged: content addressing stores only the manifest
        payload, _ = changeset.capture(state.items())
        submit(writer, payload, repeats)
        del payload
        writer.wait()
        unchanged = writer.stats()["bytes_stored"] - before["bytes_stored"]
        writer.close()
        store.catalog.end_run(run_id, "finished", 0)
        saved = path.stat().st_size

    grads = sum(p.grad.numel() * p.grad.element_size() for p in state.model.parameters())
    label = f"{fmt_bytes(raw)} state (Linear {state.width}x{state.width} x2, grads, Adam)"

    def speed(nbytes, times):
        best = gbps(nbytes, min(times))
        return f"{gbps(nbytes, median(times))} ({fmt_seconds(median(times))}; best {best})"

    return [
        Row(
            "checkpoint",
            f"training-thread stall per checkpoint, {label}, median of {repeats}",
            f"capture+submit {speed(raw, stalls)}",
            f"memcpy {speed(raw, copies)}; sync torch.save {speed(saved, saves)}",
        ),
        Row(
            "checkpoint",
            "writer busy per checkpoint (pickle, send, hash, lz4, write, fsync), in the background",
            f"{fmt_seconds(median(busy))} = {gbps(raw, median(busy))}",
        ),
        Row(
            "checkpoint",
            "bytes stored per checkpoint, state changed by one step",
            f"{fmt_bytes(median(written))} (raw {fmt_bytes(raw)})",
            f"torch.save file {fmt_bytes(saved)} (it has no gradients: {fmt_bytes(grads)} of the raw bytes)",
        ),
        Row(
            "checkpoint",
            "bytes stored per checkpoint, state unchanged",
            fmt_bytes(unchanged),
            f"torch.save writes {fmt_bytes(saved)} again",
        ),
    ]


def frozen(quick: bool) -> list[Row]:
    args = ["--quick", "--epochs", "3"] if quick else []
    with tempfile.TemporaryDirectory(prefix="flortrace-bench-frozen-") as tmp:
        work, saves = Path(tmp), Path(tmp) / "saves"
        saves.mkdir()
        script = finetune_torch_save(work, saves)
        store = work / "store"
        flortrace("-q", str(script), *args, store=store, cwd=work)
        (run,) = flortrace_json("runs", store=store, cwd=work)
        shown = flortrace_json("show", str(run["id"]), store=store, cwd=work)
        saved = {p.stem: p.stat().st_size for p in saves.glob("*.pt")}
    bases = [m["base"] for m in shown["run"]["info"]["main_runs"]]
    if len(bases) != 2:
        raise RuntimeError(f"expected two main loops in finetune_frozen, found {len(bases)}")
    stored: dict[int, int] = {}
    for snap in shown["snapshots"]:
        stored[snap["epoch"]] = stored.get(snap["epoch"], 0) + (snap["stored"] or 0)
    rows = []
    for phase, (lo, hi) in (("pretrain", (bases[0], bases[1])), ("finetune", (bases[1], run["epochs"]))):
        epochs = [e for e in range(lo, hi) if e in stored]
        if not epochs:
            rows.append(Row("checkpoint", f"finetune_frozen {phase}: no snapshots", ""))
            continue
        ours = [stored[e] for e in epochs]
        theirs = [saved[f"{phase}-{e - lo}"] for e in epochs]
        detail = ", ".join(f"{fmt_bytes(a)}" for a in ours)
        rows.append(
            Row(
                "checkpoint",
                f"finetune_frozen {phase}: stored per snapshotted epoch ({len(epochs)} of {hi - lo})",
                f"{fmt_bytes(median(ours))} median, checkpoint + memos ({detail})",
                f"torch.save {fmt_bytes(median(theirs))} per epoch ({median(ours) / median(theirs):.2f}x)",
            )
        )
    rows.append(
        Row(
            "checkpoint",
            f"{' '.join(['finetune_frozen', *args])}: whole run",
            f"{fmt_bytes(run['bytes'])} stored ({run['checkpoints']} checkpoints, {run['memos']} memos)",
            f"torch.save every epoch {fmt_bytes(sum(saved.values()))} ({len(saved)} files)",
        )
    )
    return rows


def main(argv=None):
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, help="checkpoints timed (default 5, 3 with --quick)")
    ns = p.parse_args(argv)
    if not (has_module("torch") and has_module("numpy")):
        emit([Row("checkpoint", "skipped", "needs torch and numpy")], ns.json)
        return
    rows = stall(ns.quick, ns.repeats or (3 if ns.quick else 5))
    if has_module("sklearn"):
        rows += frozen(ns.quick)
    else:
        rows.append(Row("checkpoint", "finetune_frozen skipped", "needs scikit-learn"))
    emit(rows, ns.json)


if __name__ == "__main__":
    main()
