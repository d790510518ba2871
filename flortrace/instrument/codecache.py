"""Patched code kept on disk, so a project's modules are instrumented once rather than on every run.

As pytest and coverage keep rewritten modules: one file per module (per interpreter), replaced when its
source changes. Patched code holds hook functions and LoopInfo objects as constants, which marshal cannot
write, so the file holds the code with those constants replaced (a table says where they go back) and the
loops' fields; effects are worked out again from the source when needed. A file that is missing, from
another version of anything involved, or damaged is a miss: the module is patched as if there were none.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import sys
from importlib.util import MAGIC_NUMBER
from pathlib import Path
from types import CodeType

import bytecode

from ..store.access import FOLDER_MODE, UnsafeStore, open_nofollow
from ..version import __version__
from .patch import LoopInfo, Origin

_FORMAT = 1
UNCHANGED = None  # what load returns, and save takes, for a module with nothing to patch


def _tag():
    """What patched code depends on besides the module: interpreter, optimization level, the versions of
    bytecode and flortrace, and the size and time of this package's files (a development checkout changes
    without a new version number)."""
    parts = [str(_FORMAT), sys.version, MAGIC_NUMBER.hex(), str(sys.flags.optimize), bytecode.__version__]
    parts.append(__version__)
    for path in sorted(Path(__file__).parent.glob("*.py")):
        stat = path.stat()
        parts.append(f"{path.name} {stat.st_size} {stat.st_mtime_ns}")
    return "\0".join(parts)


class CodeCache:
    """Patched module code under ``folder``; ``hooks`` is the namespace patched code calls."""

    def __init__(self, folder, hooks):
        self.folder, self.hooks = Path(folder), hooks
        self.tag = _tag()
        self._hook_names = {id(fn): name for name, fn in vars(hooks).items()}

    def _file(self, path, rel):
        key = f"{self.tag}\0{path}\0{rel}".encode("utf-8", "surrogatepass")  # file names need not be UTF-8
        name = hashlib.blake2b(key, digest_size=16).hexdigest()
        return self.folder / name

    @staticmethod
    def _digest(source):
        return hashlib.blake2b(source.encode("utf-8", "surrogatepass"), digest_size=32).digest()

    def load(self, path, rel, source):
        """(code, loops) as patched earlier from this very ``source``, or None. The code is UNCHANGED when
        the module had nothing to patch (then Python's own code for it serves)."""
        try:
            data = self._file(path, rel).read_bytes()
            tag, digest, patched, places, rows = marshal.loads(data)
        except (OSError, EOFError, ValueError, TypeError):
            return None
        if tag != self.tag or digest != self._digest(source):
            return None
        if patched is None:
            return UNCHANGED, []
        origin = Origin(path, source=source)
        loops = [LoopInfo(*fields, where=(origin, where, position)) for *fields, where, position in rows]
        prefixes = {place[:n] for place in places for n in range(len(place))}
        return self._fill(patched, (), places, prefixes, loops), loops

    def save(self, path, rel, source, code, loops):
        """Keep ``code`` (patched from ``source``, or UNCHANGED) and its ``loops``; failing to write costs
        nothing."""
        numbers = {id(info): n for n, info in enumerate(loops)}
        places = {}
        stripped = None if code is UNCHANGED else self._strip(code, (), places, numbers)
        rows = [(*info.fields(), *info._where[1:]) for info in loops]
        data = marshal.dumps((self.tag, self._digest(source), stripped, places, rows))
        final = self._file(path, rel)
        tmp = final.with_name(f".{final.name}-{os.getpid()}")  # several processes may write one module
        try:
            for folder in (self.folder.parent, self.folder):  # private like the rest of the store
                folder.mkdir(mode=FOLDER_MODE, exist_ok=True)
            with os.fdopen(open_nofollow(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), "wb") as out:
                out.write(data)
            os.replace(tmp, final)
        except (OSError, UnsafeStore):  # a planted link is never followed
            try:
                tmp.unlink()
            except OSError:
                pass

    def _strip(self, code, path, places, numbers):
        """``code`` with hooks and LoopInfos replaced by None; ``places`` says where they were."""
        consts, changed = list(code.co_consts), False
        for k, const in enumerate(consts):
            if isinstance(const, CodeType):
                inner = self._strip(const, (*path, k), places, numbers)
                changed |= inner is not const
                consts[k] = inner
            elif isinstance(const, LoopInfo):
                places[(*path, k)] = numbers[id(const)]
                consts[k], changed = None, True
            elif id(const) in self._hook_names and getattr(self.hooks, self._hook_names[id(const)]) is const:
                places[(*path, k)] = self._hook_names[id(const)]
                consts[k], changed = None, True
        return code.replace(co_consts=tuple(consts)) if changed else code

    def _fill(self, code, path, places, prefixes, loops):
        """``code`` with what ``places`` says put back, walking only into code objects that have some."""
        consts = list(code.co_consts)
        for k, const in enumerate(consts):
            where = (*path, k)
            place = places.get(where)
            if place is not None:
                consts[k] = loops[place] if isinstance(place, int) else getattr(self.hooks, place)
            elif where in prefixes:
                consts[k] = self._fill(const, where, places, prefixes, loops)
        return code.replace(co_consts=tuple(consts))
