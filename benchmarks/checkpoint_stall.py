"""Training-thread cost per snapshot, the writer's speed, and bytes stored, vs memcpy, lz4 and torch.save.

Part 1, in this process: the fixed cost of a snapshot, a tiny one (two scalars and a 10-element tensor)
captured and handed to the writer 200 times the way the recorder does it (``changeset.capture`` into the
writer's shared memory, then ``SnapshotWriter.submit_many``), as training-thread CPU time and wall time, and
the writer process's CPU time per snapshot; the same for the 1.3 MB state of mlp_train.py.

Part 2: a model and its Adam optimizer (with gradients, as at the end of an epoch; about 134 MB, 34 MB with
--quick) are checkpointed the same way, after an optimizer step each time so every checkpoint holds new
bytes. That stall is compared with a memcpy of as many bytes (numpy, into memory already touched) and a
synchronous ``torch.save`` of model and optimizer to a file, timed in the same rounds. The writer's work
per checkpoint (hash, store raw or compress, write, fsync, index) is shown as wall time and CPU time, next
to lz4 compressing the same tensors on one core (``lz4.block``, this thread's CPU time) and BLAKE3 hashing
them. Medians of the rounds and, as load on a shared machine makes some rounds slow, the best.

Part 3: finetune_frozen.py (with a torch.save of model and optimizer added after every epoch) is recorded;
the bytes flortrace stored per snapshotted epoch are compared with the torch.save file of that epoch.
"""

from __future__ import annotations

import tempfile
import time
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


def open_writer(tmp):
    store = Store(Path(tmp) / "store")
    run_id = store.catalog.begin_run(script="checkpoint_stall", argv=[], cwd=tmp, env={}, versions={})
    writer = SnapshotWriter(store.root, run_id)
    writer.start()
    return store, run_id, writer


def fixed_cost(rounds: int) -> list[Row]:
    """Training-thread and writer time per snapshot, for a tiny state and for the 1.3 MB MLP state."""
    import torch

    torch.manual_seed(0)
    mlp = torch.nn.Sequential(
        torch.nn.Linear(64, 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, 10),
    )
    opt = torch.optim.Adam(mlp.parameters(), lr=1e-3)
    mlp(torch.randn(8, 64)).sum().backward()
    opt.step()
    states = {
        "tiny state (2 scalars, a 10-element tensor)": {
            ("main", "local", "lr"): 0.1,
            ("main", "local", "step"): 7,
            ("main", "local", "w"): torch.zeros(10),
        },
        "mlp_train.py state (1.3 MB: 3 Linear, grads, Adam)": {
            ("main", "local", "model"): mlp,
            ("main", "local", "opt"): opt,
        },
    }
    rows = []
    with tempfile.TemporaryDirectory(prefix="flortrace-bench-fixed-") as tmp:
        store, run_id, writer = open_writer(tmp)
        for label, items in states.items():
            captures, handovers, wall = [], [], []
            before = writer.stats()
            for epoch in range(rounds):
                began, thread = perf_counter(), time.thread_time()
                payload, _ = capture(items, writer)
                captured = time.thread_time()
                if not submit(writer, payload, epoch):
                    raise RuntimeError(f"snapshot not taken: {writer.failed or 'writer busy'}")
                handovers.append(time.thread_time() - captured)
                captures.append(captured - thread)
                wall.append(perf_counter() - began)
                del payload
                writer.wait()
            after = writer.stats()

            def per(key, after=after, before=before):
                return (after.get(key, 0.0) - before.get(key, 0.0)) / rounds

            phases = after.get("phases", {})
            steps = ", ".join(
                f"{phase} {ms((seconds - before.get('phases', {}).get(phase, 0.0)) / rounds)}"
                for phase, seconds in phases.items()
            )
            cpu = [c + h for c, h in zip(captures, handovers, strict=True)]
            rows.append(
                Row(
                    "checkpoint",
                    f"fixed cost per snapshot, {label}, median of {rounds}",
                    f"training thread {ms(median(cpu))} CPU (capture {ms(median(captures))}, hand-over "
                    f"{ms(median(handovers))}), {ms(median(wall))} wall (best {ms(min(wall))})",
                    f"writer process {ms(per('cpu_seconds'))} CPU, {ms(per('seconds'))} wall per snapshot"
                    + (f" ({steps})" if steps else ""),
                )
            )
        writer.close()
        store.catalog.end_run(run_id, "finished", 0)
    return rows


def capture(items, writer):
    """``changeset.capture`` as the recorder calls it: into the writer's shared memory where there is some
    (a checkout from before shared memory captures into private memory)."""
    if not hasattr(writer, "alloc"):
        return changeset.capture(items)
    return changeset.capture(items, alloc=writer.alloc)


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms"


def one_core(state) -> tuple[float, float]:
    """Seconds of this thread's CPU time that lz4 (``lz4.block``) and BLAKE3 take on the state's tensors."""
    import blake3
    import lz4.block

    tensors = [t for t in state.model.state_dict().values()]
    tensors += [p.grad for p in state.model.parameters()]
    tensors += [v for s in state.opt.state.values() for v in s.values() if v.dim()]
    arrays = [memoryview(t.detach().numpy()).cast("B") for t in tensors]
    began = time.thread_time()
    for a in arrays:
        lz4.block.compress(a, store_size=False)
    lz4_seconds = time.thread_time() - began
    began = time.thread_time()
    for a in arrays:
        blake3.blake3(a).digest()
    return lz4_seconds, time.thread_time() - began


def stall(quick: bool, repeats: int) -> list[Row]:
    import numpy as np

    state = State(1024 if quick else 2048, 2)
    with tempfile.TemporaryDirectory(prefix="flortrace-bench-stall-") as tmp:
        store, run_id, writer = open_writer(tmp)
        payload, _ = changeset.capture(state.items())  # the size of the state
        raw = changeset.size(payload)
        del payload
        src, dst, path = np.ones(raw, dtype=np.uint8), np.zeros(raw, dtype=np.uint8), Path(tmp) / "state.pt"
        stalls, copies, saves, written, busy, cpu, lz4s, hashes = [], [], [], [], [], [], [], []
        for epoch in range(repeats):
            state.step()
            began = perf_counter()
            np.copyto(dst, src)
            copies.append(perf_counter() - began)
            saves.append(state.torch_save(path))
            lz4_seconds, hash_seconds = one_core(state)
            lz4s.append(lz4_seconds)
            hashes.append(hash_seconds)
            before = writer.stats()
            began = perf_counter()
            payload, problems = capture(state.items(), writer)
            taken = submit(writer, payload, epoch)
            submitted = perf_counter()
            stalls.append(submitted - began)
            del payload
            if problems or not taken:
                raise RuntimeError(f"checkpoint not taken: {problems or writer.failed or 'writer busy'}")
            writer.wait()
            busy.append(perf_counter() - submitted)
            if writer.failed:
                raise RuntimeError(writer.failed)
            after = writer.stats()
            written.append(after["bytes_stored"] - before["bytes_stored"])
            cpu.append(after["cpu_seconds"] - before["cpu_seconds"])
        before = writer.stats()  # once more, state unchanged: content addressing stores only the manifest
        payload, _ = capture(state.items(), writer)
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

    ratio = (raw / median(stalls)) / (raw / median(copies))
    return [
        Row(
            "checkpoint",
            f"training-thread stall per checkpoint, {label}, median of {repeats}",
            f"capture+submit {speed(raw, stalls)} = {ratio:.2f}x memcpy",
            f"memcpy {speed(raw, copies)}; sync torch.save {speed(saved, saves)}",
        ),
        Row(
            "checkpoint",
            "writer per checkpoint (hash, store raw or lz4, write, fsync, index), in the background",
            f"wall {speed(raw, busy)}; CPU {speed(raw, cpu)}",
            f"one core: lz4 {speed(raw, lz4s)}, BLAKE3 {speed(raw, hashes)}",
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
    rows = fixed_cost(50 if ns.quick else 200)
    rows += stall(ns.quick, ns.repeats or (3 if ns.quick else 5))
    if has_module("sklearn"):
        rows += frozen(ns.quick)
    else:
        rows.append(Row("checkpoint", "finetune_frozen skipped", "needs scikit-learn"))
    emit(rows, ns.json)


if __name__ == "__main__":
    main()
