"""An import hook that instruments modules imported from the script's project folder.

Never site-packages, the standard library or flortrace itself. The unpatched code is what Python caches in
``__pycache__``; patched code embeds hook objects and is never written to disk.
"""

from __future__ import annotations

import fnmatch
import os
import sys
import sysconfig
from importlib import machinery
from importlib.machinery import PathFinder
from pathlib import Path

_OWN = str(Path(__file__).resolve().parent.parent)


def _system_dirs():
    dirs = {sysconfig.get_paths().get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    dirs |= {sys.prefix, sys.base_prefix, sys.exec_prefix}
    return [str(Path(d).resolve()) for d in dirs if d]


class ProjectFilter:
    """Decides which source files belong to the user's project."""

    def __init__(self, root, include=(), exclude=()):
        self.root = str(Path(root).resolve())
        self.include, self.exclude = list(include), list(exclude)
        self.system = [d for d in _system_dirs() if not self.root.startswith(d + os.sep) and d != self.root]
        self._folders = {}  # folder -> its real path: a project imports many modules from a few folders

    def _real(self, path):
        """``Path(path).resolve()``, with each folder resolved once."""
        path = os.path.abspath(path)
        if os.path.islink(path):
            return os.path.realpath(path)
        folder, name = os.path.split(path)
        real = self._folders.get(folder)
        if real is None:
            real = self._folders[folder] = os.path.realpath(folder)
        return os.path.join(real, name)

    def relative(self, path):
        full = self._real(path)
        return os.path.relpath(full, self.root) if full.startswith(self.root + os.sep) else full

    def wants(self, path):
        full = self._real(path)
        if not full.startswith(self.root + os.sep) or full.startswith(_OWN + os.sep):
            return False
        parts = Path(full).parts
        if "site-packages" in parts or "dist-packages" in parts:
            return False
        if any(full.startswith(d + os.sep) for d in self.system):
            return False
        rel = self.relative(full)
        if self.include and not any(fnmatch.fnmatch(rel, pat) for pat in self.include):
            return False
        return not any(fnmatch.fnmatch(rel, pat) for pat in self.exclude)


class SourceFileLoader(machinery.SourceFileLoader):
    """The standard loader, returning patched code (named like its base: scripts may print the name)."""

    patch = None

    def get_code(self, fullname):
        code = super().get_code(fullname)
        if code is None:
            return code
        return self.patch(code, self.path, self.get_source(fullname) or "")


class InstrumentingFinder:
    """Put first on sys.meta_path; hands project modules a loader that patches their code. (A meta path
    finder needs only find_spec; importlib.abc would cost every run ~10 ms of imports.)"""

    def __init__(self, project: ProjectFilter, patch):
        self.project, self.patch = project, patch
        self._inside = {}  # sys.path entry or package folder -> whether it is under the project

    def find_spec(self, name, path=None, target=None):
        search = self._search_path(path)
        if not search:
            return None  # not under the project: leave it to the usual finders, untouched
        spec = PathFinder.find_spec(name, search)
        if spec is None or not isinstance(spec.loader, machinery.SourceFileLoader) or not spec.origin:
            return None
        if not self.project.wants(spec.origin):
            return None
        loader = SourceFileLoader(spec.loader.name, spec.loader.path)
        loader.patch = self.patch
        spec.loader = loader
        return spec

    def _search_path(self, path):
        """Where Python would look, cut to the part that can hold project modules: the leading entries of
        sys.path under the project (anything after them would be found by Python first elsewhere), or a
        package's own folders when they are under the project. Keeps imports of libraries cheap."""
        root, known = self.project.root + os.sep, self._inside

        def inside(entry):
            if not entry:  # the working directory, which the script may change
                return (os.getcwd() + os.sep).startswith(root)
            if entry not in known:  # a big library imports thousands of modules from the same few folders
                known[entry] = (os.path.abspath(entry) + os.sep).startswith(root)
            return known[entry]

        if path is not None:
            return [p for p in path if inside(p)]
        leading = []
        for entry in sys.path:
            if not inside(entry):
                break
            leading.append(entry)
        return leading

    def install(self):
        sys.meta_path.insert(0, self)

    def uninstall(self):
        if self in sys.meta_path:
            sys.meta_path.remove(self)
