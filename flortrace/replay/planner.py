"""Plan a replay: which epochs run, where each starts from, which blocks are probes and which use memos.

The plan is built from the catalog and the edited sources before anything runs; ``--plan`` prints it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..exceptions import PlanError
from ..state.digest import VERSION as DIGEST_VERSION
from . import diff
from . import epochs as epoch_specs


@dataclass
class MainRun:
    loop_id: str
    run: int  # which execution of that loop (0 = first)
    base: int  # global epoch number of its first iteration
    count: int  # epochs it ran
    name: str = ""  # how epoch specs name it (epochs.py)
    training: bool = False  # the loop whose epochs specs without a name select
    why: str = ""  # why it was taken for an epoch loop


@dataclass
class Plan:
    run_id: int
    mains: list[MainRun]
    selected: set[int]  # global epochs whose values the user asked for
    checkpoints: dict[int, str]  # epoch -> manifest
    memos: dict[tuple[int, str, int], str]  # (epoch, loop id, seq) -> manifest
    probes: set[str]
    epoch_seconds: dict[int, float]
    block_seconds: dict[tuple[int, str, int], float]
    recorded_logs: dict = field(default_factory=dict)
    recorded_names: set = field(default_factory=set)
    notes: list[str] = field(default_factory=list)
    torch_settings: dict = field(default_factory=dict)
    digests: dict = field(default_factory=dict)  # (epoch, 'start'|'end') -> {"items": [...], "leaves": {...}}
    outputs: dict = field(default_factory=dict)  # (epoch, seq, stream) -> {"text", "crc", "nbytes"}
    start: tuple | None = (
        None  # (loop id, run, manifest) of the state recorded when the first main loop began
    )
    changed: dict = field(default_factory=dict)  # file (as recorded) -> lines of today's source that changed
    block_order: dict = field(default_factory=dict)  # epoch -> [(seq, loop id)] of its blocks, in order
    include: list = field(default_factory=list)  # the packages the recording instrumented (--include)

    def main_run(self, loop_id, run):
        for m in self.mains:
            if m.loop_id == loop_id and m.run == run:
                return m
        return None

    def epochs_to_run(self, main):
        return [e - main.base for e in sorted(self.selected) if main.base <= e < main.base + main.count]

    def has_checkpoint(self, epoch):
        return epoch in self.checkpoints

    def start_for(self, main, i, live):
        """Local index of the checkpoint to restore before running iteration ``i`` (``live`` = keep going)."""
        for c in range(i - 1, live, -1):
            if main.base + c in self.checkpoints:
                return c
        return live

    def memo_for(self, epoch, loop_id, seq):
        return self.memos.get((epoch, loop_id, seq))

    def recorded_seq(self, epoch, loop_id, k):
        """The recorded seq of the ``k``-th execution of block ``loop_id`` in ``epoch`` (None: it did not run
        that often): blocks are matched by loop and occurrence, so a loop added since does not shift them."""
        for seq, found in self.block_order.get(epoch, ()):
            if found == loop_id:
                if k == 0:
                    return seq
                k -= 1
        return None

    def is_probe(self, loop_id):
        return loop_id in self.probes

    # ---- what --plan prints -------------------------------------------------------------------------
    def steps(self):
        """[(epoch, action, seconds)] the replay will take, with estimated seconds from recorded timings."""
        out = []
        for main in self.mains:
            live = -1
            for i in self.epochs_to_run(main):
                if live != i - 1:
                    start = self.start_for(main, i, live)
                    if start > live:
                        out.append((main.base + start, "restore checkpoint", 0.0))
                        live = start
                while live < i:
                    live += 1
                    out.append((main.base + live, *self._epoch_cost(main.base + live)))
        return out

    def _epoch_cost(self, epoch):
        total = self.epoch_seconds.get(epoch, 0.0)
        skipped = 0
        for (e, loop_id, seq), seconds in self.block_seconds.items():
            if e == epoch and (e, loop_id, seq) in self.memos and loop_id not in self.probes:
                total -= seconds
                skipped += 1
        action = f"run epoch ({skipped} block(s) from memos)" if skipped else "run epoch"
        return action, max(total, 0.0)

    def estimate(self):
        return sum(s for _, _, s in self.steps())


def main_runs(run, epochs):
    """The main runs of a recorded run (``run`` as the catalog gives it), with epoch counts and names."""
    found = (run.get("info") or {}).get("main_runs", [])
    names = epoch_specs.loop_names([(m["loop_id"], m["run"]) for m in found])
    mains = []
    for m, name in zip(found, names, strict=True):
        count = sum(1 for e in epochs if e["loop_id"] == m["loop_id"] and e["epoch"] >= m["base"])
        later = [n["base"] for n in found if n["base"] > m["base"]]
        if later:
            count = min(count, min(later) - m["base"])
        mains.append(
            MainRun(
                m["loop_id"], m["run"], m["base"], count, name, m.get("training", False), m.get("why", "")
            )
        )
    return mains


def loops(mains):
    """The epoch-spec view of main runs."""
    return epoch_specs.Loops(epoch_specs.Loop(m.name, m.base, m.count, m.training) for m in mains)


def build(catalog, run_id, root, selected=None, force=False, today=None):
    """Build the plan for ``run_id`` against the sources now on disk under ``root`` (or ``today``'s)."""
    info = catalog.run(run_id) or {}
    epochs = catalog.epochs(run_id)
    mains = main_runs(info, epochs)
    all_epochs = {e["epoch"] for e in epochs}
    chosen = all_epochs if selected is None else {e for e in selected if e in all_epochs}
    checkpoints, memos = {}, {}
    invalid = {
        (d["epoch"], d["kind"], d["loop_id"]) for d in catalog.decisions(run_id) if d["action"] == "invalid"
    }
    start = None
    for s in catalog.snapshots(run_id):
        if (s["epoch"], s["kind"], s["loop_id"]) in invalid:
            continue
        if s["kind"] == "start":
            start = (s["loop_id"], s["seq"], s["manifest"])
        elif s["kind"] == "checkpoint":
            checkpoints[s["epoch"]] = s["manifest"]
        else:
            memos[(s["epoch"], s["loop_id"], s["seq"])] = s["manifest"]
    loops = catalog.loops(run_id)
    report = diff.compare(catalog.sources(run_id), root, loops, today)
    if report.refusals and not force:
        raise PlanError("\n".join(report.refusals) + "\n(use --force to replay anyway)")
    digests = catalog.digests(run_id)
    if digests and (info.get("info") or {}).get("digest_version") != DIGEST_VERSION:
        digests = {}
        report.notes.append(
            f"run {run_id} was recorded by another version of flortrace: its state is not checked on replay"
        )
    plan = Plan(
        run_id=run_id,
        mains=mains,
        selected=chosen,
        checkpoints=checkpoints,
        memos=memos,
        probes=report.probes,
        epoch_seconds={e["epoch"]: e["seconds"] for e in epochs},
        block_seconds={(b["epoch"], b["loop_id"], b["seq"]): b["seconds"] for b in catalog.blocks(run_id)},
        notes=report.notes,
        torch_settings=(info.get("info") or {}).get("torch_settings") or {},
        digests=digests,
        outputs=catalog.outputs(run_id),
        start=start,
        changed=report.changed,
        include=(info.get("info") or {}).get("include") or [],
    )
    for b in sorted(catalog.blocks(run_id), key=lambda b: (b["epoch"], b["seq"])):
        plan.block_order.setdefault(b["epoch"], []).append((b["seq"], b["loop_id"]))
    counts = {}
    for row in catalog.logs(run_ids=[run_id], origin="record"):
        key = (row["name"], row["epoch"], row["step"])
        k = counts.get(key, 0)
        counts[key] = k + 1
        plan.recorded_logs[(*key, k)] = row["value"]
        plan.recorded_names.add(row["name"])
    return plan
