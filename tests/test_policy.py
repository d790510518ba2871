"""The adaptive policy keeps measured snapshot costs within the overhead budget."""

import pytest

from flortrace.runtime.policy import Policy


def never_busy():
    return False


def test_first_snapshot_measures_then_budget_decides():
    p = Policy(0.05, cores=2)
    assert p.decide(1.0, never_busy) == (True, "first snapshot: measuring its cost")
    p.add_stall(0.1)
    p.add_compute(1.0)
    take, reason = p.decide(1.0, never_busy)
    assert not take and "over budget" in reason
    p.add_compute(1.0)
    p.add_compute(1.0)
    assert p.decide(1.0, never_busy)[0]  # 0.05 * 4 s >= 0.1 s spent + 0.1 s estimated


def test_writer_time_counts_for_its_share_of_the_machine():
    small, big = Policy(0.05, cores=2), Policy(0.05, cores=17)
    for p in (small, big):
        p.add_stall(0.01)
        p.writer_time(1.0)
        p.add_compute(10.0)
    assert not small.decide(1.0, never_busy)[0]  # the writer took a whole core of two
    assert big.decide(1.0, never_busy)[0]  # 1/16 of a big machine


def test_busy_writer_skips_without_blocking():
    p = Policy(1.0, cores=4)
    p.add_stall(0.001)
    p.add_compute(1.0)
    take, reason = p.decide(1.0, lambda: True)
    assert not take and "busy" in reason


def test_spending_stays_within_budget_over_a_long_run():
    p = Policy(0.05, cores=2)
    spent, compute = 0.0, 0.0
    for _ in range(500):
        if p.decide(0.2, never_busy)[0]:
            p.add_stall(0.02)
            spent += 0.02
        p.add_compute(0.2)
        compute += 0.2
    assert spent <= 0.05 * compute + 0.02 and spent >= 0.03 * compute


def test_zero_budget_takes_no_snapshot_not_even_a_measuring_one():
    p = Policy(0.0, cores=2)
    for _ in range(3):
        take, reason = p.decide(1.0, never_busy)
        assert not take and "--overhead 0" in reason
        p.add_compute(1.0)


def test_bookkeeping_counts_against_the_budget():
    p, q = Policy(0.05, cores=2), Policy(0.05, cores=2)
    for policy in (p, q):
        policy.add_stall(0.01)
        for _ in range(4):
            policy.add_compute(1.0)
    q.add_own(0.24)  # fingerprinting the first epochs, writing catalog rows
    assert p.decide(1.0, never_busy)[0]  # 0.05 * 5 s > 0.01 s spent + 0.01 s estimated
    take, reason = q.decide(1.0, never_busy)
    assert not take and "over budget" in reason  # ... but not once 0.24 s of bookkeeping are added


def test_start_up_is_charged_in_parts_over_a_main_loop_of_known_length():
    p = Policy(0.05, cores=2)
    p.add_fixed(1.0)
    p.spread_over(4)
    for _ in range(4):
        p.add_compute(1.0)
        p.epoch_done()
    assert p.own == pytest.approx(1.0) and p.fixed == pytest.approx(0.0)
    q = Policy(0.05, cores=2)
    q.add_fixed(1.0)  # a loop of unknown length: all at once
    q.epoch_done()
    assert q.own == pytest.approx(1.0)
