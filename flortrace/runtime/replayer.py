"""Replay mode: answer the hooks from a plan, and check at every step that the recording is reproduced.

The main loop's iterable is still consumed element by element (so ``for epoch in range(n)`` binds the
right value), but the body only runs for the epochs the plan executes; the others are jumped over by
restoring checkpoints. Blocks with memos are skipped. When the first main loop starts, the state recorded at
that point is restored if the script's set-up did not reproduce it (an unseeded script). After the last
selected epoch the loop is brought to its recorded end state (the last checkpoint, else re-executing), so
code after the loop sees what the recording saw. At every epoch end that ran or was restored, the digest
of the loop-carried state is compared with the recorded one (fidelity.py); the first real difference stops
the replay with a report, unless ``force``.
"""

from __future__ import annotations

import ast
import linecache
import math

from .. import state
from ..state import digest as digests
from ..store import CorruptBlob
from . import changeset, fidelity, hindsight, progress
from .logvalues import log_row
from .output import OutputTap
from .session import Session


class Replayer(Session):
    def __init__(
        self,
        plan,
        load,
        catalog,
        run_id,
        tolerance=0.0,
        notify=None,
        keep_unnumbered=True,
        force=False,
        causes=(),
        keep_setup=False,
        overlay=None,
    ):
        super().__init__()
        self.keep_unnumbered = keep_unnumbered  # rows logged outside epochs (one worker of many keeps them)
        self._settings_applied = False
        self.plan, self.load, self.catalog, self.run_id = plan, load, catalog, run_id
        self.include = plan.include
        self.tolerance, self.force = tolerance, force
        self.notify = notify or (lambda msg: None)
        self.known_causes = list(causes)  # what is already known to differ from the recording (arguments...)
        self.keep_setup = keep_setup  # other arguments, forced: the set-up they give is not undone
        self.overlay = overlay or {}  # relative path -> the source to run instead of the file on disk
        self.recorded = plan.recorded_logs  # (name, epoch, step, k) -> value
        self.seen = {}
        self.rows, self.divergences = [], []
        self.executed_epochs, self.skipped_blocks, self.run_blocks = [], 0, 0
        self.tap = OutputTap(self._output_key)
        self.hindsight_depth = 0
        self.checked = set()  # hindsight statements whose first run in an epoch was checked
        self.verified = set()  # ... and found to change no state
        self.live = False  # --force after a divergence: nothing is restored any more
        self.failed_epoch = None  # the epoch whose values are not the recording's (stop or --force)
        self.printed = None  # the first output difference seen: (epoch, recorded line, replayed line)
        self.start_state = None  # "reproduced", "restored", "missing" or None (no start snapshot)
        self.rng_noted = False  # said that a generator's state differs (no divergence by itself)
        self.progress = progress.SILENT  # the progress line (runtime/progress.py) sets itself here
        self.driver = None  # who stops at breakpoints: break_at(frame) (the console; see timetravel.py)
        self.breaks_said = False
        self._epoch_facts()

    def _epoch_facts(self):
        self.block_counts = {}  # loop id -> executions in the current epoch
        self.memos_now = 0
        self.unchecked = set()  # hindsight statements run in the current epoch without a state check
        self.value_diffs = []

    def register(self, loops, path=None):
        """Loops of the edited source; the plan already knows them."""

    def rewrite(self, rel, path, source):
        """(code, source) of a file whose lines changed, its hindsight statements isolated (hindsight.py),
        or of a file replaced by ``overlay`` (another run's edits carried into this run's source)."""
        text = self.overlay.get(rel, source)
        lines = self.plan.changed.get(rel)
        if not lines and text is source:
            return None
        tree = ast.parse(text, path)
        if lines:
            tree = hindsight.wrap(tree, rel, lines)
        if text is not source:  # tracebacks and the console show the lines that run
            linecache.cache[path] = (len(text), None, text.splitlines(True), path)
        return compile(tree, path, "exec", dont_inherit=True), text

    def _apply_settings(self):
        if not self._settings_applied and self.plan.torch_settings:
            state.apply_torch_settings(self.plan.torch_settings)  # same threads and flags as the recording
        self._settings_applied = True

    # ---- the main loop ---------------------------------------------------------------------------
    def on_top_enter(self, act):
        if act.whileloop:  # a recorded `while` epoch loop: numbering comes from the record
            main = self.plan.main_run(act.info.id, act.seq)
            if main is not None:
                act.main, act.base, act.first = True, main.base, -1
                self._apply_settings()
                self._begin_main(act, main)

    def may_become_main(self, act):
        return False  # main loops come from the recording (drive_top), never from what runs now

    def transparent(self, act):
        """Top loops that were no main loop in the recording run untracked and leave the stack alone, so a
        recorded main loop inside one (chosen with --epoch-loop) is still found."""
        return self.plan.main_run(act.info.id, act.seq) is None

    def drive_top(self, act, iterable):
        main = self.plan.main_run(act.info.id, act.seq)
        return None if main is None else self._epochs(act, main, iter(iterable))

    def _epochs(self, act, main, it):
        act.main, act.base, act.first = True, main.base, -1
        self._apply_settings()
        self._begin_main(act, main)
        position = 0  # index of the next element of `it`
        live = -1  # the iteration whose end state the frame holds (-1: the state before the loop)
        final = main.count - 1
        for target in [*self.plan.epochs_to_run(main), final + 1]:
            if live < target - 1 and not self.live:
                live, position = self._jump(act, main, it, position, live, target - 1)
            while live < min(target, final):
                j = live + 1
                position = _skip(it, position, j)
                try:
                    x = next(it)
                except StopIteration:
                    return
                position += 1
                act.index = j - 1
                self._begin_iteration(act)
                yield x
                self._end_iteration(act, last=False)
                live = j

    def _jump(self, act, main, it, position, live, target):
        """Bring the frame to the end state of local epoch ``target`` with the latest usable checkpoint after
        ``live``; returns (the epoch whose end state the frame holds, position in ``it``)."""
        while True:
            k = self.plan.start_for(main, target + 1, live)
            if k <= live:
                if target == main.count - 1 and live < target:
                    self.notify(
                        f"no usable checkpoint of epoch {main.base + target}: re-executing epochs "
                        f"{main.base + live + 1}-{main.base + target} to reach the recorded end state"
                    )
                return live, position
            epoch = main.base + k
            payload = self._load(self.plan.checkpoints[epoch])
            if payload is None:
                del self.plan.checkpoints[epoch]  # damaged: look for an earlier one
                continue
            position = _skip(it, position, k + 1)  # before restoring: advancing may draw random numbers
            problem = self._restore(payload, {"main": act.frame})
            if problem is not None:  # the loop has moved past the earlier checkpoints: no way back
                self._diverge(
                    f"when restoring the checkpoint of epoch {epoch}",
                    epoch,
                    [],
                    [f"the checkpoint cannot be restored into the objects the script builds: {problem}"],
                )
            self._verify(epoch, act.frame, f"after restoring the checkpoint of epoch {epoch}")
            return k, position

    def _begin_main(self, act, main):
        """At the first main loop's start: make the state the recorded one if the set-up did not."""
        self.tap.install()
        start = self.plan.start
        if start is None or (start[0], start[1]) != (main.loop_id, main.run) or self.start_state is not None:
            return
        if self.keep_setup:
            self.start_state = "kept"
            return
        recorded = self.plan.digests.get((main.base, "start"))
        diffs = None if recorded is None else self._real_diffs(recorded, act.frame)
        if diffs == []:
            self.start_state = "reproduced"
            return
        payload = self._load(start[2])
        problem = (
            "the snapshot is damaged" if payload is None else self._restore(payload, {"main": act.frame})
        )
        if problem is not None:
            self.start_state = "missing"
            self.notify(f"cannot restore the state recorded when the main loop began ({problem})")
            return
        self.start_state = "restored"
        state_diffs = [d for d in diffs or () if not d[0].endswith(" RNG")]
        if state_diffs:  # unseeded generators nobody uses differ in every run: not worth a word
            self.notify(
                f"the script's set-up before its main loop did not reproduce the recorded state "
                f"({state_diffs[0][0]} differs: unseeded randomness?); restored the state recorded when "
                "the loop began"
            )
        if recorded is not None:
            where = "after restoring the state recorded at the main loop's start"
            self._verify_against(recorded, act.frame, where, None)

    def _load(self, manifest):
        """A snapshot's payload, or None (with a notice) when the store finds it damaged."""
        try:
            return self.load(manifest)
        except CorruptBlob as exc:
            self.notify(f"{exc}; using an earlier snapshot or re-executing instead")
            return None

    def _restore(self, payload, frames_by_where):
        """Restore a payload; the reason it failed, or None."""
        try:
            changeset.restore(payload, frames_by_where)
        except state.Unsupported as exc:
            return str(exc)
        return None

    # ---- epochs: the fidelity check ----------------------------------------------------------------
    def on_epoch_start(self, act):
        if act.whileloop and not self.live:
            self._skip_ahead(act)
        self._epoch_facts()
        self.executed_epochs.append(self.epoch)
        self.progress.epoch_started(self.epoch)

    def _skip_ahead(self, act):
        """At the top of an iteration of a `while` epoch loop: when the epochs up to the next one the plan
        needs are not selected, restore the latest checkpoint before it and run on from there (a `while`
        loop's position is all in its variables). The last epoch always runs, so the loop ends as it did."""
        main = self.plan.main_run(act.info.id, act.seq)
        if main is None:
            return
        i = act.index
        wanted = [e for e in self.plan.epochs_to_run(main) if e >= i]
        target = wanted[0] if wanted else main.count - 1
        while True:
            k = self.plan.start_for(main, target, i - 1)
            if k < i:
                return
            epoch = main.base + k
            payload = self._load(self.plan.checkpoints[epoch])
            if payload is None:
                del self.plan.checkpoints[epoch]
                continue
            problem = self._restore(payload, {"main": act.frame})
            if problem is not None:
                self._diverge(
                    f"when restoring the checkpoint of epoch {epoch}",
                    epoch,
                    [],
                    [f"the checkpoint cannot be restored into the objects the script builds: {problem}"],
                )
            self._verify(epoch, act.frame, f"after restoring the checkpoint of epoch {epoch}")
            act.index = k + 1
            self.epoch = main.base + k + 1
            return

    def on_epoch_end(self, act, last):
        epoch = self.epoch
        if last and not act.whileloop:  # a driven epoch ends here only when left early (break, an error)
            self.tap.pop(epoch)
            return
        self._compare_output(epoch)
        if self.value_diffs:
            self._diverge(f"at epoch {epoch}", epoch, self.value_diffs)
        self._verify(epoch, act.frame, f"at the end of epoch {epoch}")
        self.progress.epoch_ended(epoch)

    def _verify(self, epoch, frame, where):
        recorded = self.plan.digests.get((epoch, "end"))
        if recorded is not None:
            self._verify_against(recorded, frame, where, epoch)

    def _verify_against(self, recorded, frame, where, epoch):
        real = self._real_diffs(recorded, frame)
        if real and all(path.endswith(" RNG") for path, _, _ in real):
            # A generator in another state draws other numbers from now on; where the script draws them,
            # the state it computes will differ and say so. One the script never uses (an unseeded
            # `random` in a torch script) is no divergence.
            if not self.rng_noted:
                self.rng_noted = True
                self.notify(f"{', '.join(p for p, _, _ in real)} differ from the recording {where}")
            return
        if real:
            self._diverge(where, epoch, real)

    def _real_diffs(self, recorded, frame):
        now = fidelity.take(frame, recorded["items"])
        diffs = digests.differences(recorded["leaves"], now, self.tolerance)
        return fidelity.split(diffs)[0]

    def _diverge(self, where, epoch, diffs, causes=None, labels=None):
        """The replay no longer reproduces the recording: report it (see ``on_divergence``)."""
        divergence = fidelity.Divergence(where, epoch, diffs, causes or self._causes(diffs, where))
        if labels is not None:
            divergence.labels = labels
        if self.printed is not None and self.printed[0] == epoch:
            divergence.printed = self.printed[1:]
        self.divergences.append(divergence)
        self.on_divergence(divergence)

    def on_divergence(self, divergence):
        """Stop the replay (or, forced, go on and run everything live from here on)."""
        if self.failed_epoch is None:
            self.failed_epoch = divergence.epoch
        if not self.force:
            raise fidelity.Diverged(divergence)
        self.live = True

    def _causes(self, diffs, where):
        out = list(self.known_causes)
        if self.unchecked:
            lines = ", ".join(sorted({f"{f}:{n}" for f, n, _ in self.unchecked}))
            out.append(f"an edit that changes state (added lines that ran in this epoch: {lines})")
        if where.startswith("after restoring"):
            out.append(
                "the snapshot does not restore all of the state it holds (a flortrace bug: please report)"
            )
        elif self.memos_now:
            out.append(
                f"{self.memos_now} block(s) of this epoch were restored from memos that miss some of the "
                "state they change (flortrace's changeset; please report)"
            )
        paths = [p for p, _, _ in diffs]
        noise = fidelity.rounding(diffs)
        if noise is not None:
            out.append(fidelity.ROUNDING.format(max(noise * 1000, 1e-9)))
        if any(p.endswith(" RNG") for p in paths) and not self.unchecked:
            out.append("random numbers were drawn differently (unseeded randomness, or code that draws them)")
        if self.start_state == "missing":
            out.append(
                "the set-up before the main loop differs from the recording, and its recorded state could "
                "not be restored"
            )
        if not out:
            out.append(fidelity.NONDETERMINISM)
        return out

    # ---- output ---------------------------------------------------------------------------------
    def _output_key(self):
        if self.epoch is None or self.hindsight_depth:
            return None
        if len(self.stack) > 1 and self.stack[1].role == "block":
            return (self.epoch, self.stack[1].recorded)
        return (self.epoch, -1)

    def _compare_output(self, epoch):
        """Compare what this epoch printed (outside skipped blocks) with what the recording printed."""
        now = self.tap.pop(epoch)
        for (seq, stream), segment in sorted(now.items()):
            if stream != "stdout" or seq == -2:
                continue
            recorded = self.plan.outputs.get((epoch, seq, stream))
            if recorded is None or (recorded["crc"], recorded["nbytes"]) == (segment.crc, segment.nbytes):
                continue
            first = fidelity.first_difference(recorded["text"], segment.text) or ("...", "...")
            if self.printed is None:
                self.printed = (epoch, *first)
                self.notify(f"epoch {epoch} printed {first[1]!r}, the recording printed {first[0]!r}")
        for (e, seq, stream), recorded in self.plan.outputs.items():
            if (
                e == epoch
                and stream == "stdout"
                and seq == -1
                and (seq, stream) not in now
                and recorded["nbytes"]
            ):
                if self.printed is None:
                    self.printed = (epoch, recorded["text"].splitlines()[0][:200], "")
                    self.notify(f"epoch {epoch} printed nothing, the recording printed {self.printed[1]!r}")

    # ---- blocks -------------------------------------------------------------------------------
    def _match_block(self, act):
        """Which recorded block execution this one is (by loop and occurrence); its memo, or None."""
        k = self.block_counts.get(act.info.id, 0)
        self.block_counts[act.info.id] = k + 1
        seq = self.plan.recorded_seq(self.epoch, act.info.id, k)
        act.recorded = -2 if seq is None else seq
        return None if seq is None else self.plan.memo_for(self.epoch, act.info.id, seq)

    def on_block_enter(self, act, can_skip):
        if self.epoch is None:
            return False
        memo = self._match_block(act)
        if can_skip and memo is not None and not self.live and not self.plan.is_probe(act.info.id):
            payload = self._load(memo)
            if payload is not None:
                problem = self._restore(payload, {"main": self.stack[0].frame, "block": act.frame})
                if problem is None:
                    self.skipped_blocks += 1
                    self.memos_now += 1
                    return True
                self.notify(
                    f"cannot restore the memo of {act.info.id} in epoch {self.epoch} ({problem}); running it"
                )
        self.run_blocks += 1
        return False

    def breakpoint(self, frame):
        """``flortrace.breakpoint()`` or ``breakpoint()`` during replay: the driver (a console) stops at
        ``frame``; without one (a parallel replay's worker, no terminal) it is ignored, said once."""
        if self.driver is not None:
            self.driver.break_at(frame)
        elif not self.breaks_said:
            self.breaks_said = True
            self.notify(
                "breakpoints are ignored by parallel replay workers (use --workers 1 to stop at them)"
            )

    # ---- hindsight statements ---------------------------------------------------------------------
    def hindsight(self, file, line, column=0):
        return hindsight.Isolation(self, (file, line, column))

    def check_statement(self, key):
        """Before a hindsight statement: the digest to compare after it, on its first run in an epoch."""
        if key in self.checked or self.epoch is None or not self.stack:
            return None
        self.checked.add(key)
        recorded = self._items_now()
        return None if recorded is None else (recorded, fidelity.take(self.stack[0].frame, recorded))

    def statement_done(self, key, before, failed):
        if before is None or failed or not self.stack:
            if key not in self.verified and self.epoch is not None:
                self.unchecked.add(key)
            return
        items, leaves = before
        after = fidelity.take(self.stack[0].frame, items)
        real = fidelity.split(digests.differences(leaves, after))[0]
        if not real:
            self.verified.add(key)
        else:
            self._diverge(
                f"in epoch {self.epoch}: the added line {key[0]}:{key[1]} changes state",
                self.epoch,
                real,
                ["an added line must only read state (use --force to replay the edit anyway)"],
                labels=("before it", "after it"),
            )

    def _items_now(self):
        """The loop-carried items of the current epoch (as recorded), for checking hindsight statements."""
        recorded = self.plan.digests.get((self.epoch, "end"))
        if recorded is None:
            ends = [v for (e, p), v in self.plan.digests.items() if p == "end" and e <= self.epoch]
            recorded = ends[-1] if ends else None
        return None if recorded is None else recorded["items"]

    # ---- logs and fidelity ----------------------------------------------------------------------
    def log(self, name, value, lineno=None, step=None):
        row = log_row(name, value, *self.position(), lineno, "replay", step)
        epoch, step = row["epoch"], row["step"]
        k = self.seen.get((name, epoch, step), 0)
        self.seen[(name, epoch, step)] = k + 1
        key = (name, epoch, step, k)
        if key in self.recorded:
            old, new = self.recorded[key], row["value"]
            if not _same(old, new, self.tolerance) and not fidelity.volatile(name, repr(old), repr(new)):
                path = name if step is None else f"{name} (step {step})"
                self.value_diffs.append((path, _leaf(old), _leaf(new)))
            return
        if epoch is None and not self.keep_unnumbered:
            return
        if name in self.plan.recorded_names or (epoch is not None and epoch not in self.plan.selected):
            return  # catch-up epochs run only to reach a selected one
        self.rows.append(row)

    def finish(self):
        """Store the new values: for each name this replay logged, its rows of the epochs this replay ran (and
        those outside epochs) replace the older ones; other names keep theirs. Epochs from a divergence on
        are not stored, unless forced."""
        self.tap.uninstall()
        failed = None if self.force else self.failed_epoch
        ran = sorted(
            e for e in set(self.executed_epochs) & self.plan.selected if failed is None or e < failed
        )
        rows = [r for r in self.rows if r["epoch"] is None or failed is None or r["epoch"] < failed]
        names = sorted({r["name"] for r in rows})
        if names:
            unnumbered = [None] if self.keep_unnumbered else []
            self.catalog.delete_logs(self.run_id, "replay", [*ran, *unnumbered], names=names)
            self.catalog.add_logs(self.run_id, rows)
        self.rows = rows


def _skip(it, position, target):
    while position < target:
        next(it)
        position += 1
    return position


def _leaf(value):
    return repr(value) if not isinstance(value, float) else f"{value!r}"


def _same(a, b, tolerance):
    if a == b:
        return True
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=tolerance, abs_tol=tolerance) if tolerance else False
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return all(_same(x, y, tolerance) for x, y in zip(a, b, strict=True))
    return False
