"""The recorder in process: patched loops of a tiny script report to it, and what it writes to the catalog
and hands to the writer is what replay needs (the epoch loop, what epochs change, memos and checkpoints)."""

from __future__ import annotations

import textwrap

from flortrace.instrument.patch import instrument_module_code
from flortrace.runtime import hooks
from flortrace.runtime.recorder import Recorder


class Catalog:
    """Keeps what the recorder writes."""

    def __init__(self):
        self.info, self.rows, self.loops, self.changesets = {}, {}, [], {}

    def set_run_info(self, run_id, **info):
        self.info.update(info)

    def add_loops(self, run_id, rows):
        self.loops.extend(rows)

    def add_progress(self, run_id, **tables):
        for table, rows in tables.items():
            self.rows.setdefault(table, []).extend(rows)

    def set_changeset(self, run_id, loop_id, reasons):
        self.changesets[loop_id] = dict(reasons)


class Writer:
    """Takes every snapshot at once."""

    failed, busy = None, False

    def __init__(self):
        self.jobs = []

    def alloc(self, nbytes):
        return None

    def in_flight(self):
        return 0.0

    def stats(self):
        return {"cpu_seconds": 0.0, "phases": {}}

    def submit_many(self, snaps, epoch, reason):
        self.jobs.append((epoch, [(s["kind"], s["loop_id"]) for s in snaps]))
        return True

    def wait(self):
        pass


SCRIPT = textwrap.dedent(
    """
    import time
    weights = [0.0, 0.0]
    steps = 0
    for epoch in range(4):
        for x in (1.0, 2.0, 3.0):
            weights[0] += x
            steps += 1
        time.sleep(0.01)
        note = weights[0] * 2  # written before read in every epoch: not carried over
    """
)


def record(source, overhead=1.0):
    catalog, writer = Catalog(), Writer()
    # The loop is named: which loop is the epoch loop depends on torch being imported (by another test in the
    # same process, say), whose evidence this script has none of; the choice itself is tested end to end.
    recorder = Recorder(catalog, 1, writer, overhead, epoch_loop="train.py:5")
    code, loops = instrument_module_code(compile(source, "train.py", "exec"), "train.py", hooks.HOOKS, source)
    recorder.register(loops, "train.py")
    recorder.sources["train.py"] = source  # as control.record hands each instrumented file's source over
    namespace = {"__name__": "__main__", "__builtins__": __builtins__}
    hooks.activate(recorder)
    try:
        exec(code, namespace)
    finally:
        hooks.deactivate()
    recorder.finish()
    return recorder, catalog, writer, namespace


def test_the_named_loop_is_the_epoch_loop_and_its_epochs_are_counted():
    recorder, catalog, _, namespace = record(SCRIPT)
    assert namespace["weights"] == [24.0, 0.0] and namespace["steps"] == 12  # the script ran as it would
    assert recorder.summary() == "4 epochs"
    kinds = {row["lineno"]: row["kind"] for row in catalog.loops}
    assert kinds[5] == "main" and kinds[6] == "block"
    assert [row[0] for row in catalog.rows["epochs"]] == [0, 1, 2, 3]
    (main,) = catalog.info["main_runs"]
    assert main["epochs"] == 4 and main["training"] and main["why"] == "chosen with epoch_loop = train.py:5"


def test_what_epochs_carry_over_is_found_and_dead_names_are_not():
    recorder, *_ = record(SCRIPT)
    assert {("local", "weights"), ("local", "steps")} <= recorder.main_items
    (live,) = recorder.live.values()
    assert {"weights", "steps"} <= live and "note" not in live  # note is written before it is read


def test_every_epoch_has_a_decision_and_the_start_state_goes_with_the_first_snapshot():
    _, catalog, writer, _ = record(SCRIPT)
    decisions = {row[0]: row for row in catalog.rows["decisions"]}
    assert sorted(decisions) == [0, 1, 2, 3] and all(
        row[4] for row in decisions.values()
    )  # each with a reason
    assert decisions[3][3] == "take" and "last epoch" in decisions[3][4]
    loop = "train.py:<module>#0"
    assert writer.jobs[0] == (0, [("start", loop), ("checkpoint", loop)])
    assert writer.jobs[-1] == (3, [("checkpoint", loop)])


def test_no_snapshots_at_overhead_zero():
    _, catalog, writer, _ = record(SCRIPT, overhead=0)
    assert writer.jobs == []
    assert {row[3] for row in catalog.rows["decisions"]} == {"skip"}
