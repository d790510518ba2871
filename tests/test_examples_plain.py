"""The example scripts run plainly (no flortrace): they finish, report every epoch, and are deterministic.

Replay's fidelity checks compare re-logged values with recorded ones, so an example that is not
bit-for-bit repeatable on its own would make every end-to-end test built on it flaky.
"""

import ast
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
EPOCH_LINE = re.compile(r"^((?:\w+ )?epoch [\d/]+):", re.MULTILINE)

CASES = [
    pytest.param("digits_cnn.py", ("torch", "sklearn"), ["epoch 1/2", "epoch 2/2"], id="digits_cnn"),
    pytest.param("char_lm.py", ("torch",), ["epoch 0", "epoch 1"], id="char_lm"),
    pytest.param(
        "finetune_frozen.py",
        ("torch", "sklearn"),
        ["pretrain epoch 0", "pretrain epoch 1", "finetune epoch 0", "finetune epoch 1"],
        id="finetune_frozen",
    ),
    pytest.param("numpy_softmax.py", ("numpy", "sklearn"), ["epoch 0", "epoch 1"], id="numpy_softmax"),
    pytest.param("pure_python.py", (), ["epoch 0", "epoch 1"], id="pure_python"),
]


def start(script, cwd, hash_seed):
    env = dict(os.environ, PYTHONHASHSEED=str(hash_seed))
    return subprocess.Popen(
        [sys.executable, str(EXAMPLES / script), "--quick", "--epochs", "2"],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("script, needs, epoch_lines", CASES)
def test_runs_reports_epochs_and_repeats(script, needs, epoch_lines, tmp_path):
    # find_spec rather than importorskip: importing torch here would leak into other tests' sys.modules.
    for module in needs:
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{script} needs {module}")
    runs = [start(script, tmp_path, hash_seed) for hash_seed in (1, 2)]
    outputs = []
    for proc in runs:
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr
        outputs.append(stdout)
    assert EPOCH_LINE.findall(outputs[0]) == epoch_lines
    assert outputs[0] == outputs[1]


def imported_modules(script):
    tree = ast.parse((EXAMPLES / script).read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("script", [case.values[0] for case in CASES])
def test_examples_are_unmodified_scripts(script):
    assert "flortrace" not in imported_modules(script)


def test_numpy_example_avoids_torch_and_pure_example_uses_stdlib_only():
    assert "torch" not in imported_modules("numpy_softmax.py")
    assert imported_modules("pure_python.py") <= sys.stdlib_module_names
