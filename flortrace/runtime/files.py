"""Copy-on-write for the script's files during replay: the recorded run's files are never overwritten.

A replay re-runs the script, and the script saves what it saved while recording (``torch.save`` of its
checkpoints, CSVs, plots). Under the guarded folders (the working directory and the project folder), what
it writes goes to the replay's folder instead, at the same relative path; what it reads comes from there
once written, else from the original; what it removes or renames away is hidden, not deleted. Hidden
folders (the store, ``.cache``, ``.git``) and everything outside the guarded folders are left to the
script, as are writes relative to a folder descriptor.

Covered: ``open``/``io.open`` (so pathlib, numpy, pandas, pickle, json and TensorBoard's writer),
``os.open``, ``os.stat``/``lstat`` (``exists``, ``isfile``), ``os.mkdir``/``makedirs``, ``os.rename``/
``replace``, ``os.remove``/``unlink``/``rmdir``, ``shutil.rmtree``, and ``torch.save`` (which opens its
file in C++). Not covered: writers in C (h5py, sqlite3, pyarrow), and folder listings, which show the
recorded run's files.
"""

from __future__ import annotations

import builtins
import errno
import functools
import io
import os
import pathlib
import shutil
import stat

from .patching import Patches, PostImport

_REAL = {
    "open": io.open,
    "os.open": os.open,
    "stat": os.stat,
    "lstat": os.lstat,
    "mkdir": os.mkdir,
    "rename": os.rename,
    "replace": os.replace,
    "remove": os.remove,
    "rmdir": os.rmdir,
    "rmtree": shutil.rmtree,
}


def shown(path):
    """``path`` as notices show it: relative to the working directory when inside it."""
    rel = os.path.relpath(path)
    return path if rel.startswith(os.pardir) else rel


def _error(code, path):
    """The OSError Python raises for ``code`` (FileNotFoundError, FileExistsError, ...) naming ``path``."""
    return OSError(code, os.strerror(code), os.fsdecode(path))


def _lexists(path):
    try:
        _REAL["lstat"](path)
    except (OSError, ValueError):
        return False
    return True


def _is(path, kind):
    """Whether ``path`` is a folder or a file (``kind``: stat.S_ISDIR, S_ISREG) on disk, as it really is."""
    try:
        return kind(_REAL["stat"](path).st_mode)
    except (OSError, ValueError):
        return False


def _makedirs(path):
    """``os.makedirs(path, exist_ok=True)`` with the real functions (the patched ones would map again)."""
    if _lexists(path):
        return
    _makedirs(os.path.dirname(path))
    try:
        _REAL["mkdir"](path)
    except FileExistsError:
        pass


def _mode_of(flags):
    """The ``open`` mode that means what these ``os.open`` flags mean for the overlay."""
    if flags & os.O_CREAT and flags & os.O_EXCL:
        return "x"
    if flags & os.O_TRUNC:
        return "w"
    if flags & (os.O_APPEND | os.O_CREAT):
        return "a"
    return "r+" if flags & (os.O_WRONLY | os.O_RDWR) else "r"


class Overlay:
    """Maps paths under ``roots`` to ``folder``; ``install()`` patches the functions above, ``uninstall()``
    puts them back. ``written(original)`` is called the first time the script writes a file or folder."""

    def __init__(self, folder, roots, keep_out, written):
        self.folder = os.path.abspath(folder)
        self.roots = []  # (root + "/", where in the overlay it maps to, folders kept out inside it + "/")
        outs = [os.path.join(os.path.abspath(p), "") for p in (*keep_out, folder)]
        for root in dict.fromkeys(os.path.join(os.path.abspath(r), "") for r in roots):
            sub = self.folder if not self.roots else os.path.join(self.folder, "_abs", root.strip(os.sep))
            self.roots.append((root, sub, [out for out in outs if out.startswith(root) and out != root]))
        self.written = written
        self.hidden = set()  # originals the script removed or renamed away (still on disk)
        self.present = set()  # originals written into the overlay (reads of others need no look there)
        self.present_dirs = set()  # ... and folders moved or copied there whole
        self.patches = Patches()
        self._guarded = set()
        self._imports = PostImport({"torch.serialization": self._torch, "torch": self._torch})

    # ---- mapping --------------------------------------------------------------------------------
    def target(self, path):
        """(original, overlay) absolute paths for a guarded ``path``, else None. Folders kept out (the
        store, the temporary folder) count only inside a guarded folder: a working directory under /tmp
        is guarded all the same."""
        if type(path) is not str:
            if isinstance(path, int):
                return None
            try:
                path = os.fsdecode(os.fspath(path))
            except (TypeError, ValueError):
                return None
        full = path if path.startswith(os.sep) else os.getcwd() + os.sep + path  # abspath, done cheaply:
        if os.sep + "." in full or os.sep * 2 in full or full.endswith(os.sep):  # open and stat are hot
            full = os.path.normpath(full)
        for root, sub, outs in self.roots:
            if not full.startswith(root):
                continue
            if outs and any((full + os.sep).startswith(out) for out in outs):
                return None
            rel = full[len(root) :]
            if rel.startswith(".") or (os.sep + ".") in rel:
                return None
            return full, os.path.join(sub, rel)
        return None

    def _maybe_written(self, original):
        """Whether the overlay may hold ``original`` (False: it does not, no need to look)."""
        if original in self.present:
            return True
        path = original
        while self.present_dirs:
            parent = os.path.dirname(path)
            if parent == path:
                return False
            if parent in self.present_dirs:
                return True
            path = parent
        return False

    def is_hidden(self, original):
        if not self.hidden:
            return False
        path = original
        while True:
            if path in self.hidden:
                return True
            parent = os.path.dirname(path)
            if parent == path:
                return False
            path = parent

    def _exists(self, original, overlay):
        return _lexists(overlay) or (not self.is_hidden(original) and _lexists(original))

    def _for_write(self, original, overlay, copy):
        """Make ``overlay`` ready to be written: its folder exists; with ``copy``, it starts as the original
        (appending, updating in place)."""
        if not _lexists(overlay):
            self._made(original, overlay)
            if copy and not self.is_hidden(original) and _is(original, stat.S_ISREG):
                shutil.copy2(original, overlay)
            self.written(original)
        self._revive(original)
        return overlay

    def _made(self, original, overlay):
        """``overlay``'s folders exist, and it and they count as written."""
        _makedirs(os.path.dirname(overlay))
        path = original
        while path not in self.present and self.target(path) is not None:
            self.present.add(path)
            path = os.path.dirname(path)

    def _revive(self, original):
        """``original`` exists again (written after being removed): what was under it stays hidden."""
        if original in self.hidden:
            self.hidden.discard(original)
            if _is(original, stat.S_ISDIR):
                self.hidden.update(os.path.join(original, name) for name in os.listdir(original))

    def path_for(self, path, mode):
        """The path to open for ``path`` in ``mode``: the overlay for writes and for what was written."""
        reading = not any(c in mode for c in "wax+")
        if reading and not self.present and not self.present_dirs and not self.hidden:
            return path  # nothing written nor removed yet: the fast way for a script that only reads
        found = self.target(path)
        if found is None:
            return path
        original, overlay = found
        if reading:
            if self._maybe_written(original) and _lexists(overlay):
                return overlay
            if self.is_hidden(original):
                raise _error(errno.ENOENT, path)
            return path
        if "x" in mode and self._exists(original, overlay):
            raise _error(errno.EEXIST, path)
        if "r" in mode and not self._exists(original, overlay):
            raise _error(errno.ENOENT, path)
        return self._for_write(original, overlay, copy="w" not in mode and "x" not in mode)

    # ---- the patched functions --------------------------------------------------------------------
    def open(self, file, mode="r", *args, **kwargs):
        return _REAL["open"](self.path_for(file, mode), mode, *args, **kwargs)

    def os_open(self, path, flags, mode=0o777, *, dir_fd=None):
        if dir_fd is None:
            path = self.path_for(path, _mode_of(flags))
        return _REAL["os.open"](path, flags, mode, dir_fd=dir_fd)

    def _stat(self, real, path, dir_fd, follow_symlinks):
        if dir_fd is None:
            path = self.path_for(path, "r")
        return real(path, dir_fd=dir_fd, follow_symlinks=follow_symlinks)

    def stat(self, path, *, dir_fd=None, follow_symlinks=True):
        return self._stat(_REAL["stat"], path, dir_fd, follow_symlinks)

    def lstat(self, path, *, dir_fd=None):
        return self._stat(_REAL["stat"], path, dir_fd, follow_symlinks=False)

    def mkdir(self, path, mode=0o777, *, dir_fd=None):
        found = None if dir_fd is not None else self.target(path)
        if found is None:
            return _REAL["mkdir"](path, mode, dir_fd=dir_fd)
        original, overlay = found
        if self._exists(original, overlay):
            raise _error(errno.EEXIST, path)
        parent = os.path.dirname(original)
        if not self._exists(parent, os.path.dirname(overlay)) and self.target(parent) is not None:
            raise _error(errno.ENOENT, path)
        self._made(original, overlay)
        _REAL["mkdir"](overlay, mode)
        self.written(original)
        self._revive(original)

    def _move(self, real, src, dst, src_dir_fd=None, dst_dir_fd=None):
        if (src_dir_fd, dst_dir_fd) != (None, None):
            return real(src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)
        source, target = self.target(src), self.target(dst)
        if source is None and target is None:
            return real(src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)
        moving = src if source is None else source[1]
        if source is not None and not _lexists(source[1]):
            if not self._exists(*source):
                raise _error(errno.ENOENT, src)
            moving = None  # an original: copied, and hidden below
        to = dst if target is None else self._for_write(*target, copy=False)
        if moving is None:
            if _is(source[0], stat.S_ISDIR):
                if _lexists(to):
                    _REAL["rmtree"](to)
                shutil.copytree(source[0], to)
            else:
                shutil.copy2(source[0], to)
        else:
            try:
                real(moving, to)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                shutil.move(moving, to)
        if target is not None and _is(to, stat.S_ISDIR):
            self.present_dirs.add(target[0])
        if source is not None and _lexists(source[0]):
            self.hidden.add(source[0])

    def rename(self, src, dst, *, src_dir_fd=None, dst_dir_fd=None):
        self._move(_REAL["rename"], src, dst, src_dir_fd, dst_dir_fd)

    def replace(self, src, dst, *, src_dir_fd=None, dst_dir_fd=None):
        self._move(_REAL["replace"], src, dst, src_dir_fd, dst_dir_fd)

    def _remove(self, real, path, dir_fd, folder):
        found = None if dir_fd is not None else self.target(path)
        if found is None:
            return real(path, dir_fd=dir_fd)
        original, overlay = found
        if _lexists(overlay):
            real(overlay)
        elif not self._exists(original, overlay):
            raise _error(errno.ENOENT, path)
        elif folder and any(
            not self.is_hidden(os.path.join(original, name)) for name in os.listdir(original)
        ):
            raise _error(errno.ENOTEMPTY, path)
        if _lexists(original):
            self.hidden.add(original)

    def remove(self, path, *, dir_fd=None):
        self._remove(_REAL["remove"], path, dir_fd, False)

    def rmdir(self, path, *, dir_fd=None):
        self._remove(_REAL["rmdir"], path, dir_fd, True)

    def rmtree(self, path, *args, **kwargs):
        found = None if kwargs.get("dir_fd") is not None else self.target(path)
        if found is None:
            return _REAL["rmtree"](path, *args, **kwargs)
        original, overlay = found
        if not self._exists(original, overlay):
            return _REAL["rmtree"](path, *args, **kwargs)  # the error (or nothing) rmtree gives
        if _lexists(overlay):
            _REAL["rmtree"](overlay)
        if _lexists(original):
            self.hidden.add(original)

    def _torch(self, module):
        """``torch.save`` (``torch.serialization.save`` before ``torch`` binds it) opens a path it is given
        in C++: map the path first."""
        save = getattr(module, "save", None)
        if save is None or save in self._guarded:
            return

        @functools.wraps(save)
        def guarded_save(obj, f, *args, **kwargs):
            if isinstance(f, (str, bytes, os.PathLike)):
                f = self.path_for(f, "wb")
            return save(obj, f, *args, **kwargs)

        self._guarded.add(guarded_save)
        self.patches.patch(module, "save", guarded_save)

    # ---- installing -----------------------------------------------------------------------------
    def install(self):
        for owner, name, value in [
            (builtins, "open", self.open),
            (io, "open", self.open),
            (os, "open", self.os_open),
            (os, "stat", self.stat),
            (os, "lstat", self.lstat),
            (os, "mkdir", self.mkdir),
            (os, "rename", self.rename),
            (os, "replace", self.replace),
            (os, "remove", self.remove),
            (os, "unlink", self.remove),
            (os, "rmdir", self.rmdir),
            (shutil, "rmtree", self.rmtree),
        ]:
            self.patches.patch(owner, name, value)
        accessor = getattr(pathlib, "_NormalAccessor", None)  # Python 3.10: pathlib keeps its own references
        for name, value in [
            ("open", self.open),
            ("stat", self.stat),
            ("lstat", self.lstat),
            ("mkdir", self.mkdir),
            ("rename", self.rename),
            ("replace", self.replace),
            ("unlink", self.remove),
            ("rmdir", self.rmdir),
        ]:
            if accessor is not None and hasattr(accessor, name):
                self.patches.patch(accessor, name, staticmethod(value))
        self._imports.install()

    def uninstall(self):
        self._imports.uninstall()
        self.patches.undo()
