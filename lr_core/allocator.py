"""glibc malloc settings for CPU torch work, applied once per process by the ``lr`` entry point.

Why: on the CPU, torch frees and re-allocates buffers of the same large sizes every batch (the
sparse head's ``[B x 16, V]`` logit chunks, activations, their gradients). Above glibc's mmap
threshold every such buffer is a fresh ``mmap``: its pages fault in and are zeroed again on each
batch, and ``free`` hands them straight back. Raising the mmap and trim thresholds keeps freed
blocks in the heap for the next batch. Measured on this suite's 2-core VM, encoding 128 SciFact
documents (dense + sparse, bf16): 0.50-0.57M minor page faults -> 0.01-0.03M, 10.7-11.2 -> 12.3-12.8
documents a second (``reports/benchmarks/2026-12-02-malloc.md``).

Set ``LR_MALLOC_TUNING=0`` to keep glibc's defaults. Off glibc (musl, macOS, an allocator put in
with ``LD_PRELOAD`` that ignores ``mallopt``) it does nothing.

>>> from lr_core.allocator import tune_malloc
>>> tune_malloc({"LR_MALLOC_TUNING": "0"})
False
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from collections.abc import Mapping

# glibc's mallopt parameter numbers (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# Blocks under 1 GiB come from the heap; the heap is trimmed only above 2 GiB of free top memory.
MMAP_THRESHOLD = 1 << 30
TRIM_THRESHOLD = (1 << 31) - 1

ENV = "LR_MALLOC_TUNING"


def tune_malloc(env: Mapping[str, str] | None = None) -> bool:
    """Raise glibc's mmap and trim thresholds for this process; ``True`` when glibc took both."""
    env = os.environ if env is None else env
    if env.get(ENV, "1").strip() == "0" or not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c") or "libc.so.6"
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
