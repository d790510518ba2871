"""What the script prints, by epoch and block: recorded cheaply, compared on replay as a second signal.

The tap replaces ``write`` on the ``sys.stdout`` and ``sys.stderr`` objects themselves (an instance attribute
shadows the method), so the streams stay the same objects for the script (``isatty``, ``fileno``,
``buffer``, identity). Each write costs one Python call; only the first ``HEAD`` characters of a segment are
kept, with a checksum and the length of all of it.
"""

from __future__ import annotations

import os
import sys
import zlib

HEAD = 4096
STREAMS = ("stdout", "stderr")


class Segment:
    __slots__ = ("parts", "kept", "crc", "nbytes")

    def __init__(self):
        self.parts, self.kept, self.crc, self.nbytes = [], 0, 0, 0

    def add(self, text):
        data = text.encode("utf-8", "surrogateescape")
        self.crc = zlib.crc32(data, self.crc)
        self.nbytes += len(data)
        if self.kept < HEAD:
            self.parts.append(text[: HEAD - self.kept])
            self.kept += len(self.parts[-1])

    @property
    def text(self):
        return "".join(self.parts)


class OutputTap:
    """Collects what is written to stdout and stderr under the key ``where()`` returns (None: not kept)."""

    def __init__(self, where):
        self.where = where
        self.segments: dict[tuple, Segment] = {}
        self._pid = os.getpid()
        self._installed = []

    def install(self):
        for name in STREAMS:
            stream = getattr(sys, name, None)
            space = getattr(stream, "__dict__", None)
            if space is None or "write" in space:
                continue  # no instance dict to hold the tap, or something already replaced write
            original = stream.write

            def write(text, _original=original, _name=name):
                n = _original(text)
                self._take(_name, text)
                return n

            try:
                stream.write = write
            except (AttributeError, TypeError):
                continue
            self._installed.append((stream, write))

    def uninstall(self):
        for stream, write in self._installed:
            if stream.__dict__.get("write") is write:
                del stream.__dict__["write"]
        self._installed = []

    def _take(self, name, text):
        if os.getpid() != self._pid or not isinstance(text, str):
            return
        key = self.where()
        if key is not None:
            segment = self.segments.get((*key, name))
            if segment is None:
                segment = self.segments[(*key, name)] = Segment()
            segment.add(text)

    def pop(self, epoch):
        """{(seq, stream): Segment} written during ``epoch``, forgotten here."""
        keys = [k for k in self.segments if k[0] == epoch]
        return {k[1:]: self.segments.pop(k) for k in keys}
