"""Process-wide RNG capture/restore and random.Random objects."""

import pickle
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from flortrace.state import capture, capture_rng, fingerprint, is_state, materialize, restore, restore_rng

ROOT = Path(__file__).resolve().parents[1]


class MyRandom(random.Random):
    pass


def test_capture_rng_restores_random_and_numpy():
    np = pytest.importorskip("numpy")
    random.seed(1)
    np.random.seed(2)
    random.gauss(0, 1)  # leaves gauss_next set
    c = pickle.loads(pickle.dumps(capture_rng(), protocol=5))
    first = (random.random(), random.gauss(0, 1), np.random.rand(3).tolist())
    restore_rng(c)
    assert (random.random(), random.gauss(0, 1), np.random.rand(3).tolist()) == first


def test_random_instances_restored_in_place_and_materialized():
    r = MyRandom(5)
    holder = {"r": r, "sys": random.SystemRandom()}
    system = holder["sys"]
    assert is_state(r)
    c = pickle.loads(pickle.dumps(capture(holder), protocol=5))
    before = fingerprint(r)
    first = [r.random() for _ in range(3)]
    assert fingerprint(r) != before
    assert restore(holder, c) is holder and holder["r"] is r and holder["sys"] is system
    assert [r.random() for _ in range(3)] == first
    built = materialize(c)
    assert type(built["r"]) is MyRandom and [built["r"].random() for _ in range(3)] == first


def test_works_without_numpy_or_torch():
    code = textwrap.dedent(
        """
        import random, sys
        import flortrace.state as s
        c = s.capture_rng()
        assert c.numpy is None and c.torch is None and c.cuda is None
        obj = {"r": random.Random(1), "x": [1, 2]}
        c2 = s.capture(obj)
        s.fingerprint(obj)
        s.restore(obj, c2)
        s.restore_rng(c)
        assert s.capture_torch_settings() == {}
        assert "torch" not in sys.modules and "numpy" not in sys.modules, sorted(sys.modules)
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT)})
