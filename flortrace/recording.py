"""Record a run: open the store, start the writer, instrument and run the script, close everything cleanly.

Recording never harms training. A store that cannot be used at the start (read-only, full, someone else's,
damaged) leaves the script running unrecorded, with a warning at the start and at the end; a store write
that fails during the run stops the recording, not the script, and keeps what was committed; a process the
script forks never touches the store. The exit code is always the script's.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import flortrace

from . import runner
from .driver import project_path, project_root, run_under
from .runtime import hooks
from .runtime.recorder import Recorder
from .state.digest import VERSION as DIGEST_VERSION
from .store import Store, StoreError
from .store.writer import SnapshotWriter

ENV_KEYS = ("CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "PYTHONHASHSEED")


def git_commit(folder):
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def versions():
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for name in ("torch", "numpy"):
        mod = sys.modules.get(name)
        if mod is not None:
            out[name] = getattr(mod, "__version__", "?")
    return out


def record(target, argv, settings, module=False):
    """Run ``target`` under the recorder; return the script's exit code."""
    try:
        store = Store(settings["store"])
    except (StoreError, OSError) as exc:
        return _run_unrecorded(target, argv, module, str(exc))
    if not _can_start(target, module):
        store.close()
        return _run_plain(target, argv, module)  # Python's message and exit code; no run is left behind
    try:
        run_id = store.catalog.begin_run(
            script=target if module else str(Path(os.path.abspath(target))),
            argv=list(argv),
            cwd=os.getcwd(),
            env={k: os.environ[k] for k in ENV_KEYS if k in os.environ},
            versions=versions(),
            git=git_commit(project_root(target, module)),
            name=settings.get("name"),
        )
    except (StoreError, OSError) as exc:
        store.close()
        return _run_unrecorded(target, argv, module, str(exc))
    return _record_run(store, run_id, target, argv, settings, module)


def _record_run(store, run_id, target, argv, settings, module):
    notify = notice(settings["quiet"])
    pid = os.getpid()
    writer = SnapshotWriter(str(store.root), run_id)
    if settings["overhead"] > 0:
        writer.start()  # the process imports while the script sets up, so the first snapshot need not wait
    catalog = RecordingCatalog(store.catalog, lambda exc: stop(exc))
    catalog.set_run_info(
        run_id,
        digest_version=DIGEST_VERSION,
        project_path=target if module else project_path(target),
        include=settings["include"],
    )
    recorder = Recorder(catalog, run_id, writer, settings["overhead"], notify, settings.get("epoch_loop"))
    real_exit = os._exit
    finishing = []  # [True] once finish began: it runs once
    stopped = []  # where the recording stopped, if it did

    def stop(exc):
        writer.stop(f"the recording stopped: {exc}")
        recorder.warned.add("writer")  # the writer's own notice would repeat this one
        hooks.deactivate()
        stopped.append(f"at epoch {recorder.epochs_done}" if recorder.epochs_done else "before epoch 0 ended")
        warn(f"recording stopped {stopped[0]}, the script goes on: {exc}; run {run_id} keeps what was saved")

    def finish(status, code):
        finishing.append(True)
        stopped_before = catalog.failure is not None
        hooks.deactivate()
        recorder.finish()
        writer.close()
        if writer.failed and catalog.failure is None:
            if "writer" not in recorder.warned:
                notify(f"checkpointing stopped: {writer.failed}")
            catalog.set_run_info(run_id, writer_error=writer.failed)
        catalog.set_run_info(run_id, versions=versions(), **torch_settings())  # torch is imported by now
        catalog.end_run(run_id, status, code)
        if catalog.failure is None:
            notify(
                f"recorded run {run_id}: {recorder.summary()}, {recorder.checkpoints} snapshots "
                f"in {settings['store']}"
            )
            return
        try:  # the run says it is incomplete when the store takes that much; else it reads as crashed
            store.catalog.end_run(run_id, "crashed", code, note=f"the recording stopped: {catalog.failure}")
        except Exception:
            pass
        if stopped_before:  # said when it happened, maybe long ago: the end of the output sums it up
            warn(f"run {run_id} is incomplete: the recording stopped {stopped[0]} (see above)")

    def exit_now(code):  # os._exit skips finally blocks: finish the run first
        if not finishing and os.getpid() == pid:
            finish("finished" if code == 0 else "failed", code)
        real_exit(code)

    def start():
        os._exit = exit_now
        recorder.policy.add_fixed(
            time.perf_counter() - flortrace._imported
        )  # imports, instrumenting, catalog

    def add_source(rel, source):
        recorder.sources[rel] = source
        catalog.add_source(run_id, rel, source)

    try:
        exc = run_under(recorder, target, argv, module, settings, add_source, start)
    except (runner.NoScript, SyntaxError) as failure:
        code = runner.report_start_failure(failure)
        catalog.end_run(run_id, "failed", code)
        catalog.delete_run(run_id)  # nothing ran: no run to replay or to take as the latest
        store.close()
        return code
    except KeyboardInterrupt as interrupt:  # a Ctrl-C delivered again just as the script ended (see _LoopEnd)
        exc = interrupt
    finally:
        os._exit = real_exit
    code = runner.exit_code_of(exc)
    if os.getpid() != pid:
        return code  # a child the script forked: the run, and the store, are the parent's
    try:
        finish("finished" if code == 0 else "failed", code)
        store.close()
    except KeyboardInterrupt:
        warn(f"interrupted while saving run {run_id}; it keeps what was written before and reads as crashed")
        return runner.INTERRUPTED
    return code


class RecordingCatalog:
    """The catalog as a recording uses it. The first call that fails (a full disk, a damaged catalog) stops
    the recording, never the training: it and every later call return None. In a child process the script
    forked, every call does nothing: the store belongs to the parent's run."""

    def __init__(self, catalog, on_failure):
        self._catalog, self._on_failure, self._pid = catalog, on_failure, os.getpid()
        self.failure = None

    def __getattr__(self, name):
        method = getattr(self._catalog, name)
        if not callable(method):
            return method

        def guarded(*args, **kwargs):
            if self.failure is not None or os.getpid() != self._pid:
                return None
            try:
                return method(*args, **kwargs)
            except Exception as exc:
                self.failure = exc
                self._on_failure(exc)
                return None

        return guarded


def _can_start(target, module):
    """Whether Python would find the script, or the module's top-level package (found without importing)."""
    if not module:
        try:
            runner.resolve_script(target)
        except runner.NoScript:
            return False
        return True
    saved = sys.path[0]
    sys.path[0] = os.getcwd()  # where -m looks first, as runner.launch sets it
    try:
        return importlib.util.find_spec(target.partition(".")[0]) is not None
    except (ImportError, ValueError):
        return False
    finally:
        sys.path[0] = saved


def _run_plain(target, argv, module):
    """Run the script exactly as Python would, with flortrace doing nothing at all."""
    try:
        exc = runner.launch(target, argv, module, lambda code, path, source: code, lambda: None)
    except (runner.NoScript, SyntaxError) as failure:
        return runner.report_start_failure(failure)
    return runner.exit_code_of(exc)


def _run_unrecorded(target, argv, module, reason):
    """The store cannot be used: the script still runs, and the start and the end of its output say so."""
    warn(f"warning: nothing is being recorded: {reason}")
    code = _run_plain(target, argv, module)
    warn(f"warning: this run was not recorded: {reason}")
    return code


def say(line):
    """Write one line to stderr, even when the script closed or replaced ``sys.stderr``."""
    for stream in (sys.stderr, sys.__stderr__):
        if stream is not None:
            try:
                print(line, file=stream, flush=True)
                return
            except (AttributeError, ValueError, OSError):
                continue
    try:
        os.write(2, (line + "\n").encode("utf-8", "backslashreplace"))
    except OSError:
        pass


def warn(message):
    """A flortrace line that ``--quiet`` does not silence: something is not being recorded."""
    say(f"flortrace: {message}")


def notice(quiet):
    """flortrace's notices (``--quiet`` silences them)."""
    return (lambda message: None) if quiet else warn


def torch_settings():
    from .state import capture_torch_settings

    settings = capture_torch_settings()
    return {"torch_settings": settings} if settings else {}
