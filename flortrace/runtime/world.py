"""Whether the script runs under a replay, for ``flortrace.replaying()``.

Kept small on purpose: ``flortrace`` imports it.
"""

from __future__ import annotations

_active = False


def active():
    """True while a replay or the console runs the script (forked children included)."""
    return _active
