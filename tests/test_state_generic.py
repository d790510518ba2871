"""Capture/restore of plain values, containers and Python objects; is_state; fingerprints of plain data."""

import collections
import copy
import dataclasses
import enum
import io
import logging
import os
import pickle
import threading
import types
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flortrace.state import Unsupported, capture, fingerprint, is_state, materialize, nbytes, restore


def roundtrip(c):
    """Pickle as the writer does (protocol 5, out-of-band buffers, read back as read-only bytes)."""
    buffers = []
    data = pickle.dumps(c, protocol=5, buffer_callback=buffers.append)
    return pickle.loads(data, buffers=[bytes(b.raw()) for b in buffers])


class Box:
    def __init__(self, x, **kw):
        self.x = x
        self.__dict__.update(kw)


class Slotted:
    __slots__ = ("a", "__hidden", "unset")

    def __init__(self, a, hidden):
        self.a = a
        self.__hidden = hidden

    def hidden(self):
        return self.__hidden


class Stateful:
    def __init__(self):
        self.values = [1, 2]
        self.cache = "derived"
        self.setstate_calls = 0

    def __getstate__(self):
        return {"values": self.values}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.cache = "derived"
        self.setstate_calls = getattr(self, "setstate_calls", 0) + 1


@dataclasses.dataclass(frozen=True)
class Frozen:
    a: int
    b: tuple


class Color(enum.Enum):
    RED = 1
    BLUE = 2


Point = collections.namedtuple("Point", "x y")


def helper():
    return 1


@pytest.mark.parametrize(
    "value", [0, -3, 2.5, "s", b"b", None, True, 1j, (1, "a", (2.0, None)), frozenset({1, 2})]
)
def test_values_come_back_equal(value):
    c = roundtrip(capture(value))
    assert restore(None, c) == value
    assert materialize(c) == value


def test_list_restored_in_place():
    items = [1, 2.5, "a"]
    c = roundtrip(capture(items))
    items.append(4)
    items[0] = 9
    assert restore(items, c) is items
    assert items == [1, 2.5, "a"]


def test_list_keeps_its_elements_identity():
    first, second = Box(1), Box(2)
    items = [first, second]
    c = roundtrip(capture(items))
    first.x = 10
    items.append(Box(3))
    assert restore(items, c) is items
    assert [b.x for b in items] == [1, 2]
    assert items[0] is first and items[1] is second


def test_dicts_keep_type_order_and_default_factory():
    od = collections.OrderedDict([("b", 1), ("a", [1])])
    dd = collections.defaultdict(list, {"k": [1, 2]})
    counter = collections.Counter("aab")
    state = {"od": od, "dd": dd, "counter": counter}
    expected = copy.deepcopy(state)
    c = roundtrip(capture(state))
    od.move_to_end("b")
    od["c"] = 3
    dd["k"].append(3)
    dd["new"].append(1)
    counter.update("bbb")
    assert restore(state, c) is state
    assert state == expected and list(od) == ["b", "a"]
    assert state["od"] is od and state["dd"] is dd and dd.default_factory is list
    built = materialize(c)
    assert built == expected and built["dd"].default_factory is list
    assert type(built["counter"]) is collections.Counter


def test_sets_deques_and_tuples():
    inner = [1, 2]
    state = {
        "set": {1, "a"},
        "deque": collections.deque([1, 2], maxlen=3),
        "tuple": (inner, 5),
        "p": Point(1, 2),
    }
    c = roundtrip(capture(state))
    state["set"].add(3)
    state["deque"].append(3)
    inner.append(3)
    before = state["tuple"]
    restore(state, c)
    assert state["set"] == {1, "a"} and state["deque"] == collections.deque([1, 2], maxlen=3)
    assert state["tuple"] is before and inner == [1, 2]
    assert state["p"] == Point(1, 2) and type(state["p"]) is Point


def test_object_attributes_restored_in_place_and_extra_ones_deleted():
    child = Box([1, 2])
    obj = Box(1, child=child, name="n")
    c = roundtrip(capture(obj))
    obj.x = 2
    obj.added = True
    child.x.append(3)
    obj.name = "other"
    assert restore(obj, c) is obj
    assert obj.x == 1 and obj.name == "n" and not hasattr(obj, "added")
    assert obj.child is child and child.x == [1, 2]


def test_slots_are_captured_including_mangled_and_unset_ones():
    obj = Slotted([1], "h")
    c = roundtrip(capture(obj))
    obj.a.append(2)
    obj.unset = 5
    restore(obj, c)
    assert obj.a == [1] and obj.hidden() == "h" and not hasattr(obj, "unset")
    built = materialize(c)
    assert built.a == [1] and built.hidden() == "h"


def test_shared_references_and_cycles_survive():
    shared = [1]
    obj = Box(shared, y=shared)
    obj.me = obj
    c = roundtrip(capture(obj))
    built = materialize(c)
    assert built.x is built.y and built.me is built
    obj.y = [1]
    restore(obj, c)
    assert obj.x is obj.y is shared and obj.me is obj


def test_classes_with_getstate_and_setstate_go_through_them():
    obj = Stateful()
    values = obj.values
    c = roundtrip(capture(obj))
    values.append(3)
    obj.cache = "stale"
    assert restore(obj, c) is obj
    assert obj.values is values and values == [1, 2] and obj.cache == "derived"
    assert obj.setstate_calls == 1


def test_frozen_dataclasses_and_enums_come_back_by_value():
    state = Box(Frozen(1, (2, 3)), color=Color.RED)
    c = roundtrip(capture(state))
    state.x = Frozen(5, ())
    state.color = Color.BLUE
    restore(state, c)
    assert state.x == Frozen(1, (2, 3)) and state.color is Color.RED


def test_materialize_builds_new_objects():
    obj = Box({"a": [1, 2]}, n=3)
    built = materialize(roundtrip(capture(obj)))
    assert type(built) is Box and built is not obj
    assert built.x == {"a": [1, 2]} and built.x is not obj.x and built.n == 3


def test_code_and_loggers_are_kept_by_name_and_left_alone():
    log = logging.getLogger("flortrace.test")
    fn = lambda x: x  # noqa: E731
    obj = Box(1, helper=helper, fn=fn, log=log, mod=os)
    c = roundtrip(capture(obj))
    other = lambda x: x  # noqa: E731
    obj.fn = other
    restore(obj, c)
    assert obj.fn is other and obj.helper is helper and obj.log is log and obj.mod is os
    with pytest.raises(Unsupported, match="lambda"):
        materialize(c)
    built = materialize(roundtrip(capture(Box(1, helper=helper, mod=os))))
    assert built.helper is helper and built.mod is os


@pytest.mark.parametrize(
    ("make", "named"),
    [
        (lambda tmp: open(os.path.join(tmp, "f.txt"), "w"), "TextIOWrapper"),  # noqa: SIM115
        (lambda tmp: threading.Lock(), "lock"),
        (lambda tmp: (i for i in range(3)), "generator"),
        (lambda tmp: iter([1, 2]), "list_iterator"),
        (lambda tmp: zlib.compressobj(), "zlib.Compress"),
    ],
)
def test_objects_holding_resources_are_unsupported_with_the_type_named(tmp_path, make, named):
    resource = make(str(tmp_path))
    holder = Box(1, inner={"resource": resource})
    try:
        with pytest.raises(Unsupported, match=named) as err:
            capture(holder)
        assert ".inner['resource']" in str(err.value)
    finally:
        if isinstance(resource, io.IOBase):
            resource.close()


def _gen():
    yield 1


@pytest.mark.parametrize(
    "obj",
    [
        os,
        helper,
        Box,
        Box(1).__init__,
        len,
        _gen(),
        iter([]),
        threading.Lock(),
        threading.Thread(target=helper),
        logging.getLogger("x"),
        types.SimpleNamespace.__init__,
        property(helper),
    ],
    ids=lambda o: type(o).__name__,
)
def test_not_state(obj):
    assert not is_state(obj)


@pytest.mark.parametrize(
    "obj", [1, None, "s", [], {}, Box(1), (1, [2]), types.SimpleNamespace(a=1), Color.RED]
)
def test_state(obj):
    assert is_state(obj)


def test_simple_namespace_restored_in_place():
    ns = types.SimpleNamespace(a=[1], b=2)
    a = ns.a
    c = roundtrip(capture(ns))
    ns.a.append(2)
    ns.b = 3
    assert restore(ns, c) is ns and ns.a is a and ns.a == [1] and ns.b == 2


def test_type_change_builds_a_new_value():
    c = roundtrip(capture([1, 2]))
    live = (1, 2)
    assert restore(live, c) == [1, 2] and type(restore(live, c)) is list
    assert restore(None, c) == [1, 2]


def test_fingerprint_unchanged_when_nothing_changed():
    obj = Box([1, {"a": (1, 2)}], s={1, 2}, d=collections.deque([1]), t=(Box(2),), big=list(range(10_000)))
    assert fingerprint(obj) == fingerprint(obj)
    assert hash(fingerprint(obj)) == hash(fingerprint(obj))


def test_fingerprint_sees_mutations():
    inner = {"a": [1, 2]}
    obj = Box(inner, s={1})
    before = fingerprint(obj)
    inner["a"].append(3)
    assert fingerprint(obj) != before
    before = fingerprint(obj)
    obj.s.add(2)
    assert fingerprint(obj) != before
    before = fingerprint(obj)
    obj.x = dict(inner)  # rebinding to an equal copy still counts
    assert fingerprint(obj) != before
    before = fingerprint(obj)
    obj.y = 1
    assert fingerprint(obj) != before
    items = list(range(10_000))
    before = fingerprint(items)
    items.append(1)
    assert fingerprint(items) != before


def test_fingerprint_never_raises_and_reads_unknowable_as_changed():
    class Hostile:
        def __getattribute__(self, name):
            raise RuntimeError("no")

    obj = Hostile()
    assert fingerprint(obj) != fingerprint(obj)
    unpicklable = zlib.compressobj()
    assert fingerprint(unpicklable) != fingerprint(unpicklable)


def test_nbytes_counts_pickled_data():
    assert nbytes(capture(Color.RED)) > 0
    assert nbytes(capture([1, 2])) == 0


np = pytest.importorskip("numpy")

leaves = st.one_of(
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False),
    st.text(max_size=5),
    st.builds(lambda xs: np.array(xs, dtype=np.float64), st.lists(st.floats(allow_nan=False), max_size=4)),
)
trees = st.recursive(
    leaves,
    lambda kids: st.one_of(
        st.lists(kids, max_size=4), st.dictionaries(st.text(max_size=3), kids, max_size=4)
    ),
    max_leaves=20,
)


def same(a, b) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ndarray):
        return a.shape == b.shape and np.array_equal(a, b)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return a == b


def mutate(tree, rnd) -> None:
    """Change a container tree in place, at every level."""
    if isinstance(tree, list):
        for x in tree:
            mutate(x, rnd)
        if tree and rnd.random() < 0.5:
            tree[rnd.randrange(len(tree))] = "changed"
        tree.append(rnd.random())
    elif isinstance(tree, dict):
        for x in tree.values():
            mutate(x, rnd)
        tree["new"] = [rnd.random()]
    elif isinstance(tree, np.ndarray) and tree.size:
        tree += 1.0


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(st.lists(trees, max_size=4), st.dictionaries(st.text(max_size=3), trees, max_size=4)),
    st.randoms(),
)
def test_property_capture_mutate_restore(tree, rnd):
    expected = copy.deepcopy(tree)
    c = roundtrip(capture(tree))
    fp = fingerprint(tree)
    mutate(tree, rnd)
    assert fingerprint(tree) != fp
    assert restore(tree, c) is tree
    assert same(tree, expected)
    assert same(materialize(c), expected)


class _Loud(list):
    """A list whose Python methods say they were called: fingerprints and snapshots must not call them."""

    def __iter__(self):
        raise AssertionError("__iter__ called")

    def __len__(self):
        raise AssertionError("__len__ called")


class _LoudDict(dict):
    def items(self):
        raise AssertionError("items called")

    def __iter__(self):
        raise AssertionError("__iter__ called")


def test_user_methods_of_containers_are_never_called():
    from flortrace.state.digest import digest

    loud, mapping = _Loud([1, [2, 3]]), _LoudDict(a=[1], b=2)
    for obj in (loud, mapping):
        before = fingerprint(obj)
        rec = capture(obj)
        assert fingerprint(obj) == before
        digest({"x": obj})
        assert restore(obj, rec) is obj
    list.append(loud, 9)
    dict.__setitem__(mapping, "c", 3)
    restore(loud, capture(_Loud([1, [2, 3]])))
    assert list.copy(loud) == [1, [2, 3]]
    restore(mapping, rec)
    assert dict(dict.items(mapping)) == {"a": [1], "b": 2}


def test_an_ordered_dict_keeps_its_order_after_move_to_end():
    od = collections.OrderedDict(a=1, b=[2], c=3)
    od.move_to_end("a")
    rec = capture(od)
    od.move_to_end("b")
    assert list(restore(od, rec)) == ["b", "c", "a"]


class _Guarded:
    """Holds a lock that its own __getstate__ leaves out; the model list is shared with another object."""

    def __init__(self, shared):
        self.shared = shared
        self.lock = threading.Lock()

    def __getstate__(self):
        return {"shared": self.shared}

    def __setstate__(self, state):
        self.__dict__.update(state, lock=threading.Lock())


def test_a_state_pair_leaves_out_what_it_leaves_out_and_shares_what_it_shares():
    from flortrace.state.base import RestoreContext
    from flortrace.state.capture import capture_all

    shared = [1.0, 2.0]
    guarded = _Guarded(shared)
    records = capture_all([guarded, shared])
    shared.append(3.0)
    guarded.shared = []
    ctx = RestoreContext(records=records)
    restore(guarded, records[0], ctx)
    assert restore(shared, records[1], ctx) is guarded.shared
    assert guarded.shared == [1.0, 2.0] and isinstance(guarded.lock, type(threading.Lock()))


def test_weak_references_point_to_the_restored_referent_or_are_dead():
    import weakref

    from flortrace.state.base import RestoreContext
    from flortrace.state.capture import capture_all

    loader, gone = Box(1), Box(2)
    refs = [None, weakref.ref(loader), weakref.ref(gone)]
    records = capture_all([refs, loader])
    del gone
    refs[:] = []
    ctx = RestoreContext(records=records, bound={records[1].key: loader})  # a name holds the loader
    restored = restore(refs, records[0], ctx)
    assert restore(loader, records[1], ctx) is loader
    assert restored[0] is None and restored[1]() is loader
    del ctx  # the restore is over
    assert restored[2]() is None  # nothing held it: dead, as it would be
    assert materialize(capture([weakref.ref(loader)]))[0]() is None  # a built referent nothing holds dies
