"""Run a script or module as the real ``__main__``, the way ``python script.py`` / ``python -m mod`` does.

The caller passes ``patch(code, path) -> code`` to instrument the main code. Exceptions are reported like
the interpreter reports them (flortrace's own frames removed) and turned into the interpreter's exit codes.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
import traceback
import types
from pathlib import Path

_PACKAGE_DIR = str(Path(__file__).resolve().parent)


class NoScript(Exception):
    """The script or module cannot be found; ``code`` is the exit code Python would use."""

    def __init__(self, message, code):
        super().__init__(message)
        self.code = code


def _interpreter():
    return (getattr(sys, "orig_argv", None) or [sys.executable])[0]


def resolve_script(path):
    """Return the absolute file to run for ``path`` (a file, or a directory with __main__.py)."""
    p = Path(path)
    full = Path(os.path.abspath(path))
    if p.is_dir():
        main = full / "__main__.py"
        if not main.is_file():
            raise NoScript(f"{_interpreter()}: can't find '__main__' module in {str(full)!r}", 1)
        return main
    if not p.exists():
        raise NoScript(f"{_interpreter()}: can't open file {str(full)!r}: [Errno 2] No such file or directory", 2)
    return full


def script_code(path, patch):
    """Compile ``path`` as Python compiles a script: returns (code, source). SyntaxError propagates."""
    with open(path, "rb") as f:
        raw = f.read()
    source = importlib.util.decode_source(raw)
    code = compile(raw, str(path), "exec", dont_inherit=True)
    return patch(code, str(path), source), source


def _fresh_main(**attrs):
    main = types.ModuleType("__main__")
    main.__dict__.update(__builtins__=__builtins__, __cached__=None, __spec__=None, __loader__=None)
    main.__dict__.update(attrs)
    return main


def prepare_script(path, argv, patch):
    """Set up sys.argv, sys.path[0] and ``__main__`` for a script; return (code, globals, source)."""
    script = resolve_script(path)
    code, source = script_code(script, patch)
    run_path = script.parent if script.name == "__main__.py" and Path(path).is_dir() else script
    main = _fresh_main(__name__="__main__", __file__=str(script), __package__=None)
    if script.name == "__main__.py" and Path(path).is_dir():
        main.__dict__["__package__"] = ""
    sys.argv[:] = [str(path), *argv]
    sys.path[0] = str(Path(run_path).parent if run_path == script else run_path)
    sys.modules["__main__"] = main
    return code, main.__dict__, source


def prepare_module(name, argv, patch):
    """The same for ``-m name``: the module's code runs as __main__ with cwd as sys.path[0]."""
    sys.path[0] = os.getcwd()
    try:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations is not None:
            name = name + ".__main__"
            spec = importlib.util.find_spec(name)
    except (ImportError, ValueError) as exc:
        raise NoScript(f"{_interpreter()}: Error while finding module specification for {name!r} ({exc})", 1)
    if spec is None or spec.loader is None:
        raise NoScript(f"{_interpreter()}: No module named {name}", 1)
    code = spec.loader.get_code(name)
    source = spec.loader.get_source(name) if hasattr(spec.loader, "get_source") else None
    if code is None:
        raise NoScript(f"{_interpreter()}: No code object available for {name}", 1)
    code = patch(code, spec.origin, source or "")
    main = _fresh_main(
        __name__="__main__",
        __file__=spec.origin,
        __package__=name.rpartition(".")[0],
        __spec__=spec,
        __loader__=spec.loader,
    )
    sys.argv[:] = [spec.origin, *argv]
    sys.modules["__main__"] = main
    return code, main.__dict__, source or ""


def _without_our_frames(tb):
    """Rebuild a traceback chain leaving out frames of the flortrace package."""
    frames = []
    while tb is not None:
        if not tb.tb_frame.f_code.co_filename.startswith(_PACKAGE_DIR):
            frames.append(tb)
        tb = tb.tb_next
    out = None
    for t in reversed(frames):
        out = types.TracebackType(out, t.tb_frame, t.tb_lasti, t.tb_lineno)
    return out


def clean_exception(exc):
    """Strip flortrace frames from ``exc`` and its chained causes/contexts, in place."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        exc.__traceback__ = _without_our_frames(exc.__traceback__)
        if exc.__cause__ is not None:
            clean_exception(exc.__cause__)
        exc = exc.__context__


def exit_code_of(exc):
    """Report ``exc`` as the interpreter would and return its exit code (None: no exception)."""
    if exc is None:
        return 0
    if isinstance(exc, SystemExit):
        code = exc.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code
        print(code, file=sys.stderr)
        return 1
    clean_exception(exc)
    try:
        sys.excepthook(type(exc), exc, exc.__traceback__)
    except Exception:
        traceback.print_exception(type(exc), exc, exc.__traceback__)
    return 130 if isinstance(exc, KeyboardInterrupt) else 1


def execute(code, globs):
    """Run ``code``; return the exception that ended it, or None."""
    try:
        exec(code, globs)
    except BaseException as exc:  # noqa: BLE001 - every ending is reported like the interpreter does
        return exc
    return None


def print_syntax_error(exc):
    traceback.print_exception(type(exc), exc, None)


EXTENSIONS = tuple(importlib.machinery.SOURCE_SUFFIXES)
