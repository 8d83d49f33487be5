"""Weights & Biases logging: one W&B run per run directory, surviving restarts and requeues.

The W&B run id is created once and kept in ``<run_dir>/wandb_id.txt``, so a resumed or
requeued job continues the *same* W&B run (``resume="allow"``). Without an API key (or with
``WANDB_MODE=offline``) everything is written offline under ``<run_dir>/wandb/`` and can be
uploaded later with ``wandb sync <run_dir>/wandb/offline-run-*``; W&B is never allowed to block
or crash training.

>>> logger = wandb_logger(cfg, run_dir)          # doctest: +SKIP  (a Lightning WandbLogger)

A finished run's evaluation summary goes to the same W&B run through
:mod:`lr_core.retrieval.wandb_summary` (it names data sets and representations, which the core
does not know).
"""
from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path

from lr_core.config import ExperimentConfig
from lr_core.errors import ConfigError
from lr_core.io import atomic_write_text

log = logging.getLogger(__name__)

ID_FILE = "wandb_id.txt"
MODES = ("auto", "online", "offline", "disabled")


def resolve_mode(mode: str) -> str:
    """``auto`` -> ``online`` when an API key is configured (env or ~/.netrc), else ``offline``."""
    if mode not in MODES:
        raise ConfigError(f"wandb.mode must be one of {MODES}, got {mode!r}")
    env = os.environ.get("WANDB_MODE")
    if env in ("offline", "disabled", "dryrun"):
        return "offline" if env == "dryrun" else env
    if mode != "auto":
        return mode
    if os.environ.get("WANDB_API_KEY"):
        return "online"
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        if "api.wandb.ai" in netrc.read_text():
            return "online"
    except OSError:
        pass
    return "offline"


def run_id(run_dir: Path) -> str:
    """The W&B run id of ``run_dir`` (created on first use, then always the same)."""
    path = Path(run_dir) / ID_FILE
    if path.is_file():
        return path.read_text().strip()
    rid = uuid.uuid4().hex[:12]
    atomic_write_text(path, rid + "\n")
    return rid


def init_kwargs(cfg: ExperimentConfig, run_dir: Path) -> dict:
    w = cfg.wandb
    tags = list(dict.fromkeys([*w.tags, f"variant:{cfg.variant}", f"backbone:{cfg.model.backbone}",
                               f"seed:{cfg.trainer.seed}"]))
    kw = {"project": w.project, "group": w.group or None, "job_type": w.job_type, "tags": tags,
          "name": Path(run_dir).name, "id": run_id(run_dir), "resume": "allow", "dir": str(run_dir),
          "mode": resolve_mode(w.mode), "config": cfg.to_dict()}
    if w.entity:
        kw["entity"] = w.entity
    return kw


def wandb_logger(cfg: ExperimentConfig, run_dir: Path):
    """A Lightning ``WandbLogger`` for the run (or ``None`` when disabled)."""
    if not cfg.wandb.enabled or resolve_mode(cfg.wandb.mode) == "disabled":
        return None
    import wandb
    from lightning.pytorch.loggers import WandbLogger

    kw = init_kwargs(cfg, Path(run_dir))
    start_run(kw)  # WandbLogger attaches to the run in progress
    kw["save_dir"] = kw.pop("dir")
    return WandbLogger(log_model=False, **kw)


def start_run(kw: dict):
    """``wandb.init``; when online fails (no network, bad key), fall back to offline rather than
    blocking or crashing the training run."""
    import wandb

    settings = wandb.Settings(init_timeout=60, silent=True)
    if wandb.run is not None and wandb.run.id == kw["id"]:
        return wandb.run
    if wandb.run is not None:
        wandb.finish()
    try:
        return wandb.init(settings=settings, **kw)
    except Exception as exc:
        if kw["mode"] != "online":
            raise
        log.warning("W&B online init failed (%s); logging offline into %s", exc, kw["dir"])
        return wandb.init(settings=settings, **{**kw, "mode": "offline"})
