"""Training frameworks whose epoch loops live in their own packages, in site-packages.

Their training-loop modules are instrumented like the project's (an implicit ``include``), so the loop
over epochs that ``Trainer.fit`` or ``Trainer.train`` runs is found as the epoch loop. What is specific to
each framework is in a module named for it.
"""

from . import hf, lightning

PACKAGES = (*lightning.PACKAGES, *hf.PACKAGES)

# Iterators a framework's epoch loop builds anew from its data loaders at the start of every epoch: at an
# epoch's end their position is read by nothing, so they are kept by name like a logger, not refused.
FRESH_EACH_EPOCH = (*lightning.FRESH_EACH_EPOCH, *hf.FRESH_EACH_EPOCH)
