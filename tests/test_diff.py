"""Edits are classified: probes, read-only additions, refused state changes."""

from flortrace.replay import diff

OLD = """\
import flortrace

def train(model, data):
    total = 0
    for x in data:
        total += x
    return total

def helper(v):
    return v * 2

for epoch in range(3):
    t = train(None, range(epoch))
    print(epoch, t)
"""

LOOPS = [
    dict(loop_id="s.py:train#0", file="s.py", qualname="train", ordinal=0, lineno=5, kind="block"),
    dict(loop_id="s.py:<module>#0", file="s.py", qualname="<module>", ordinal=0, lineno=12, kind="main"),
]


def compare(tmp_path, new):
    (tmp_path / "s.py").write_text(new)
    return diff.compare({"s.py": OLD}, tmp_path, LOOPS)


def test_unchanged(tmp_path):
    r = compare(tmp_path, OLD)
    assert not r.probes and not r.refusals


def test_epoch_level_log_is_not_a_probe(tmp_path):
    r = compare(
        tmp_path, OLD.replace("    print(epoch, t)", "    print(epoch, t)\n    flortrace.log('t', t)")
    )
    assert not r.probes and not r.refusals


def test_batch_level_log_makes_a_probe(tmp_path):
    r = compare(
        tmp_path, OLD.replace("        total += x", "        total += x\n        flortrace.log('x', x)")
    )
    assert r.probes == {"s.py:train#0"} and not r.refusals


def test_changed_callee_makes_every_block_a_probe(tmp_path):
    r = compare(tmp_path, OLD.replace("    return v * 2", "    print(v)\n    return v * 2"))
    assert r.probes == {"s.py:train#0"}
    assert any("helper" in n for n in r.notes)


def test_state_changes_are_refused(tmp_path):
    for edit in ("        total += 1", "        model.lr = 3", "        data.append(1)", "        x = 5"):
        r = compare(tmp_path, OLD.replace("        total += x", "        total += x\n" + edit))
        assert r.refusals, edit


def test_new_names_are_fine(tmp_path):
    r = compare(
        tmp_path,
        OLD.replace("        total += x", "        total += x\n        sq = x * x\n        print(sq)"),
    )
    assert not r.refusals


def test_comment_and_blank_edits_are_ignored(tmp_path):
    r = compare(tmp_path, OLD.replace("        total += x", "        # a note\n\n        total += x"))
    assert not r.probes and not r.refusals


def test_removed_loop_is_refused(tmp_path):
    r = compare(tmp_path, OLD.replace("    for x in data:\n        total += x\n", "    total = sum(data)\n"))
    assert any("gone" in x for x in r.refusals)
