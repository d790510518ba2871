"""torch's process-wide numeric settings, so that replay computes with the same ones as the recording.

Thread count, deterministic algorithms, cuDNN flags, default dtype and float32 matmul precision. A setting
torch refuses to read (it raises when a script mixes the legacy and new TF32 APIs) is left out on capture
and left alone on apply; a setting is only written when it differs, so apply never trips that check either.
"""

from __future__ import annotations

import sys


def _settings(torch) -> dict:
    """name -> (getter, setter) for every setting kept."""
    cudnn = torch.backends.cudnn
    deterministic = torch.are_deterministic_algorithms_enabled
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled

    def set_cudnn(name):
        return lambda v: setattr(cudnn, name, v)

    return {
        "num_threads": (torch.get_num_threads, torch.set_num_threads),
        "deterministic_algorithms": (
            deterministic,
            lambda v: torch.use_deterministic_algorithms(v, warn_only=warn_only()),
        ),
        "deterministic_warn_only": (
            warn_only,
            lambda v: torch.use_deterministic_algorithms(deterministic(), warn_only=v),
        ),
        "cudnn_deterministic": (lambda: cudnn.deterministic, set_cudnn("deterministic")),
        "cudnn_benchmark": (lambda: cudnn.benchmark, set_cudnn("benchmark")),
        "default_dtype": (
            lambda: str(torch.get_default_dtype()).removeprefix("torch."),
            lambda v: torch.set_default_dtype(getattr(torch, v)),
        ),
        "float32_matmul_precision": (torch.get_float32_matmul_precision, torch.set_float32_matmul_precision),
    }


def capture_torch_settings() -> dict:
    """The settings as plain JSON-able values; empty when torch is not imported."""
    torch = sys.modules.get("torch")
    if torch is None:
        return {}
    settings = {}
    for name, (get, _) in _settings(torch).items():
        try:
            settings[name] = get()
        except RuntimeError:
            continue
    return settings


def apply_torch_settings(settings: dict) -> None:
    """Apply settings from `capture_torch_settings` (importing torch if they name any)."""
    if not settings:
        return
    import torch

    for name, (get, set_) in _settings(torch).items():
        if name not in settings:
            continue
        try:
            current = get()
        except RuntimeError:
            continue
        if current != settings[name]:
            set_(settings[name])
