"""Which process owns a run's side effects, before and after the Trainer exists.

Under data parallelism every rank runs the same code. Exactly one, global rank 0, writes
run files (config, status, done markers), opens the W&B run, evaluates and requeues; the
others only train. Before a Trainer (and its process group) exists the rank is read from
the launcher's environment:

* ``RANK`` (torchrun), ``SLURM_PROCID`` (``srun``; 0 in a one-task job),
* ``LOCAL_RANK`` / ``NODE_RANK`` (processes Lightning's own launcher started: the parent,
  rank 0, has neither set).

Work shared out by rank outside the Trainer (corpus encoding at evaluation,
:func:`lr_core.retrieval.evaluate.encode_corpus_shards_on_ranks`) needs the ranks' number too:
``WORLD_SIZE`` (torchrun) or ``SLURM_STEP_NUM_TASKS`` (set by ``srun`` only, so a shell inside
an ``salloc`` of several tasks is still one rank), and a process group to wait on
(:func:`ensure_process_group`; :func:`any_rank` is the barrier and tells every rank whether one
failed): Lightning's, when training left one, else a gloo group joined here (gloo serves CPU and
GPU ranks alike for a one-number all-reduce).

>>> launch_rank({"SLURM_PROCID": "1"})
1
>>> is_rank_zero({})
True
>>> launch_world_size({"WORLD_SIZE": "4"}), launch_world_size({"SLURM_STEP_NUM_TASKS": "2"}), launch_world_size({})
(4, 2, 1)
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
    if device is None and dist.get_backend() == "nccl":  # NCCL reduces CUDA tensors only
        device = torch.device("cuda", torch.cuda.current_device())
    t = torch.tensor([1 if flag else 0], dtype=torch.int32, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def launch_world_size(env: Mapping[str, str] | None = None) -> int:
    """How many ranks the launcher started (torchrun's ``WORLD_SIZE``, srun's ``SLURM_STEP_NUM_TASKS``), else 1."""
    env = os.environ if env is None else env
    for var in ("WORLD_SIZE", "SLURM_STEP_NUM_TASKS"):
        if env.get(var, "").strip():
            return int(env[var])
    return 1


def local_rank(env: Mapping[str, str] | None = None) -> int:
    """This process's rank on its node (``LOCAL_RANK`` or srun's ``SLURM_LOCALID``; 0 otherwise): its GPU."""
    env = os.environ if env is None else env
    for var in ("LOCAL_RANK", "SLURM_LOCALID"):
        if env.get(var, "").strip():
            return int(env[var])
    return 0


def rank_and_world_size() -> tuple[int, int]:
    """(global rank, number of ranks): the process group's when one exists, else the launcher's."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return launch_rank(), launch_world_size()


def ensure_process_group() -> bool:
    """Join the ranks' process group unless one exists; False with a single rank (nothing to join).

    Under ``srun`` without ``MASTER_ADDR``/``MASTER_PORT`` the address and port are Lightning's
    (first node of the allocation, a port derived from the job id), as training uses them.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size() > 1
    world = launch_world_size()
    if world <= 1:
        return False
    if not os.environ.get("MASTER_ADDR") or not os.environ.get("MASTER_PORT"):
        from lightning.fabric.plugins.environments import SLURMEnvironment

        slurm = SLURMEnvironment()
        os.environ.setdefault("MASTER_ADDR", slurm.main_address)
        os.environ.setdefault("MASTER_PORT", str(slurm.main_port))
    dist.init_process_group("gloo", rank=launch_rank(), world_size=world)
    return True

