"""instrument.codecache: patched code read back runs and reports loops exactly like freshly patched code,
and anything that does not match the module's source and the versions involved is a miss."""

from __future__ import annotations

import json
import os
import textwrap

import pytest
from clirun import flortrace

from flortrace.instrument.codecache import UNCHANGED, CodeCache
from flortrace.instrument.patch import LoopInfo, instrument_module_code
from flortrace.runtime import hooks

SOURCE = textwrap.dedent(
    """\
    out = []

    class Model:
        def fit(self, epochs):
            for epoch in range(epochs):
                k = 0
                while k < 2:
                    k += 1
                    out.append((epoch, k))
            return self

    Model().fit(2)
    """
)


def patched(source=SOURCE, path="/p/m.py"):
    code = compile(source, path, "exec")
    return code, *instrument_module_code(code, "m.py", hooks.HOOKS, source)


def constants(code):
    """Every constant of ``code`` and the code objects in it, depth first."""
    for const in code.co_consts:
        yield const
        if hasattr(const, "co_consts"):
            yield from constants(const)


def test_round_trip_gives_the_same_code_loops_and_effects(tmp_path):
    cache = CodeCache(tmp_path, hooks.HOOKS)
    _, code, loops = patched()
    cache.save("/p/m.py", "m.py", SOURCE, code, loops)
    loaded, again = cache.load("/p/m.py", "m.py", SOURCE)
    assert [info.fields() for info in again] == [info.fields() for info in loops]
    assert [info.effects for info in again] == [info.effects for info in loops]
    kept = [c for c in constants(loaded) if isinstance(c, LoopInfo) or c in vars(hooks.HOOKS).values()]
    assert {hooks.for_loop, hooks.while_enter, hooks.while_tick, hooks.while_exit} <= set(kept)
    assert {id(c) for c in kept if isinstance(c, LoopInfo)} == {id(info) for info in again}
    ns = {}
    exec(loaded, ns)
    assert ns["out"] == [(0, 1), (0, 2), (1, 1), (1, 2)]


def test_misses(tmp_path):
    cache = CodeCache(tmp_path, hooks.HOOKS)
    _, code, loops = patched()
    cache.save("/p/m.py", "m.py", SOURCE, code, loops)
    assert cache.load("/p/m.py", "m.py", SOURCE + "\n# edited\n") is None, "another source"
    assert cache.load("/p/other.py", "m.py", SOURCE) is None, "another file"
    other = CodeCache(tmp_path, hooks.HOOKS)
    other.tag += "another version"
    assert other.load("/p/m.py", "m.py", SOURCE) is None
    for entry in tmp_path.iterdir():
        entry.write_bytes(entry.read_bytes()[:40])
    assert cache.load("/p/m.py", "m.py", SOURCE) is None, "a damaged file"


def test_modules_without_loops_are_kept_as_unchanged(tmp_path):
    cache = CodeCache(tmp_path, hooks.HOOKS)
    cache.save("/p/n.py", "n.py", "x = 1\n", UNCHANGED, [])
    assert cache.load("/p/n.py", "n.py", "x = 1\n") == (UNCHANGED, [])


def test_unwritable_folder_costs_nothing(tmp_path):
    (tmp_path / "file").write_text("")
    cache = CodeCache(tmp_path / "file" / "cache", hooks.HOOKS)
    _, code, loops = patched()
    cache.save("/p/m.py", "m.py", SOURCE, code, loops)
    assert cache.load("/p/m.py", "m.py", SOURCE) is None


@pytest.mark.parametrize("edit", [False, True])
def test_second_run_reads_the_cache_and_records_the_same(tmp_path, edit):
    (tmp_path / "helper.py").write_text(SOURCE.replace("Model().fit(2)", ""))
    (tmp_path / "train.py").write_text("import helper\nhelper.Model().fit(3)\nprint(helper.out)\n")
    first = flortrace(tmp_path, "-q", "train.py")
    cached = sorted((tmp_path / ".store" / "code").iterdir())
    assert len(cached) == 2
    if edit:
        helper = tmp_path / "helper.py"
        helper.write_text(SOURCE.replace("k < 2", "k < 3").replace("Model().fit(2)", ""))
        later = helper.stat().st_mtime + 2  # Python's own .pyc check sees seconds and sizes: same size here
        os.utime(helper, (later, later))
    second = flortrace(tmp_path, "-q", "train.py")
    assert second.stderr == first.stderr == ""
    assert (second.stdout == first.stdout) is not edit
    runs = json.loads(flortrace(tmp_path, "runs", "--json").stdout)
    assert [r["epochs"] for r in runs] == [3, 3]
    assert sorted((tmp_path / ".store" / "code").iterdir()) == cached, "one file per module"
