"""Run a script or module as the real ``__main__``, the way ``python script.py`` / ``python -m mod`` does.

The caller passes ``patch(code, path) -> code`` to instrument the main code. Exceptions are reported like
the interpreter reports them (flortrace's own frames removed) and turned into the interpreter's exit codes.
"""

from __future__ import annotations

import builtins
import importlib.machinery
import importlib.util
import os
import runpy
import signal
import sys
import types

_PACKAGE_DIR = os.path.dirname(os.path.realpath(__file__))


class NoScript(Exception):
    """The script or module cannot be found; ``code`` is the exit code Python would use."""

    def __init__(self, message, code):
        super().__init__(message)
        self.code = code


def _interpreter():
    return (getattr(sys, "orig_argv", None) or [sys.executable])[0]


def _abspath(path):
    """``path`` made absolute as the interpreter does for ``python path``: joined to the working directory,
    not normalized (``python ./x.py`` runs ``/cwd/./x.py``: that is its ``__file__`` and traceback name)."""
    path = os.fspath(path)
    return path if os.path.isabs(path) else os.path.join(os.getcwd(), path)


def resolve_script(path):
    """Return the absolute file to run for ``path`` (a file, or a directory with __main__.py)."""
    full = _abspath(path)
    if os.path.isdir(path):
        main = os.path.join(full, "__main__.py")
        if not os.path.isfile(main):
            raise NoScript(f"{_interpreter()}: can't find '__main__' module in {full!r}", 1)
        return main
    if not os.path.exists(path):
        raise NoScript(f"{_interpreter()}: can't open file {full!r}: [Errno 2] No such file or directory", 2)
    return full


def script_code(path, patch):
    """Compile ``path`` as Python compiles a script, then ``patch`` it. SyntaxError propagates."""
    with open(path, "rb") as f:
        raw = f.read()
    source = importlib.util.decode_source(raw)
    code = compile(raw, str(path), "exec", dont_inherit=True)
    return patch(code, str(path), source)


def _fresh_main(**attrs):
    """A ``__main__`` module with the attributes the interpreter gives it, in its order (scripts print
    ``globals()``): those of any module, then ``__annotations__`` and ``__builtins__``, then ``attrs``."""
    main = types.ModuleType("__main__")
    main.__dict__.update(__annotations__={}, __builtins__=builtins)
    main.__dict__.update(attrs)
    return main


def _safe_path():
    """-P, -I or PYTHONSAFEPATH (3.11+): Python puts no folder of a script or module on sys.path."""
    return getattr(sys.flags, "safe_path", False)


def prepare_script(path, argv, patch):
    """Set up sys.argv, sys.path[0] and ``__main__`` for a script file; return (code, globals)."""
    script = resolve_script(path)
    code = script_code(script, patch)
    loader = importlib.machinery.SourceFileLoader("__main__", script)
    main = _fresh_main(__file__=script, __cached__=None)
    main.__dict__.update(__package__=None, __loader__=loader, __spec__=None)
    sys.argv[:] = [str(path), *argv]
    if not _safe_path():  # the folder of the script, symbolic links followed
        sys.path[0] = os.path.dirname(os.path.realpath(path))
    sys.modules["__main__"] = main
    return code, main.__dict__


def launch(target, argv, module, patch, start):
    """Run ``target`` (a script, a directory with __main__.py, or with ``module`` a module name) as
    ``__main__``, exactly as ``python target`` / ``python -m target`` would; ``start()`` runs just before
    the user's code. Returns the exception that ended it (None: none). Raises NoScript or SyntaxError when
    a script file cannot start; for modules and directories runpy reports those itself, as Python does.

    Modules and directories go through runpy, whose loader lookups reach our import hook (so their code is
    patched) and whose frames appear in tracebacks just as under plain Python."""
    # sys.path[0] is the entry Python put first for flortrace itself; with -P, -I or PYTHONSAFEPATH
    # (3.11+) it put none for a script or a module, and neither does flortrace.
    if module:
        if not _safe_path():
            sys.path[0] = os.getcwd()
        sys.argv[:] = ["-m", *argv]
        return _run_with_runpy(target, True, start)
    if os.path.isdir(target):
        resolve_script(target)  # NoScript when there is no __main__.py
        if _safe_path():  # a directory's own entry is put first even then
            sys.path.insert(0, _abspath(target))
        else:
            sys.path[0] = _abspath(target)
        sys.argv[:] = [str(target), *argv]
        return _run_with_runpy("__main__", False, start)
    code, globs = prepare_script(target, argv, patch)
    start()
    return execute(code, globs)


def _run_with_runpy(name, alter_argv, start):
    sys.modules["__main__"] = _fresh_main(__name__="__main__")
    start()
    try:
        runpy._run_module_as_main(name, alter_argv)
    except BaseException as exc:  # noqa: BLE001 - reported like the interpreter does
        return exc
    return None


_IMPORTLIB = ("<frozen importlib._bootstrap>", "<frozen importlib._bootstrap_external>")


def _without_our_frames(tb, is_import_error):
    """Rebuild a traceback chain without flortrace's frames, then trim the import machinery's frames the
    way the interpreter does for exceptions that leave an import statement (our loader, sitting between
    its frames, would otherwise stop that from happening)."""
    frames, chunk = [], []
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.startswith(_PACKAGE_DIR):
            chunk = []  # import machinery that called our loader: Python hides it with the loader's work
        elif filename in _IMPORTLIB:
            chunk.append(tb)
        else:
            frames += chunk + [tb]
            chunk = []
        tb = tb.tb_next
    frames += chunk
    if any(
        t.tb_frame.f_code.co_filename in _IMPORTLIB and t.tb_frame.f_code.co_name == "_find_and_load"
        for t in frames
    ):
        kept, chunk = [], []
        for t in frames:
            code = t.tb_frame.f_code
            if code.co_filename in _IMPORTLIB:
                chunk.append(t)
                if is_import_error or code.co_name == "_call_with_frames_removed":
                    chunk = []
                continue
            kept.extend(chunk)
            chunk = []
            kept.append(t)
        frames = kept + chunk
    out = None
    for t in reversed(frames):
        out = types.TracebackType(out, t.tb_frame, t.tb_lasti, t.tb_lineno)
    return out


def clean_exception(exc):
    """Strip flortrace frames from ``exc`` and its chained causes/contexts, in place."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        exc.__traceback__ = _without_our_frames(exc.__traceback__, isinstance(exc, ImportError))
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
        import traceback  # only when sys.excepthook itself fails

        traceback.print_exception(type(exc), exc, exc.__traceback__)
    return INTERRUPTED if isinstance(exc, KeyboardInterrupt) else 1


INTERRUPTED = 130  # after cleanup, die by SIGINT as the interpreter does (the shell then reports 130)


def exit_process(code):
    """Leave with ``code``; an interrupted script ends the way Python ends on an uncaught Ctrl-C."""
    if code == INTERRUPTED:
        sys.stdout.flush()
        sys.stderr.flush()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    sys.exit(code)


def execute(code, globs):
    """Run ``code``; return the exception that ended it, or None."""
    try:
        exec(code, globs)
    except BaseException as exc:  # noqa: BLE001 - every ending is reported like the interpreter does
        return exc
    return None


def report_start_failure(exc):
    """Report a script that could not start (NoScript, SyntaxError) as Python does; return the exit code."""
    if isinstance(exc, NoScript):
        print(exc, file=sys.stderr)
        return exc.code
    import traceback

    traceback.print_exception(type(exc), exc, None)
    return 1
