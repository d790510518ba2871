"""Digests: equal state gives equal digests in any process; any change shows, at a path a person can read."""

from __future__ import annotations

import collections
import datetime
import random
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flortrace.state.digest import CLOCK, UNKNOWN, describe, differences, digest, rng_digest, same_leaf

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.binary(max_size=8),
)
states = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(st.text(max_size=4), children, max_size=5),
        st.tuples(children, children),
    ),
    max_leaves=30,
)


class Plain:
    def __init__(self, **kw):
        self.__dict__.update(kw)


@settings(max_examples=150, deadline=None)
@given(states)
def test_a_copy_digests_the_same(value):
    import copy

    assert digest({"x": value}) == digest({"x": copy.deepcopy(value)})


@settings(max_examples=150, deadline=None)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=20), st.data())
def test_changing_one_number_changes_the_digest(values, data):
    i = data.draw(st.integers(0, len(values) - 1))
    changed = list(values)
    changed[i] = values[i] + (1.0 if values[i] == 0 else abs(values[i]))
    assert differences(digest({"w": values}), digest({"w": changed}))


def test_paths_name_attributes_items_and_aliases():
    shared = [1.0, 2.0]
    obj = Plain(counter=3, rows={"a": shared, "b": shared}, hist=collections.deque([1, 2]))
    leaves = digest({"trainer": obj})
    assert leaves["trainer.counter"] == "3"
    assert leaves["trainer.rows['a']"] == "[1.0, 2.0]"
    assert leaves["trainer.rows['b']"] == "=trainer.rows['a']"
    obj.counter = 4
    ((path, before, after),) = differences(leaves, digest({"trainer": obj}))
    assert (path, before, after) == ("trainer.counter", "3", "4")


def test_a_digest_does_not_depend_on_the_process():
    code = (
        "import random; from flortrace.state.digest import digest; random.seed(5);"
        "print(sorted(digest({'d': {'a': [random.random() for _ in range(50)], 'b': (1, 'x')}}).items()))"
    )
    runs = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        for _ in range(2)
    }
    assert len(runs) == 1


def test_sets_are_digested_whatever_their_order():
    a = {("x", 1), ("y", 2), ("z", 3)}
    b = set(reversed(sorted(a)))
    assert digest({"s": a}) == digest({"s": b})


def test_rng_states_are_leaves():
    random.seed(1)
    before = rng_digest()
    random.random()
    assert rng_digest()["random RNG"] != before["random RNG"]


def test_clock_readings_are_marked():
    assert digest({"t": datetime.datetime(2026, 1, 1)})["t"].startswith(CLOCK)


def test_tolerance_compares_numbers():
    assert not same_leaf("0.1", "0.10000000001")
    assert same_leaf("0.1", "0.10000000001", 1e-9)
    assert same_leaf(UNKNOWN, "anything")


def test_numpy_arrays_any_bit_changes_the_leaf():
    np = pytest.importorskip("numpy")
    a = np.linspace(0, 1, 10_000, dtype=np.float32)
    leaf = digest({"a": a})["a"]
    b = a.copy()
    b[7777] = np.nextafter(b[7777], np.float32(2))
    assert digest({"a": b})["a"] != leaf and describe(leaf).startswith("float32[10000] starting 0")
    c = a.copy()
    c[[0, 9]] = c[[9, 0]]  # the same bits, in other places the sample sees
    assert digest({"a": c})["a"] != leaf


def test_torch_state_is_digested_by_state_dict_paths():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    leaves = digest({"model": model, "opt": opt})
    assert {"model.0.weight", "model.0.weight.grad", "model.1.running_mean", "model#training"} <= set(leaves)
    assert leaves["opt.param_groups[0]['lr']"] == "0.001"
    opt.param_groups[0]["lr"] = 0.5
    with torch.no_grad():
        model[0].weight[1, 2] += 1e-6
    model.eval()
    paths = {p for p, _, _ in differences(leaves, digest({"model": model, "opt": opt}))}
    assert paths == {"model.0.weight", "model#training", "opt.param_groups[0]['lr']"}


def test_torch_leaves_agree_across_dtypes_that_numpy_lacks():
    torch = pytest.importorskip("torch")
    t = torch.arange(12, dtype=torch.bfloat16)
    assert digest({"t": t}) == digest({"t": t.clone()})
    u = t.clone()
    u[5] += 1
    assert differences(digest({"t": t}), digest({"t": u}))


# Tensor leaves as digest VERSION 1 wrote them (computed by the code before tensor_leaf was sped up) and
# VERSION 2 still writes them (it changed only how a torch device or dtype held twice is written): a faster
# leaf must be the same leaf, or recorded runs stop being comparable with their replays.
VERSION_1_LEAVES = {
    "float32 2x3": "tfloat32[2x3]:0000000140e0000091e79017|0",
    "transposed": "tfloat32[3x2]:0000000140e000005fcfa77a|0",
    "bfloat16": "tbfloat16[5]:fffffffffffffd00e6bd46a9|-1",
    "bool": "tbool[3]:0000000000000002898483b3|True",
    "complex conj": "tcomplex64[2]:0000000080400000edf2141b|(1-2j)",
    "int64 0-dim": "tint64[scalar]:00000000000000076fe7d670|7",
    "empty": "tfloat32[0x3]:000000000000000000000000|-",
    "param": "tfloat32[4]:00000000fc000000a82d7e26|0.5",
}


def test_tensor_leaves_keep_the_format_of_their_version():
    torch = pytest.importorskip("torch")
    from flortrace.state.digest import VERSION, tensor_leaf

    tensors = {
        "float32 2x3": torch.arange(6, dtype=torch.float32).reshape(2, 3),
        "transposed": torch.arange(6, dtype=torch.float32).reshape(2, 3).t(),
        "bfloat16": torch.linspace(-1, 1, 5).to(torch.bfloat16),
        "bool": torch.tensor([True, False, True]),
        "complex conj": torch.tensor([1 + 2j, 3 - 4j], dtype=torch.complex64).conj(),
        "int64 0-dim": torch.tensor(7),
        "empty": torch.zeros(0, 3),
        "param": torch.nn.Parameter(torch.full((4,), 0.5)),
    }
    assert VERSION == 2
    assert {name: tensor_leaf(t) for name, t in tensors.items()} == VERSION_1_LEAVES


def test_a_torch_device_held_twice_is_a_value_not_an_alias():
    torch = pytest.importorskip("torch")
    device = torch.device("cpu")
    recorded = digest({"a": device, "b": {"d": device}})
    replayed = digest({"a": torch.device("cpu"), "b": {"d": torch.device("cpu")}})
    assert recorded == replayed and set(recorded.values()) >= {"cpu"}
