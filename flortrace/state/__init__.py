"""Snapshot and in-place restore of training state.

The runtime captures objects at the end of a block or an epoch (`capture`), sends the capture to the writer
process, and in a replay restores it into the live objects of the re-run script (`restore`), so identities
hold: the optimizer keeps holding the model's parameters, a DataLoader keeps its dataset. `fingerprint` tells
which objects a loop mutates, `capture_rng`/`restore_rng` cover the process-wide generators and
`capture_torch_settings`/`apply_torch_settings` the numeric settings. See kinds.py for what counts as state.
"""

from flortrace.state.base import Captured, RestoreContext, Unsupported
from flortrace.state.capture import capture, capture_all, materialize, nbytes, restore, unbuildable
from flortrace.state.fingerprint import fingerprint
from flortrace.state.kinds import is_state
from flortrace.state.rng import capture_rng, restore_rng
from flortrace.state.torchsettings import apply_torch_settings, capture_torch_settings

__all__ = [
    "Captured",
    "RestoreContext",
    "Unsupported",
    "apply_torch_settings",
    "capture",
    "capture_all",
    "capture_rng",
    "capture_torch_settings",
    "fingerprint",
    "is_state",
    "materialize",
    "nbytes",
    "restore",
    "restore_rng",
    "unbuildable",
]
