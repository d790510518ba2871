"""Another project's test suite passes under flortrace as it passes under plain Python.

toolz, pinned, from the package index as an sdist (its tests come with it), runs under ``python -m pytest``
and under ``python -m flortrace -m pytest`` (its modules instrumented: they are the project in the working
directory); the pass counts and exit codes must be equal. CI runs it on 3.11 and 3.13; skipped when the
sdist cannot be fetched.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile

import pytest

pytestmark = [
    pytest.mark.suite,
    pytest.mark.skipif(sys.version_info[:2] not in {(3, 11), (3, 13)}, reason="CI runs it on 3.11 and 3.13"),
]

PACKAGE, VERSION = "toolz", "1.0.0"


@pytest.fixture(scope="module")
def sdist(tmp_path_factory):
    """The unpacked sdist's folder."""
    folder = tmp_path_factory.mktemp("sdist")
    fetch = [sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps", "-q"]
    try:
        got = subprocess.run(
            [*fetch, f"{PACKAGE}=={VERSION}", "-d", str(folder)], capture_output=True, timeout=120
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"cannot fetch the {PACKAGE} sdist: {exc}")
    archives = list(folder.glob(f"{PACKAGE}-{VERSION}.tar.gz"))
    if got.returncode != 0 or not archives:
        pytest.skip(f"cannot fetch the {PACKAGE} sdist: {got.stderr.decode(errors='replace')[-300:]}")
    safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # 3.11.4+
    with tarfile.open(archives[0]) as archive:
        archive.extractall(folder, **safe)
    return folder / f"{PACKAGE}-{VERSION}"


def passed(out):
    found = re.search(r"(\d+) passed", out)
    return int(found.group(1)) if found else 0


def test_toolz_suite_passes_the_same(sdist, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLORTRACE_", "PYTEST_"))}
    suite = ["-m", "pytest", "-q", "-p", "no:cacheprovider", PACKAGE]
    commands = [
        [sys.executable, *suite],
        [sys.executable, "-m", "flortrace", "-q", "--store", str(tmp_path), *suite],
    ]
    procs = [
        subprocess.Popen(cmd, cwd=sdist, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for cmd in commands
    ]
    (plain, _), (traced, _) = (proc.communicate(timeout=300) for proc in procs)
    plain, traced = plain.decode(errors="replace"), traced.decode(errors="replace")
    assert passed(plain) > 100, plain[-2000:]
    assert passed(traced) == passed(plain), traced[-3000:]
    assert procs[1].returncode == procs[0].returncode == 0
    assert any(tmp_path.iterdir()), "flortrace did not record into its store"
