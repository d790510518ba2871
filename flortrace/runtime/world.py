"""The replay's own folder, and the guard that keeps a replay out of the user's world.

A replay (and the console) re-runs the script, whose TensorBoard writers, W&B and MLflow runs and saved
files would otherwise write into the recorded run's logdir, runs and files again. While the guard is on,
trackers.py sends the trackers into the replay's folder ``STORE/replays/run-<id>`` and files.py does the
same with the files the script writes under its working directory and project folder. The folder is
emptied when a replay starts. ``FLORTRACE_ISOLATE=0`` (or ``isolate = false``) turns this off.

Kept small on purpose: ``flortrace`` imports it for ``flortrace.replaying()``.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

_active = False


def active():
    """True while a replay or the console runs the script (forked children included)."""
    return _active


def folder(store_root, run_id):
    """The replay's own folder for run ``run_id``: inside the store, private like it."""
    return os.path.join(os.fspath(store_root), "replays", f"run-{run_id}")


def remove(store_root, run_id):
    """Delete the replay's folder of a run (``rm`` of the run); links are not followed."""
    import shutil

    path = folder(store_root, run_id)
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)


def empty(store_root, run_id):
    """Empty the replay's folder of a run, when a replay starts (the workers of a parallel replay share the
    one their parent emptied)."""
    path = folder(store_root, run_id)
    try:
        remove(store_root, run_id)
        os.makedirs(path, mode=0o700, exist_ok=True)
    except OSError as exc:
        from ..store import StoreError

        raise StoreError(f"cannot make the replay's folder {path}: {exc.strerror or exc}") from exc


@contextmanager
def guard(store_root, run_id, roots, notify, isolate=True):
    """While the script runs: ``flortrace.replaying()`` is True and, with ``isolate``, its trackers and the
    files it writes under ``roots`` go into the replay's folder (see the module docstring)."""
    global _active
    _active = True
    installed = []
    try:
        if isolate:
            import tempfile

            from .files import Overlay, shown
            from .trackers import Trackers

            where = folder(store_root, run_id)
            files = os.path.join(where, "files")
            said = []

            def written(original):
                if not said:
                    said.append(original)
                    notify(
                        f"replay: files the script writes go into {shown(files)}, not over the recorded "
                        f"run's (first: {shown(original)})"
                    )

            overlay = Overlay(files, roots, [os.fspath(store_root), tempfile.gettempdir()], written)
            trackers = Trackers(where, os.getcwd(), notify)
            for part in (overlay, trackers):
                part.install()
                installed.append(part)
        yield
    finally:
        for part in reversed(installed):
            part.uninstall()
        _active = False
