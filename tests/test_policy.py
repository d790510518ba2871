"""The adaptive policy: memos by Flor's rule, checkpoints spaced to fit, everything within the budget."""

import pytest

from flortrace.runtime.policy import Policy


def never_busy():
    return False


def always_busy():
    return True


class Run:
    """Drives a Policy the way the recorder does, with costs the test sets (seconds)."""

    def __init__(self, overhead=0.05, cores=2, epochs=None, startup=0.0, **costs):
        self.p = Policy(overhead, cores=cores)
        self.p.add_fixed(startup)
        if epochs is not None:
            self.p.spread_over(epochs)
        self.costs = dict(epoch=1.0, block=0.9, memo=0.002, checkpoint=0.004, writer=0.002, own=0.001)
        self.costs.update(costs)
        self.writer_cpu = 0.0
        self.log = []  # (memo taken, checkpoint taken) per epoch

    def epoch(self, last=False, scale=1.0):
        c = {k: v * scale for k, v in self.costs.items()}
        p = self.p
        p.writer_time(self.writer_cpu, busy=False)
        memo, _ = p.memo("train", c["block"], never_busy)
        p.epoch_done(c["epoch"])
        checkpoint, reason = p.checkpoint(last, never_busy)
        items = [("memo", "train", c["memo"])] if memo else []
        items += [("checkpoint", "main", c["checkpoint"])] if checkpoint else []
        if items:
            p.submitted(items)
            self.writer_cpu += c["writer"] * len(items)
        if checkpoint:
            p.checkpointed()
        p.add_own(c["own"])
        self.log.append((memo, checkpoint))
        return memo, checkpoint, reason

    def epochs(self, n, **kw):
        for i in range(n):
            self.epoch(last=i == n - 1, **kw)
        return self.log


def test_zero_budget_takes_nothing_not_even_a_measuring_snapshot():
    p = Policy(0.0, cores=2)
    for _ in range(3):
        assert p.memo("train", 1.0, never_busy) == (False, "no snapshots (--overhead 0)")
        p.epoch_done(1.0)
        assert p.checkpoint(False, never_busy) == (False, "no snapshots (--overhead 0)")


def test_first_snapshots_measure_and_fast_blocks_get_no_memo():
    p = Policy(0.05, cores=2)
    assert p.memo("train", 0.5, never_busy) == (True, "first memo of this block: measuring its cost")
    take, reason = p.memo("tiny", 0.0002, never_busy)
    assert not take and "too fast" in reason
    p.epoch_done(1.0)
    assert p.checkpoint(False, never_busy) == (True, "first checkpoint: measuring its cost")


def test_memos_follow_flors_rule():
    cheap = Run(block=0.9, memo=0.002).epochs(10)
    assert all(memo for memo, _ in cheap)
    # 8% of the block, but 0.4% of the epoch: a small part of its allowance, so taken all the same.
    small = Run(epoch=1.0, block=0.05, memo=0.004, writer=0.0).epochs(10)
    assert all(memo for memo, _ in small)
    # 40% of the block and of the epoch's allowance: over Flor's ratio, and not cheap either.
    dear = Run(epoch=1.0, block=0.05, memo=0.02, writer=0.0)
    log = dear.epochs(10)
    assert log[0][0] and not any(memo for memo, _ in log[1:])
    take, reason = dear.p.memo("train", 0.05, never_busy)
    assert not take and reason == "costs 40.0% of the block, over the 5% budget"


def test_a_block_that_runs_faster_than_its_memo_restores_is_not_memoized():
    run = Run(block=0.003, memo=0.004, writer=0.0)
    run.epochs(3)
    take, reason = run.p.memo("train", 0.003, never_busy)
    assert not take and "restoring would cost about as much as running it" in reason


def test_cheap_snapshots_are_always_taken_even_right_after_start_up():
    """A 0.3 s start-up on a run of 12 half-second epochs: its budget (0.3 s) is all start-up, yet every
    epoch is memoized and checkpointed, since each snapshot is a small part of an epoch's allowance."""
    run = Run(epoch=0.5, block=0.45, memo=0.001, checkpoint=0.001, writer=0.001, startup=0.3, epochs=12)
    assert run.epochs(12) == [(True, True)] * 12


def test_start_up_is_paid_once_spread_over_the_epochs_and_capped():
    p = Policy(0.05, cores=2)
    p.add_fixed(1.0)
    p.spread_over(4)
    for _ in range(4):
        p.epoch_done(10.0)  # allowance 0.5 s: start-up parts of 0.25 s fit
    assert p.spent == pytest.approx(1.0) and p.debt == pytest.approx(0.0)
    q = Policy(0.05, cores=2)
    q.add_fixed(1.0)
    q.spread_over(4)
    q.epoch_done(1.0)  # allowance 0.05 s: at most half of it goes to the start-up
    assert q.spent == pytest.approx(0.025) and q.debt == pytest.approx(0.975)


def test_checkpoints_are_spaced_to_fit_the_budget_after_memos():
    # Allowance 50 ms an epoch; memo 2+2 ms, bookkeeping 1 ms: 45 ms left; a checkpoint costs 100+2 ms.
    log = Run(epoch=1.0, checkpoint=0.1, writer=0.002).epochs(20)
    taken = [e for e, (_, checkpoint) in enumerate(log) if checkpoint]
    assert all(memo for memo, _ in log)
    assert taken[0] == 0 and taken[-1] == 19
    gaps = {b - a for a, b in zip(taken[1:-2], taken[2:-1], strict=True)}
    assert gaps == {3}  # ceil(102 / 45)


def test_the_same_run_takes_the_same_snapshots_whatever_the_load():
    """Under load, compute and snapshot costs both grow: the decisions are made on their ratios."""
    calm = Run(epoch=0.5, block=0.45, checkpoint=0.05, memo=0.004).epochs(30)
    loaded = Run(epoch=0.5, block=0.45, checkpoint=0.05, memo=0.004).epochs(30, scale=3.0)
    assert calm == loaded
    assert sum(c for _, c in calm) >= 8


def test_noise_in_one_measurement_does_not_change_the_spacing():
    run = Run(epoch=1.0, checkpoint=0.1)
    run.epochs(8)
    spacing = run.p.spacing
    run.costs["checkpoint"] = 0.5  # one burst of load
    run.epoch()
    run.costs["checkpoint"] = 0.1
    run.epochs(8)
    assert run.p.spacing == spacing


def test_the_last_epoch_is_always_checkpointed():
    p = Policy(0.05, cores=2)
    p.epoch_done(0.001)
    assert p.checkpoint(True, always_busy) == (True, "last epoch of the main loop: always checkpointed")


def test_nothing_is_captured_while_the_writer_is_behind():
    p = Policy(1.0, cores=4)
    assert p.memo("train", 1.0, always_busy) == (False, "writer still busy with the previous snapshot")
    p.epoch_done(1.0)
    assert p.checkpoint(False, always_busy)[0] is False


def test_writer_time_counts_for_its_share_of_the_machine_once_the_job_is_done():
    small, big = Policy(0.05, cores=2), Policy(0.05, cores=17)
    for p in (small, big):
        p.submitted([("memo", "train", 0.001)])  # the first job: measuring, paid as a one-off
        p.writer_time(0.0, busy=True)
        p.writer_time(1.0, busy=False)
        p.submitted([("checkpoint", "main", 0.001)])
        p.writer_time(1.0, busy=True)  # not done yet: nothing charged
        spent = p.spent
        p.writer_time(2.0, busy=False)
        p.writer_time(2.0, busy=False)  # asked again: charged once
        assert p.spent - spent == pytest.approx(1.0 * p.share)
    assert small.estimate("checkpoint", None) == pytest.approx(1.001)
    assert big.estimate("checkpoint", None) == pytest.approx(0.001 + 1 / 16)
    assert small.estimate("memo", "train") == pytest.approx(1.001)  # measured, charged as a one-off


def test_spending_stays_within_budget_over_a_long_run():
    """Allowance 10 ms an epoch; memo and bookkeeping take 7 ms of it, checkpoints the 3 ms left."""
    for checkpoint in (0.0005, 0.05, 0.5):
        run = Run(epoch=0.2, block=0.18, memo=0.003, checkpoint=checkpoint, writer=0.002, own=0.002)
        run.epochs(500)
        forced = checkpoint + 0.002 + 0.05 * 0.2  # the last epoch's checkpoint is taken whatever it costs
        assert run.p.spent <= 0.05 * run.p.compute + forced, checkpoint
        assert run.p.spent >= 0.04 * run.p.compute, checkpoint  # and the budget is used
        affordable = min(500, 500 * 0.003 / (checkpoint + 0.002))
        assert sum(c for _, c in run.log) >= 0.7 * affordable, checkpoint
