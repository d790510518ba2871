"""Patching for the replay guard: attributes replaced and put back, and a function run on a module right
after it is imported (or at once, if it already is).

The guard changes a few functions of libraries the script may import at any time (``torch.save``,
``wandb.init``, TensorBoard's ``FileWriter``); a finder first in ``sys.meta_path`` wraps the loader of
those modules only, every other import goes on untouched.
"""

from __future__ import annotations

import sys
from importlib.abc import MetaPathFinder


class _Loader:
    """The module's own loader, then the callback on the module it made."""

    def __init__(self, loader, callback):
        self.loader, self.callback = loader, callback

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        self.callback(module)

    def __getattr__(self, name):  # get_source, is_package, ... as the real loader answers them
        return getattr(self.loader, name)


class PostImport(MetaPathFinder):
    """``PostImport({name: callback})``: ``install()`` calls each callback on its module once imported."""

    def __init__(self, callbacks):
        self.callbacks = dict(callbacks)
        self._finding = set()

    def install(self):
        for name, callback in self.callbacks.items():
            if name in sys.modules:
                callback(sys.modules[name])
        sys.meta_path.insert(0, self)

    def uninstall(self):
        if self in sys.meta_path:
            sys.meta_path.remove(self)

    def find_spec(self, name, path=None, target=None):
        callback = self.callbacks.get(name)
        if callback is None or name in self._finding:
            return None
        self._finding.add(name)
        try:
            for finder in sys.meta_path:
                if finder is self or not hasattr(finder, "find_spec"):
                    continue
                spec = finder.find_spec(name, path, target)
                if spec is not None:
                    break
            else:
                return None
        finally:
            self._finding.discard(name)
        if spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _Loader(spec.loader, callback)
        return spec


class Patches:
    """Attributes replaced with ``patch`` and put back, last first, with ``undo``."""

    def __init__(self):
        self._saved = []

    def patch(self, owner, name, value):
        self._saved.append((owner, name, getattr(owner, name)))
        setattr(owner, name, value)

    def undo(self):
        while self._saved:
            owner, name, value = self._saved.pop()
            setattr(owner, name, value)
