"""Where inference runs: the device name of a setting, and bf16 autocast on CUDA.

Evaluation, corpus encoding and the vocabulary cache all follow the encoder's device
(``RetrievalEncoder.device``), so placing the model is the only switch. ``cpu`` stays the
default everywhere (results on this suite's CPU machines do not move); ``auto`` picks CUDA
when torch sees it.

>>> resolve_device("cpu")
device(type='cpu')
>>> with inference_autocast("cpu"):   # a no-op off CUDA
...     pass
"""
from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from lr_core.errors import ConfigError

if TYPE_CHECKING:
    import torch

DEVICE_CHOICES = ("cpu", "auto", "cuda", "cuda:N")


def resolve_device(name: str | torch.device) -> torch.device:
    """``cpu``, ``auto`` (CUDA when available), ``cuda`` or ``cuda:N``; CUDA without a GPU is an error."""
    import torch

    if isinstance(name, torch.device):
        return name
    text = str(name).strip().lower()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(text)
    except RuntimeError:
        raise ConfigError(f"device {name!r}: expected one of {', '.join(DEVICE_CHOICES)}") from None
    if dev.type not in ("cpu", "cuda"):
        raise ConfigError(f"device {name!r}: expected one of {', '.join(DEVICE_CHOICES)}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r}: torch sees no CUDA device here (use cpu, or auto)")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ConfigError(f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s)")
    return dev


def rank_device(name: str, local_rank: int) -> str:
    """The device one of several ranks on a node evaluates on: a bare ``cuda`` (or ``auto`` where
    CUDA is seen) is the rank's own GPU, ``cuda:<local_rank>``; anything else stays as given.

    >>> rank_device("cpu", 3), rank_device("cuda:0", 3)
    ('cpu', 'cuda:0')
    """
    import torch

    text = str(name).strip().lower()
    if text == "cuda" or (text == "auto" and torch.cuda.is_available()):
        return f"cuda:{local_rank}"
    return str(name)


# Evaluation precision (EvalModel.precision). This module imports torch only when a function runs, so
# the CLI parser and sweep specs take the choices from here without loading torch.
PRECISIONS = ("auto", "bfloat16", "float32")


def inference_autocast(device: str | torch.device, precision: str = "auto"):
    """Inference autocast: ``auto`` is bf16 on CUDA (the paper trains and serves in bf16) and float32
    on the CPU; ``bfloat16`` is bf16 autocast on either (about 2x the matmul throughput of float32
    on a CPU with AVX512-BF16); ``float32`` is no autocast."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    import torch

    dev = torch.device(device) if not isinstance(device, torch.device) else device
    if precision == "bfloat16" or (precision == "auto" and dev.type == "cuda"):
        return torch.autocast(dev.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
