"""Experiment trackers during replay: nothing reaches the recorded run's logdir or runs.

A replay re-runs the script's own tracker calls. TensorBoard writers (``torch.utils.tensorboard`` and
tensorboardX) write their event files into ``REPLAY/tensorboard/<logdir>``; ``wandb.init`` returns W&B's
disabled run (no run is created, ``wandb.log`` does nothing); MLflow logs into a file store in
``REPLAY/mlflow``, whatever tracking URI the script sets. Each is said once, when the script first uses it.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from .files import shown
from .patching import Patches, PostImport

MLFLOW_MODULES = ("mlflow", "mlflow.tracking", "mlflow.tracking._tracking_service.utils")


class Trackers:
    """Patches the trackers as the script imports them; ``uninstall()`` undoes it."""

    def __init__(self, folder, cwd, notify):
        self.folder, self.cwd, self.notify = Path(folder), cwd, notify
        self.patches = Patches()
        self.patch = self.patches.patch
        self._said = set()
        self.hook = PostImport(
            {
                "torch.utils.tensorboard.writer": self._tensorboard,
                "tensorboardX.writer": self._tensorboard,
                "wandb": self._wandb,
                "mlflow": self._mlflow,
            }
        )
        self._environ = {}

    def install(self):
        self.hook.install()

    def uninstall(self):
        self.hook.uninstall()
        self.patches.undo()
        for name, value in self._environ.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    def _once(self, key, message):
        if key not in self._said:
            self._said.add(key)
            self.notify(message)

    def logdir(self, log_dir):
        """Where a writer asked to write into ``log_dir`` writes during replay."""
        full = os.path.abspath(os.path.join(self.cwd, os.fspath(log_dir)))
        rel = os.path.relpath(full, self.cwd)
        if rel.startswith(os.pardir):
            rel = os.path.join("_abs", full.lstrip(os.sep))
        return str(self.folder / "tensorboard" / rel)

    # ---- TensorBoard -----------------------------------------------------------------------------
    def _tensorboard(self, module):
        writer = getattr(module, "FileWriter", None)
        if writer is None:
            return
        init = writer.__init__

        @functools.wraps(init)
        def __init__(w, log_dir, *args, **kwargs):
            moved = self.logdir(log_dir)
            self._once(
                ("tensorboard", moved),
                f"replay: the script's TensorBoard writer for {os.fspath(log_dir)} writes into "
                f"{shown(moved)}, not into its logdir",
            )
            init(w, moved, *args, **kwargs)

        self.patch(writer, "__init__", __init__)

    # ---- W&B -------------------------------------------------------------------------------------
    def _wandb(self, module):
        init = getattr(module, "init", None)
        if init is None:
            return

        @functools.wraps(init)
        def disabled_init(*args, **kwargs):
            self._once("wandb", "replay: wandb.init runs disabled: no W&B run is created or changed")
            kwargs["mode"] = "disabled"
            return init(*args, **kwargs)

        self.patch(module, "init", disabled_init)

    # ---- MLflow ----------------------------------------------------------------------------------
    def _mlflow(self, module):
        import importlib

        utils = importlib.import_module(MLFLOW_MODULES[-1])
        client = getattr(importlib.import_module("mlflow.tracking"), "MlflowClient", None)
        store = (self.folder / "mlflow").absolute().as_uri()
        for name, value in {"MLFLOW_ALLOW_FILE_STORE": "true"}.items():
            self._environ.setdefault(name, os.environ.get(name))
            os.environ[name] = value
        self._environ.setdefault("MLFLOW_TRACKING_URI", os.environ.get("MLFLOW_TRACKING_URI"))
        asked = utils.get_tracking_uri()
        utils.set_tracking_uri(store)
        self._once("mlflow", f"replay: MLflow logs into {store}, not into {asked}")

        def set_tracking_uri(uri):
            self._once(("mlflow", str(uri)), f"replay: MLflow logs into {store}, not into {uri}")

        for name in MLFLOW_MODULES:
            owner = importlib.import_module(name)
            if hasattr(owner, "set_tracking_uri"):
                self.patch(owner, "set_tracking_uri", set_tracking_uri)
        if client is not None:
            init = client.__init__

            @functools.wraps(init)
            def __init__(c, tracking_uri=None, registry_uri=None, *args, **kwargs):
                if tracking_uri is not None:
                    set_tracking_uri(tracking_uri)
                init(c, store, store, *args, **kwargs)

            self.patch(client, "__init__", __init__)
