"""An import hook that instruments modules imported from the script's project folder and from the user's
editable installs, and the packages named by ``include``.

Never other site-packages, the standard library or flortrace itself. The unpatched code is what Python
caches in ``__pycache__``; patched code embeds hook objects and is never written to disk.
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


def _is_package_name(text):
    """``transformers.trainer`` names a package or module; ``models/*.py`` or ``train.py`` is a glob."""
    return not text.endswith(".py") and all(part.isidentifier() for part in text.split("."))


class ProjectFilter:
    """Decides which source files belong to the user's project: files under the project folder and under
    the ``editable`` source folders (``pip install -e``), and the modules of the ``include`` entries that
    name packages, wherever they are installed. ``include`` entries that are path globs keep only the
    project files they match; ``exclude`` globs leave files out."""

    def __init__(self, root, include=(), exclude=(), editable=()):
        self.root = str(Path(root).resolve())
        self.packages = [p for p in include if _is_package_name(p)]
        self.include = [p for p in include if not _is_package_name(p)]
        self.exclude = list(exclude)
        self.roots = [self.root] + [str(Path(f).resolve()) for f in editable]
        system = _system_dirs()
        # A root may itself lie inside a system folder (a project kept in the venv): those stay searched.
        self.system = {r: [d for d in system if not r.startswith(d + os.sep) and d != r] for r in self.roots}
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

    def included(self, name):
        """Whether module ``name`` belongs to a package named by ``include``."""
        return any(name == p or name.startswith(p + ".") for p in self.packages)

    def under_roots(self, folder):
        """Whether ``folder`` (absolute) is under the project folder or an editable source folder."""
        folder += os.sep
        return any(folder.startswith(r + os.sep) for r in self.roots)

    def wants(self, path, name=None):
        full = self._real(path)
        if full.startswith(_OWN + os.sep):
            return False
        rel = self.relative(full)
        if any(fnmatch.fnmatch(rel, pat) for pat in self.exclude):
            return False
        if name is not None and self.included(name):
            return True
        root = next((r for r in self.roots if full.startswith(r + os.sep)), None)
        if root is None:
            return False
        parts = Path(full).parts
        if "site-packages" in parts or "dist-packages" in parts:
            return False
        if any(full.startswith(d + os.sep) for d in self.system[root]):
            return False
        return root != self.root or not self.include or any(fnmatch.fnmatch(rel, p) for p in self.include)


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
        self._leading = {}  # sys.path entry -> whether it is under the project folder
        self._inside = {}  # package folder -> whether it is under the project or an editable source folder
        # Top-level modules may also come from editable installs or included packages, found by the
        # finders after this one (a .pth path late on sys.path, setuptools' __editable__ finder).
        self._beyond = len(project.roots) > 1 or bool(project.packages)

    def find_spec(self, name, path=None, target=None):
        beyond = path is None and self._beyond
        if path is not None and self.project.included(name):
            spec = PathFinder.find_spec(name, path)  # a module of an included package, wherever it is
        else:
            search = self._search_path(path)
            spec = PathFinder.find_spec(name, search) if search else None
            if spec is None and beyond:
                spec = self._found_after(name, target)
        if spec is not None and self._patches(spec, name):
            loader = SourceFileLoader(spec.loader.name, spec.loader.path)
            loader.patch = self.patch
            spec.loader = loader
            return spec
        return spec if beyond else None  # found by the usual finders anyway: no second search

    def _patches(self, spec, name):
        if not isinstance(spec.loader, machinery.SourceFileLoader) or not spec.origin:
            return False
        return self.project.wants(spec.origin, name)

    def _found_after(self, name, target):
        """The spec the finders after this one give a top-level module (what Python would import)."""
        after = sys.meta_path[sys.meta_path.index(self) + 1 :] if self in sys.meta_path else sys.meta_path
        for finder in after:
            find = getattr(finder, "find_spec", None)
            spec = find(name, None, target) if find is not None else None
            if spec is not None:
                return spec
        return None

    def _search_path(self, path):
        """Where Python would look, cut to the part that can hold project modules: the leading entries of
        sys.path under the project (anything after them would be found by Python first elsewhere), or a
        package's own folders when they are under the project or an editable source folder. Keeps
        imports of libraries cheap (a big library imports thousands of modules from a few folders)."""
        if path is not None:
            inside = self._inside
            for entry in path:
                if entry not in inside:
                    inside[entry] = self.project.under_roots(os.path.abspath(entry))
            return [entry for entry in path if inside[entry]]
        root, known, leading = self.project.root + os.sep, self._leading, []
        for entry in sys.path:
            if not entry:  # the working directory, which the script may change
                if not (os.getcwd() + os.sep).startswith(root):
                    break
            else:
                if entry not in known:
                    known[entry] = (os.path.abspath(entry) + os.sep).startswith(root)
                if not known[entry]:
                    break
            leading.append(entry)
        return leading

    def install(self):
        sys.meta_path.insert(0, self)

    def uninstall(self):
        if self in sys.meta_path:
            sys.meta_path.remove(self)
