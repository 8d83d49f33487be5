"""Which process owns a run's side effects, before and after the Trainer exists.

Under data parallelism every rank runs the same code. Exactly one, global rank 0, writes
run files (config, status, done markers), opens the W&B run, evaluates and requeues; the
others only train. Before a Trainer (and its process group) exists the rank is read from
the launcher's environment:

* ``RANK`` (torchrun), ``SLURM_PROCID`` (``srun``; 0 in a one-task job),
* ``LOCAL_RANK`` / ``NODE_RANK`` (processes Lightning's own launcher started: the parent,
  rank 0, has neither set).

>>> launch_rank({"SLURM_PROCID": "1"})
1
>>> is_rank_zero({})
True
"""
from __future__ import annotations

import os
from collections.abc import Mapping


def launch_rank(env: Mapping[str, str] | None = None) -> int:
    """This process's global rank as the launcher announced it (0 when nothing says otherwise).

    ``LOCAL_RANK``/``NODE_RANK`` alone cannot give the global number (devices per node are
    unknown here), so a process with either non-zero reports 1: "not rank zero".
    """
    env = os.environ if env is None else env
    for var in ("RANK", "SLURM_PROCID"):
        if env.get(var, "").strip():
            return int(env[var])
    if int(env.get("LOCAL_RANK", "0") or 0) or int(env.get("NODE_RANK", "0") or 0):
        return 1
    return 0


def is_rank_zero(env: Mapping[str, str] | None = None) -> bool:
    """Whether this process owns the run's side effects."""
    return launch_rank(env) == 0


def any_rank(flag: bool, device=None) -> bool:
    """True on every rank when ``flag`` is true on at least one (an all-reduce; local without DDP)."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return bool(flag)
    t = torch.tensor([1 if flag else 0], dtype=torch.int32, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())
