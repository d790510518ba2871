"""Record a run: open the store, start the writer, instrument and run the script, close everything cleanly."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import flortrace

from . import runner
from .driver import project_root, run_under
from .runtime import hooks
from .runtime.recorder import Recorder, stderr_notice
from .state.digest import VERSION as DIGEST_VERSION
from .store import Store
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
    notify = stderr_notice(settings["quiet"])
    store = Store(settings["store"])
    catalog = store.catalog
    script = target if module else str(Path(os.path.abspath(target)))
    root = project_root(target, module)
    run_id = catalog.begin_run(
        script=script,
        argv=list(argv),
        cwd=os.getcwd(),
        env={k: os.environ[k] for k in ENV_KEYS if k in os.environ},
        versions=versions(),
        git=git_commit(root),
        name=settings.get("name"),
    )
    catalog.set_run_info(run_id, digest_version=DIGEST_VERSION)
    writer = SnapshotWriter(str(store.root), run_id)
    if settings["overhead"] > 0:
        writer.start()  # the process imports while the script sets up, so the first snapshot need not wait
    recorder = Recorder(catalog, run_id, writer, settings["overhead"], notify)
    real_exit = os._exit

    def finish(status, code):
        hooks.deactivate()
        recorder.finish()
        writer.close()
        if writer.failed:
            if "writer" not in recorder.warned:
                notify(f"checkpointing stopped: {writer.failed}")
            catalog.set_run_info(run_id, writer_error=writer.failed)
        catalog.set_run_info(run_id, versions=versions(), **torch_settings())  # torch is imported by now
        catalog.end_run(run_id, status, code)
        notify(
            f"recorded run {run_id}: {recorder.epochs_done} epochs, {recorder.checkpoints} snapshots "
            f"in {settings['store']}"
        )

    def exit_now(code):  # os._exit skips finally blocks: finish the run first
        if hooks.current() is recorder:
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
        catalog.end_run(run_id, "failed", code, note=str(failure))
        return code
    finally:
        os._exit = real_exit
    code = runner.exit_code_of(exc)
    status = "finished" if code == 0 else "failed"
    finish(status, code)
    store.close()
    return code


def torch_settings():
    from .state import capture_torch_settings

    settings = capture_torch_settings()
    return {"torch_settings": settings} if settings else {}
