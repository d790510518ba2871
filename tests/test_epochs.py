"""--epochs specs behave like Python slices and lists."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flortrace.replay.epochs import Loop, Loops, SpecError, loop_names, parse


def test_examples():
    assert parse("7", 10) == [7]
    assert parse("2:5", 10) == [2, 3, 4]
    assert parse("::3", 10) == [0, 3, 6, 9]
    assert parse("0,3,9", 10) == [0, 3, 9]
    assert parse("-1", 10) == [9]
    assert parse("8:,1", 10) == [1, 8, 9]


@pytest.mark.parametrize("bad", ["", "x", "1:2:3:4", "::0", "10", "-11", "1,,2", "a:b"])
def test_bad_specs_say_why(bad):
    with pytest.raises(SpecError):
        parse(bad, 10)


@given(
    st.integers(0, 50),
    st.one_of(st.none(), st.integers(-60, 60)),
    st.one_of(st.none(), st.integers(-60, 60)),
    st.one_of(st.none(), st.integers(1, 7)),
)
def test_slices_match_python(count, start, stop, step):
    spec = ":".join("" if v is None else str(v) for v in (start, stop, step))
    assert parse(spec, count) == sorted(range(count)[slice(start, stop, step)])


# ---- several main loops: names and the default loop ------------------------------------------------
def phases():
    return Loops([Loop("train", 0, 10, training=False), Loop("finetune", 10, 4, training=True)])


def test_loops_are_named_after_their_function_or_script():
    mains = [
        ("train.py:<module>#0", 0),
        ("train.py:fit#1", 0),
        ("train.py:<module>#0", 1),
        ("a/b.py:T.run#0", 0),
    ]
    assert loop_names(mains) == ["train", "fit", "train#2", "run"]


def test_items_without_a_name_select_the_training_loop():
    loops = phases()
    assert loops.select("0,2") == [10, 12]
    assert loops.select("-2:") == [12, 13]
    assert loops.select("train:8:") == [8, 9]
    assert loops.select("train:-1,1") == [9, 11]
    assert loops.select("train") == list(range(10))
    assert loops.show(3) == "train:3" and loops.show(11) == "1"


def test_unknown_names_and_empty_selections_are_errors():
    with pytest.raises(SpecError, match="no main loop named 'eval'.*train, finetune"):
        phases().select("eval:1")
    with pytest.raises(SpecError, match="selects no epoch"):
        phases().select("5:2")
    with pytest.raises(SpecError, match="out of range"):
        phases().select("4")


def test_without_a_training_flag_the_longest_loop_is_the_default():
    loops = Loops([Loop("a", 0, 3), Loop("b", 3, 7)])
    assert loops.default.name == "b" and loops.select("0") == [3]


@given(st.lists(st.integers(1, 6), min_size=1, max_size=4), st.data())
def test_every_epoch_is_selected_by_exactly_one_name(counts, data):
    base, loops = 0, []
    for i, n in enumerate(counts):
        loops.append(Loop(f"l{i}", base, n, training=i == 0))
        base += n
    found = Loops(loops)
    epoch = data.draw(st.integers(0, base - 1))
    loop = found.of(epoch)
    assert found.select(f"{loop.name}:{loop.local(epoch)}") == [epoch]
