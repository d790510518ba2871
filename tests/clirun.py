"""Run the real CLI in a test's folder: ``python -m flortrace ...`` with the store inside that folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def flortrace(cwd, *args, check=True, timeout=600):
    """Run ``python -m flortrace *args`` in ``cwd``; with ``check``, fail the test on a non-zero exit."""
    env = dict(os.environ, PYTHONHASHSEED="0", FLORTRACE_STORE=str(cwd / ".store"))
    out = subprocess.run(
        [sys.executable, "-m", "flortrace", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check:
        assert out.returncode == 0, out.stderr
    return out


def logs(cwd, run, origin, loops=False):
    """(name, epoch, step, value) of a run's logged values of one origin; with ``loops``, (name, (main loop,
    epoch), step, value): epochs are numbered per main loop."""
    out = flortrace(cwd, "logs", "--run", str(run), "--origin", origin, "--format", "json")
    rows = json.loads(out.stdout)
    return [
        (r["name"], (r["loop"], r["epoch"]) if loops else r["epoch"], r["step"], r["value"]) for r in rows
    ]
