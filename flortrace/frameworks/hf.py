"""Hugging Face Transformers: ``Trainer.train`` runs ``Trainer._inner_training_loop``, whose
``for epoch in range(...)`` loop is the epoch loop and whose loop over the epoch's batches is its block."""

PACKAGES = ("transformers.trainer",)

FRESH_EACH_EPOCH = ()
