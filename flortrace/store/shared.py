"""Shared memory that snapshots are captured into, so the writer process reads their bytes where they lie.

A capture copies each large array once, into an ``Arena`` (memory shared with the writer process through
file descriptors of ``memfd`` files); a snapshot then travels as a small pickle that points into it, and no
array is copied again on the training thread or sent through a socket. Arenas are kept and reused, so their
pages are already mapped when the next capture copies into them (fresh memory is several times slower to
write than memory touched before).

Safety is structural: an arena is reused only when no array handed out from it is alive in this process
and the writer has finished every job that points into it. Each array's memory is held by a ``_Lease``
whose release is counted; an array still referenced (a snapshot kept for later) keeps its arena from being
reused, and allocations go to another arena.
"""

from __future__ import annotations

import mmap
import os
import sys
import tempfile

ALIGN = 64  # bytes: each allocation starts on a cache line
MIN_SEGMENT = 1 << 20


class Segment:
    """One shared file of ``size`` bytes mapped here; ``fd`` stays open until the writer has its copy."""

    def __init__(self, ident: int, size: int):
        self.ident, self.size = ident, size
        self.fd = _shared_file(size)
        try:
            self.map = mmap.mmap(self.fd, size, flags=mmap.MAP_SHARED)
        except BaseException:
            os.close(self.fd)
            raise
        np = sys.modules["numpy"]
        self.base = np.frombuffer(self.map, dtype=np.uint8).ctypes.data

    def close_fd(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _shared_file(size: int) -> int:
    """A descriptor of an anonymous file of ``size`` bytes that another process can map (memfd on Linux,
    an unlinked temporary file elsewhere)."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("flortrace-snapshot", os.MFD_CLOEXEC)
    else:
        folder = "/dev/shm" if os.path.isdir("/dev/shm") else None
        fd, path = tempfile.mkstemp(prefix="flortrace-snapshot-", dir=folder)
        os.unlink(path)
    try:
        os.ftruncate(fd, size)
    except BaseException:
        os.close(fd)
        raise
    return fd


class _Lease:
    """The memory of one allocation, as numpy sees it; its end is counted by its arena."""

    __slots__ = ("__array_interface__", "arena", "segment")

    def __init__(self, arena: Arena, segment: Segment, offset: int, nbytes: int):
        self.arena, self.segment = arena, segment  # the segment keeps the mapping alive
        self.__array_interface__ = {
            "shape": (nbytes,),
            "typestr": "|u1",
            "data": (segment.base + offset, False),
            "version": 3,
        }
        arena.live += 1

    def __del__(self):
        self.arena.live -= 1


class Arena:
    """Segments allocated from in order (a bump pointer); reset as a whole once nothing uses it."""

    def __init__(self):
        self.segments: list[Segment] = []
        self.used = 0  # bytes used in the last segment
        self.filled = 0  # bytes handed out since the last reset
        self.live = 0  # arrays handed out and still alive
        self.jobs: set[int] = set()  # writer jobs that read from it

    @property
    def size(self) -> int:
        return sum(s.size for s in self.segments)

    def free(self) -> bool:
        return self.live == 0 and not self.jobs

    def alloc(self, nbytes: int, new_segment) -> object:
        """A writable uint8 array of ``nbytes`` in this arena; ``new_segment(size)`` adds room."""
        start = -(-self.used // ALIGN) * ALIGN
        if not self.segments or start + nbytes > self.segments[-1].size:
            self.segments.append(new_segment(max(nbytes, self.size, MIN_SEGMENT)))
            start = 0
        self.used = start + nbytes
        self.filled += nbytes
        np = sys.modules["numpy"]
        return np.asarray(_Lease(self, self.segments[-1], start, nbytes))


class Arenas:
    """The arenas of one writer: allocations for the snapshot being assembled go to one free arena; a
    snapshot handed to the writer ties up the arenas it points into until the writer is done with it."""

    def __init__(self):
        self.arenas: list[Arena] = []
        self.current: Arena | None = None
        self.unsent: list[Segment] = []  # segments the writer process has not received yet
        self.retired: list[int] = []  # segments it may unmap
        self.peak = 0  # the most bytes one snapshot used
        self._next = 0

    def alloc(self, nbytes: int):
        if self.current is None:
            self.current = self._reuse()
        return self.current.alloc(nbytes, self._segment)

    def _reuse(self) -> Arena:
        for arena in self.arenas:
            if arena.free():
                if len(arena.segments) > 1:  # it grew in pieces: one segment of the whole size from now on
                    for segment in arena.segments:
                        self._retire(segment)
                    arena.segments = []
                arena.used = arena.filled = 0
                return arena
        arena = Arena()
        self.arenas.append(arena)
        return arena

    def _segment(self, size: int) -> Segment:
        size = max(size, self.peak)
        size = -(-size // MIN_SEGMENT) * MIN_SEGMENT
        segment = Segment(self._next, size)
        self._next += 1
        self.unsent.append(segment)
        return segment

    def _retire(self, segment: Segment) -> None:
        if segment in self.unsent:
            self.unsent.remove(segment)
            segment.close_fd()
        else:
            self.retired.append(segment.ident)

    def seal(self) -> None:
        """The snapshot being assembled is complete: later allocations go to another arena."""
        if self.current is not None:
            self.peak = max(self.peak, self.current.filled)
        self.current = None

    def find(self, address: int, nbytes: int) -> tuple[Arena, int, int] | None:
        """(arena, segment id, offset) of memory handed out by these arenas, or None."""
        for arena in self.arenas:
            for segment in arena.segments:
                offset = address - segment.base
                if 0 <= offset and offset + nbytes <= segment.size:
                    return arena, segment.ident, offset
        return None

    def close(self) -> None:
        """Forget every arena (arrays still alive keep their memory mapped until they go)."""
        for segment in self.unsent:
            segment.close_fd()
        self.arenas, self.current, self.unsent, self.retired = [], None, [], []

    def take_unsent(self) -> list[Segment]:
        out, self.unsent = self.unsent, []
        return out

    def take_retired(self) -> list[int]:
        out, self.retired = self.retired, []
        return out

    def done(self, job: int) -> None:
        for arena in self.arenas:
            arena.jobs.discard(job)
