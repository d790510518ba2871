"""The bundled examples through record and replay (quick settings): hindsight values equal a fresh run."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from clirun import flortrace

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# example -> (modules it needs, line to insert after, hindsight statement)
CASES = {
    "pure_python.py": ((), "    lr *= args.decay", "flortrace.log('total', total)"),
    "numpy_softmax.py": (("numpy", "sklearn"), "self.history.append(", "flortrace.log('lr', self.lr)"),
    "digits_cnn.py": (
        ("torch", "sklearn"),
        "        scheduler.step()",
        "flortrace.log('fc2', model.fc2.weight.sum().item())",
    ),
    "char_lm.py": (("torch",), "clip_grad_norm_", "flortrace.log('loss', loss.item())"),
    "finetune_frozen.py": (("torch", "sklearn"), "opt.step()", "flortrace.log('loss', loss.item())"),
}


def hindsight(src, anchor, statement):
    lines = src.splitlines()
    at = next(i for i, line in enumerate(lines) if anchor in line)
    while lines[at].rstrip().endswith(("(", ",")):  # a statement spanning lines: insert after its end
        at += 1
    indent = lines[at][: len(lines[at]) - len(lines[at].lstrip())]
    lines.insert(at + 1, indent + statement)
    first_import = next(i for i, line in enumerate(lines) if line.startswith(("import ", "from ")))
    lines.insert(first_import, "import flortrace")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("name", sorted(CASES))
def test_example_record_replay(tmp_path, name):
    needs, anchor, statement = CASES[name]
    for module in needs:
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"needs {module}")
    src = (EXAMPLES / name).read_text()
    argv = ["--quick", "--epochs", "3"]
    (tmp_path / name).write_text(src)
    recorded = flortrace(tmp_path, "-q", name, *argv)
    edited = hindsight(src, anchor, statement)
    (tmp_path / name).write_text(edited)
    replay = flortrace(tmp_path, "replay", "-q", name, *argv)
    assert replay.stdout == recorded.stdout
    rows = json.loads(flortrace(tmp_path, "logs", "--origin", "replay", "--format", "json").stdout)
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / name).write_text(edited)
    flortrace(fresh, "-q", name, *argv)
    expected = json.loads(flortrace(fresh, "logs", "--format", "json").stdout)
    assert rows and [(r["name"], r["epoch"], r["step"], r["value"]) for r in rows] == [
        (r["name"], r["epoch"], r["step"], r["value"]) for r in expected
    ]


@pytest.mark.parametrize("name", ["pure_python.py", "numpy_softmax.py"])
def test_example_console(tmp_path, name):
    needs = CASES[name][0]
    for module in needs:
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"needs {module}")
    (tmp_path / name).write_text((EXAMPLES / name).read_text())
    flortrace(tmp_path, "-q", name, "--quick", "--epochs", "4")
    env = dict(os.environ, PYTHONHASHSEED="0", FLORTRACE_STORE=str(tmp_path / ".store"))
    cmd = [sys.executable, "-m", "flortrace", "console", "-q", name, "--quick", "--epochs", "4"]
    commands = "epochs\nepoch 2\np epoch\nq\n"
    out = subprocess.run(cmd, cwd=tmp_path, env=env, input=commands, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "(flortrace)" in out.stdout and "\n2\n" in out.stdout
