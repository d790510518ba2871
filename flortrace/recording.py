"""What a recording needs around its session (control.record runs it): the run's facts (versions, git, the
environment), the catalog as a recording uses it, and running the script unrecorded when the store cannot be
used.

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

from . import runner

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


def can_start(target, module):
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


def run_plain(target, argv, module):
    """Run the script exactly as Python would, with flortrace doing nothing at all."""
    try:
        exc = runner.launch(target, argv, module, lambda code, path, source: code, lambda: None)
    except (runner.NoScript, SyntaxError) as failure:
        return runner.report_start_failure(failure)
    return runner.exit_code_of(exc)


def run_unrecorded(target, argv, module, reason):
    """The store cannot be used: the script still runs, and the start and the end of its output say so."""
    warn(f"warning: nothing is being recorded: {reason}")
    code = run_plain(target, argv, module)
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
