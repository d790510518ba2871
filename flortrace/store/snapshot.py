"""The snapshot format, for reading and writing alike: a manifest blob names the blobs (or slices of a blob
that packs several) holding a snapshot's out-of-band arrays, followed by the in-band pickle (protocol 5).

Kept apart from the writer (writer.py), so reading a snapshot needs none of the writer's process machinery.
"""

from __future__ import annotations

import json
import pickle

from flortrace.exceptions import CorruptBlob
from flortrace.store import Store

MANIFEST_MAGIC = b"flortrace-snapshot-2\n"
_MANIFEST_V1 = b"flortrace-snapshot-1\n"  # entries (digest, size) only


def load_snapshot(store: Store, manifest: str) -> object:
    """Rebuild a snapshot's payload (arrays writable) from its manifest; CorruptBlob on any damage."""
    data = store.blobs.get(manifest)
    try:
        if not data.startswith((MANIFEST_MAGIC, _MANIFEST_V1)):
            raise ValueError("no manifest header")
        end = data.index(b"\n", len(MANIFEST_MAGIC))
        entries = [_entry(*e) for e in json.loads(data[len(MANIFEST_MAGIC) : end])["buffers"]]
        inband = memoryview(data)[end + 1 :]
    except (ValueError, KeyError, TypeError) as exc:
        raise CorruptBlob(f"blob {manifest} is not a snapshot manifest ({exc})") from None
    blobs, buffers = {}, []
    for digest, nbytes, offset in entries:
        if digest not in blobs:
            blobs[digest] = store.blobs.get(digest, mutable=True)
        blob = blobs[digest]
        if offset is None and len(blob) != nbytes or offset is not None and len(blob) < offset + nbytes:
            raise CorruptBlob(f"blob {digest} of snapshot {manifest} has {len(blob)} bytes, not {nbytes}")
        buffers.append(blob if offset is None else memoryview(blob)[offset : offset + nbytes])
    return pickle.loads(inband, buffers=buffers)


def _entry(digest: str, nbytes: int, offset: int | None = None) -> tuple[str, int, int | None]:
    """A manifest's buffer: a whole blob, or ``nbytes`` from ``offset`` of a blob that packs several."""
    return digest, nbytes, offset


def manifest(entries: list, inband: bytes | bytearray) -> bytes:
    return MANIFEST_MAGIC + json.dumps({"buffers": entries}).encode() + b"\n" + inband
