"""Liveness: which names an epoch may read before it writes them (the others need no checkpoint)."""

from __future__ import annotations

import textwrap

from flortrace.instrument.liveness import exposed


def live(src, qualname="<module>", ordinal=0):
    return exposed(textwrap.dedent(src), qualname, ordinal)


def test_a_name_written_at_the_top_of_the_body_is_dead():
    found = live(
        """\
        for k in range(3):
            total, acc = step(k)
            print(total, acc, w)
        """
    )
    assert "total" not in found and "acc" not in found and {"w", "step", "print"} <= found


def test_read_before_write_and_augmented_assignment_are_live():
    found = live(
        """\
        for k in range(3):
            x = f(x)
            y += 1
            z = 0
        """
    )
    assert {"x", "y", "f"} <= found and "z" not in found


def test_a_write_inside_a_loop_or_one_branch_does_not_kill():
    found = live(
        """\
        for e in range(3):
            for i in range(n):
                loss = compute(i)
            if e:
                best = loss
            else:
                other = 1
            print(loss, best, other)
        """
    )
    assert {"loss", "best", "other"} <= found


def test_both_branches_writing_kill():
    found = live(
        """\
        for e in range(3):
            if e:
                lr = 1
            else:
                lr = 2
            use(lr)
        """
    )
    assert "lr" not in found


def test_stores_into_attributes_read_their_object():
    assert "state" in live("for e in range(3):\n    state.count = e\n")


def test_module_loops_keep_what_functions_read_as_globals():
    found = live(
        """\
        def report():
            return total


        def local_only():
            total = 1
            return total


        for e in range(3):
            total = e
            report()
        """
    )
    assert "total" in found


def test_a_functions_own_local_of_the_same_name_is_not_a_global_read():
    found = live(
        """\
        def f():
            total = 1
            return total


        for e in range(3):
            total = f()
        """
    )
    assert "total" not in found


def test_dynamic_namespace_access_makes_everything_live():
    assert live("for e in range(3):\n    x = 1\n    print(locals())\n") is None


def test_loops_in_functions_by_ordinal():
    src = """\
        def train():
            for e in range(2):
                pass
            for e in range(3):
                tmp = 1
                keep = keep + tmp
        """
    found = live(src, "train", 1)
    assert "keep" in found and "tmp" not in found
