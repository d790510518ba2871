"""Run a script under a session: instrument the project's code, run it as ``__main__``, clean up.

Record, replay and the console differ only in the session they pass and in what they do around it.
"""

from __future__ import annotations

import os
from pathlib import Path

from . import runner
from .instrument.importer import InstrumentingFinder, ProjectFilter
from .instrument.patch import instrument_module_code
from .runtime import hooks


def project_root(target, module):
    """The folder whose modules are instrumented: the script's, or the working directory for -m."""
    if module:
        return Path(os.getcwd())
    path = Path(os.path.abspath(target))
    return path if path.is_dir() else path.parent


def project_path(target):
    """A script's path within its project (the nearest folder up with pyproject.toml, setup.py or .git; else
    the script's own folder), which stays the same when the project is moved or copied."""
    path = Path(os.path.realpath(target))
    for folder in path.parents:
        if any((folder / marker).exists() for marker in ("pyproject.toml", "setup.py", ".git")):
            return path.relative_to(folder).as_posix()
    return path.name


class Instrumenter:
    """Patches code for a session and reports the loops and the source of every file it patched. A session
    may first recompile a file from its source (``rewrite``: replay isolates the lines added since)."""

    def __init__(self, project: ProjectFilter, session, on_source):
        self.project, self.session, self.on_source = project, session, on_source

    def __call__(self, code, path, source):
        rel = self.project.relative(path)
        rewrite = getattr(self.session, "rewrite", None)
        rewritten = rewrite(rel, path, source) if rewrite is not None else None
        if rewritten is not None:
            code, source = rewritten
        code, loops = instrument_module_code(code, rel, hooks.HOOKS, source)
        self.session.register(loops, path)
        self.on_source(rel, source)
        return code


def run_under(session, target, argv, module, settings, on_source=None, on_start=None):
    """Run ``target`` with ``session`` answering the hooks; returns the exception that ended the script
    (None if none). Raises runner.NoScript or SyntaxError when a script file cannot start."""
    project = ProjectFilter(project_root(target, module), settings["include"], settings["exclude"])
    patch = Instrumenter(project, session, on_source or (lambda rel, src: None))
    finder = InstrumentingFinder(project, patch)

    def start():
        finder.install()
        hooks.activate(session)
        if on_start is not None:
            on_start()

    try:
        return runner.launch(target, argv, module, patch, start)
    finally:
        hooks.deactivate()
        finder.uninstall()
