"""Parity corpus: `python -m flortrace -q script.py args` behaves exactly like `python script.py args`.

Every script in tests/corpus/ (except helpers_*.py, which scripts import) runs both ways in a temp copy of the
corpus folder; stdout, stderr and the exit code must be identical. A script's leading comments declare its
cases: `# argv: a b c` (shlex syntax, one case per line, optionally `=> N` for the exit code Python gives),
`# exit: N` (the exit code when there are no argv lines), `# needs: module` (skip when missing),
`# python: -P` (interpreter options, one case per line: `python -P script` against `python -P -m flortrace
script`), `# since: 3.11` (skip on older Pythons) and `# known: 3.10 3.12 | why` (a known difference, on
those versions or `all`, that README's Limits explains or work in progress removes: the case must still
differ there, so that a fix shows and the line goes). The
declared exit code is checked against plain Python too, so a broken corpus script cannot pass unnoticed.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import shlex
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parent / "corpus"
REPO = CORPUS.parent.parent
TIMEOUT = 60


VERSION = f"{sys.version_info[0]}.{sys.version_info[1]}"


def declared_cases(path):
    """Yield (argv, exit code, needed modules, interpreter options, marks) for each case a script's
    leading comments declare."""
    argvs, exit_code, needs, options, marks = [], 0, [], [], []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.startswith("#"):
            break
        key, _, value = line[1:].partition(":")
        key = key.strip()
        if key == "argv":
            words, _, code = value.partition("=>")
            argvs.append((shlex.split(words), int(code) if code.strip() else 0))
        elif key == "exit":
            exit_code = int(value)
        elif key == "needs":
            needs += value.split()
        elif key == "python":
            options.append(shlex.split(value))
        elif key == "since" and sys.version_info < tuple(int(p) for p in value.split(".")):
            marks.append(pytest.mark.skip(reason=f"needs Python {value.strip()}"))
        elif key == "known":
            versions, _, why = value.partition("|")
            if "all" in versions.split() or VERSION in versions.split():
                marks.append(pytest.mark.xfail(strict=True, reason=why.strip()))
    for argv, code in argvs or [([], exit_code)]:
        for option in options or [[]]:
            yield argv, code, needs, option, marks


def script_cases():
    for path in sorted(CORPUS.glob("*.py")):
        if path.name.startswith("helpers_"):
            continue
        for argv, code, needs, options, marks in declared_cases(path):
            label = path.stem + "".join(f"[{' '.join(words)}]" for words in (argv, options) if words)
            yield pytest.param([*options, path.name, *argv], code, needs, id=label, marks=marks)


SINCE_311 = pytest.mark.skipif(sys.version_info < (3, 11), reason="-P needs Python 3.11")
OTHER_CASES = [
    pytest.param(["nested/inner_script.py"], 0, [], id="script-in-subfolder"),
    pytest.param(["app_dir", "x", "--flag"], 0, [], id="directory-with-main"),
    pytest.param(["no_main_dir"], 1, [], id="directory-without-main"),
    pytest.param(["missing_script.py", "arg"], 2, [], id="nonexistent-script"),
    pytest.param(["-m", "corpus_pkg.mod", "a", "-q", "--store", "x"], 0, [], id="module"),
    pytest.param(["-m", "corpus_pkg"], 0, [], id="package-main"),
    pytest.param(["-m", "corpus_pkg.fails"], 1, [], id="module-raises"),
    pytest.param(["-m", "helpers_broken_syntax"], 1, [], id="module-syntax-error"),
    pytest.param(["-m", "no_such_module"], 1, [], id="nonexistent-module"),
    pytest.param(["-m", "corpus_pkg.missing"], 1, [], id="nonexistent-submodule"),
    pytest.param(["./raw_paths.py"], 0, [], id="script-dot-path"),
    pytest.param(["../corpus/raw_paths.py"], 0, [], id="script-dotdot-path"),
    pytest.param(["./raw_dir"], 0, [], id="directory-dot-path"),
    pytest.param(["./missing_script.py"], 2, [], id="nonexistent-dot-path"),
    *(
        pytest.param([option, *target], code, [], id=f"{option}-{name}", marks=SINCE_311)
        for option in ("-P", "-I")
        for target, code, name in (
            (["raw_paths.py"], 0, "script"),
            (["raw_dir"], 0, "directory"),
            (["-m", "corpus_pkg.mod"], 1, "module"),  # no working directory on sys.path: not found
        )
    ),
]


def child_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLORTRACE_")}
    path = [str(REPO)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    env.update(PYTHONHASHSEED="0", PYTHONPATH=os.pathsep.join(path))
    return env


def run_both(target, cwd, store):
    """Start plain Python and flortrace at once; return both (returncode, stdout, stderr). Interpreter
    options before the script (``-P``) are given to both interpreters."""
    env = child_env()
    options = list(itertools.takewhile(lambda arg: arg.startswith("-") and arg != "-m", target))
    target = target[len(options) :]
    commands = [
        [sys.executable, *options, *target],
        [sys.executable, *options, "-m", "flortrace", "-q", "--store", str(store), *target],
    ]
    procs = [
        subprocess.Popen(
            cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for cmd in commands
    ]
    results = []
    for proc in procs:
        try:
            out, err = proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            raise
        results.append((proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")))
    return results


def missing_modules(needs):
    """The modules in ``needs`` this interpreter cannot import."""
    return [m for m in needs if importlib.util.find_spec(m) is None]


@pytest.fixture(scope="module")
def results(request, tmp_path_factory):
    """Start every selected case at once on a small pool; each test waits for its own."""
    corpus = tmp_path_factory.mktemp("parity") / "corpus"
    shutil.copytree(CORPUS, corpus, ignore=shutil.ignore_patterns("__pycache__"))
    pool = ThreadPoolExecutor(max_workers=2 * (os.cpu_count() or 1))
    futures = {}
    for item in request.session.items:
        spec = getattr(item, "callspec", None)
        if item.module is not request.module or spec is None or missing_modules(spec.params["needs"]):
            continue
        store = tmp_path_factory.mktemp("store") / "store"
        futures[spec.id] = (pool.submit(run_both, spec.params["target"], corpus, store), store)
    yield futures
    pool.shutdown(cancel_futures=True)


@pytest.mark.parametrize("target, exit_code, needs", [*script_cases(), *OTHER_CASES])
def test_flortrace_changes_nothing(target, exit_code, needs, results, request):
    if missing_modules(needs):
        pytest.skip(f"needs {' '.join(missing_modules(needs))}")
    future, store = results[request.node.callspec.id]
    plain, traced = future.result()
    assert plain[0] == exit_code, f"the corpus case itself is off: plain Python gave {plain}"
    assert traced[2] == plain[2], "stderr differs"
    assert traced[1] == plain[1], "stdout differs"
    assert traced[0] == plain[0], "exit code differs"
    assert store.is_dir() and any(store.iterdir()), "flortrace did not record into its store"
