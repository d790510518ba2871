"""Capture/restore and fingerprints of numpy arrays, scalars and random generators."""

import pickle

import pytest

from flortrace.state import capture, fingerprint, is_state, materialize, nbytes, restore

np = pytest.importorskip("numpy")


def roundtrip(c):
    """Pickle as the writer does (protocol 5, out-of-band buffers, read back as read-only bytes)."""
    buffers = []
    data = pickle.dumps(c, protocol=5, buffer_callback=buffers.append)
    return pickle.loads(data, buffers=[bytes(b.raw()) for b in buffers])


class Holder:
    def __init__(self, **kw):
        self.__dict__.update(kw)


@pytest.mark.parametrize(
    "make",
    [
        lambda: np.arange(12.0).reshape(3, 4),
        lambda: np.arange(12, dtype=np.int16).reshape(3, 4).T,
        lambda: np.array(3.5),
        lambda: np.array([True, False]),
        lambda: np.array([1 + 2j, 3j], dtype=np.complex64),
        lambda: np.array(["2020-01-01", "2021-06-30"], dtype="datetime64[D]"),
        lambda: np.zeros(3, dtype=[("a", "i4"), ("b", "f8")]),
        lambda: np.zeros((0, 3)),
    ],
)
def test_array_restored_in_place(make):
    a = make()
    expected = a.copy()
    c = roundtrip(capture(a))
    a[...] = np.ones_like(a)
    assert restore(a, c) is a
    assert np.array_equal(a, expected)
    built = materialize(c)
    assert built is not a and built.flags.writeable and np.array_equal(built, expected)


def test_restored_arrays_never_alias_the_capture():
    a = np.arange(4.0)
    c = roundtrip(capture(a))
    built = materialize(c)
    built += 100
    restore(a, c)
    a += 100
    assert np.array_equal(materialize(c), np.arange(4.0))


def test_view_restored_writes_through_to_its_base():
    base = np.zeros((2, 3))
    view = base.T
    c = capture(view)
    view[...] = 7
    c2 = capture(np.arange(6.0).reshape(3, 2))
    assert restore(view, c2) is view
    assert np.array_equal(base, np.arange(6.0).reshape(3, 2).T)
    assert restore(view, c) is view and np.all(base == 0)


def test_shape_change_or_read_only_array_gives_a_new_array():
    c = capture(np.arange(3.0))
    wrong_shape = np.zeros(4)
    assert restore(wrong_shape, c) is not wrong_shape
    frozen = np.zeros(3)
    frozen.flags.writeable = False
    out = restore(frozen, c)
    assert out is not frozen and np.array_equal(out, np.arange(3.0))


def test_object_arrays_and_subclasses_are_pickled():
    objs = np.array([{"a": 1}, [2]], dtype=object)
    c = roundtrip(capture(objs))
    objs[0]["a"] = 5
    assert restore(objs, c) is objs and objs[0] == {"a": 1}
    masked = np.ma.masked_array([1.0, 2.0], mask=[True, False])
    built = materialize(roundtrip(capture(masked)))
    assert isinstance(built, np.ma.MaskedArray) and list(built.mask) == [True, False]


def test_numpy_scalars_are_values():
    obj = Holder(best=np.float64(0.5), count=np.int64(3))
    c = roundtrip(capture(obj))
    obj.best = np.float64(0.9)
    restore(obj, c)
    assert obj.best == 0.5 and type(obj.best) is np.float64 and obj.count == 3


@pytest.mark.parametrize("bit_generator", ["PCG64", "MT19937", "Philox", "SFC64"])
def test_generator_draws_repeat_after_restore(bit_generator):
    rng = np.random.Generator(getattr(np.random, bit_generator)(7))
    rng.normal(size=3)
    c = roundtrip(capture(rng))
    first = rng.normal(size=5)
    assert restore(rng, c) is rng
    assert np.array_equal(rng.normal(size=5), first)
    assert np.array_equal(materialize(c).normal(size=5), first)


def test_generator_with_another_algorithm_is_replaced():
    c = capture(np.random.Generator(np.random.Philox(1)))
    live = np.random.default_rng(0)
    out = restore(live, c)
    assert out is not live and type(out.bit_generator).__name__ == "Philox"


def test_random_state_and_bare_bit_generator():
    rs = np.random.RandomState(3)
    rs.standard_normal()  # leaves a cached gaussian in the state
    bg = np.random.PCG64(5)
    c = roundtrip(capture({"rs": rs, "bg": bg}))
    first = (rs.standard_normal(4), bg.random_raw(3))
    state = {"rs": rs, "bg": bg}
    restore(state, c)
    assert state["rs"] is rs and state["bg"] is bg
    assert np.array_equal(rs.standard_normal(4), first[0]) and np.array_equal(bg.random_raw(3), first[1])


def test_memmap_is_not_state(tmp_path):
    m = np.memmap(tmp_path / "m.dat", dtype=np.float32, mode="w+", shape=(4,))
    assert not is_state(m)
    assert is_state(np.zeros(2)) and is_state(np.random.default_rng())


def test_fingerprint_sees_array_and_generator_changes():
    a = np.arange(1000.0)
    rng = np.random.default_rng(0)
    obj = Holder(a=a, rng=rng, t=a.T)
    before = fingerprint(obj)
    assert fingerprint(obj) == before
    a[500] += 1
    assert fingerprint(obj) != before
    before = fingerprint(obj)
    rng.random()
    assert fingerprint(obj) != before
    strided = np.arange(20.0).reshape(4, 5)[:, ::2]
    before = fingerprint(strided)
    assert fingerprint(strided) == before
    strided[3, 2] = -1
    assert fingerprint(strided) != before


def test_nbytes_counts_array_data():
    c = capture({"w": np.zeros(1000), "b": np.zeros(10, dtype=np.float32)})
    assert nbytes(c) == 8000 + 40
    assert nbytes(roundtrip(c)) == 8040
