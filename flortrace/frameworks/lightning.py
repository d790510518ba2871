"""PyTorch Lightning: ``Trainer.fit`` runs ``FitLoop.run``, whose ``while not self.done`` loop runs one epoch
per iteration (``fit_loop.advance`` -> the training epoch loop, then validation)."""

PACKAGES = ("lightning.pytorch.loops", "pytorch_lightning.loops")

FRESH_EACH_EPOCH = tuple(
    f"{top}.{module}"
    for top in ("lightning.pytorch", "pytorch_lightning")
    for module in ("loops.fetchers", "utilities.combined_loader")  # the data fetcher, the CombinedLoader
)
