"""Run a script under a session: instrument the project's code, run it as ``__main__``, clean up.

Record, replay and the console differ only in the session they pass and in what they do around it; replay
and the console find the recorded runs of a script here too (find_run, script_runs).
"""

from __future__ import annotations

import os
from pathlib import Path

from . import frameworks, runner
from .exceptions import StoreError
from .instrument import editables
from .instrument.codecache import UNCHANGED, CodeCache
from .instrument.importer import InstrumentingFinder, ProjectFilter
from .instrument.patch import instrument_module_code
from .runtime import hooks

CODE_CACHE = "code"  # the folder in the store where patched code is kept


def project_root(target, module):
    """The folder whose modules are instrumented: the script's (where sys.path[0] points: symbolic links
    followed), the directory run, or the working directory for -m."""
    if module:
        return Path(os.getcwd())
    path = Path(os.path.abspath(target))
    return path if path.is_dir() else Path(os.path.realpath(target)).parent


def project_filter(target, module, settings, recorded=()):
    """What is instrumented: the project folder, the source folders of editable installs, the packages
    ``include`` names (``recorded``: those of the run being replayed) and the training loops of the
    frameworks flortrace knows."""
    include = dict.fromkeys([*settings.include, *recorded, *frameworks.PACKAGES])
    return ProjectFilter(
        project_root(target, module), list(include), settings.exclude, editables.source_folders()
    )


def project_path(target):
    """A script's path within its project (the nearest folder up with pyproject.toml, setup.py or .git; else
    the script's own folder), which stays the same when the project is moved or copied."""
    path = Path(os.path.realpath(target))
    for folder in path.parents:
        if any((folder / marker).exists() for marker in ("pyproject.toml", "setup.py", ".git")):
            return path.relative_to(folder).as_posix()
    return path.name


def find_run(catalog, target, module, run_id):
    if run_id is not None:
        if catalog.run(run_id) is None:
            raise StoreError(f"no run {run_id} in this store (see python -m flortrace runs)")
        return run_id
    return script_runs(catalog, target, module)[-1]["id"]


def script_runs(catalog, target, module):
    """The recorded runs of a script, oldest first: of this very file, else (a moved or copied project) of
    the file at the same place in its project. StoreError when there are none, or several scripts match."""
    runs = [r for r in catalog.runs() if r["mode"] == "record"]
    if module:
        found = [r for r in runs if r["script"] == target]
    else:
        real = os.path.realpath(target)
        found = [r for r in runs if os.path.realpath(r["script"]) == real]
        if not found:
            here = project_path(target)
            found = [r for r in runs if (r.get("info") or {}).get("project_path") == here]
            scripts = sorted({r["script"] for r in found})
            if len(scripts) > 1:
                raise StoreError(
                    f"no recorded run of {target} itself; {len(scripts)} scripts at {here} in their projects "
                    f"have runs here ({', '.join(scripts)}): choose one with --run"
                )
    if not found:
        raise StoreError(
            f"no recorded run of {target} in this store; record it first: python -m flortrace {target}"
        )
    return sorted(found, key=lambda r: r["id"])


class Instrumenter:
    """Patches code for a session (through ``cache`` when given) and reports the loops and the source of
    every file it patched. Python's own code for the file is always compiled or read from its pyc first,
    as without flortrace: compile-time warnings and written pyc files stay the same. A session may first
    recompile a file from its source (``rewrite``: replay isolates the lines added since); such code is
    not cached."""

    def __init__(self, project: ProjectFilter, session, on_source, cache=None):
        self.project, self.session, self.on_source, self.cache = project, session, on_source, cache

    def __call__(self, code, path, source):
        rel = self.project.relative(path)
        rewrite = getattr(self.session, "rewrite", None)
        rewritten = rewrite(rel, path, source) if rewrite is not None else None
        if rewritten is not None:
            code, source = rewritten
        cache = self.cache if source and rewritten is None else None
        hit = cache.load(path, rel, source) if cache else None
        if hit is not None:
            patched, loops = hit
            patched = code if patched is UNCHANGED else patched
        else:
            patched, loops = instrument_module_code(code, rel, hooks.HOOKS, source)
            if cache:
                cache.save(path, rel, source, UNCHANGED if patched is code else patched, loops)
        # The globals of the project's modules are state; an included library's are its own business.
        self.session.register(loops, path if self.project.wants(path) else None)
        self.on_source(rel, source)
        return patched


def run_under(session, target, argv, module, settings, on_source=None, on_start=None):
    """Run ``target`` with ``session`` answering the hooks; returns the exception that ended the script
    (None if none). Raises runner.NoScript or SyntaxError when a script file cannot start."""
    project = project_filter(target, module, settings, session.include)
    cache = CodeCache(Path(settings.store).absolute() / CODE_CACHE, hooks.HOOKS)
    patch = Instrumenter(project, session, on_source or (lambda rel, src: None), cache)
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
