"""Marks for choosing tests by what they exercise.

``front_end``: the verbs, the store, exporters, trackers and the console driven through the CLI. None of
them touches the bytecode layer differently on another Python, so CI (tox.ini) runs them on 3.11 only and
runs everything else on 3.10-3.13.
"""

from __future__ import annotations

from pathlib import Path

import pytest

FRONT_END = {
    "test_cli.py",
    "test_console.py",
    "test_export.py",
    "test_files_overlay.py",
    "test_gc.py",
    "test_progress.py",
    "test_runs_e2e.py",
    "test_snapshots_e2e.py",
    "test_store_security.py",
    "test_trackers.py",
}


def pytest_collection_modifyitems(items):
    for item in items:
        if Path(str(item.fspath)).name in FRONT_END:
            item.add_marker(pytest.mark.front_end)
