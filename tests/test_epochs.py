"""--epochs specs behave like Python slices and lists."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flortrace.replay.epochs import SpecError, parse


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
