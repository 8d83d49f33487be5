"""Weights & Biases logging: one W&B run per run directory, surviving restarts and requeues.

The W&B run id is created once and kept in ``<run_dir>/wandb_id.txt``, so a resumed or
requeued job continues the *same* W&B run (``resume="allow"``). Without an API key (or with
``WANDB_MODE=offline``) everything is written offline under ``<run_dir>/wandb/`` and can be
uploaded later with ``wandb sync <run_dir>/wandb/offline-run-*``; W&B is never allowed to block
or crash training.

>>> logger = wandb_logger(cfg, run_dir)          # doctest: +SKIP  (a Lightning WandbLogger)
>>> log_summary(cfg, run_dir, {"scifact/dense/ndcg@10": 0.61})  # doctest: +SKIP

What a finished sweep run leaves in W&B (``log_summary``), so runs compare in the W&B UI:

* summary ``<dataset>/<representation>/<metric>`` (fractions 0-1): what ``lr report --wandb`` reads;
* summary ``variant``, ``variant_display``, ``backbone``, ``backbone_display``, ``seed``, ``group``;
* a table ``results`` (``RESULT_COLUMNS``, one row per data set and representation, display names
  from the registries beside the raw names). Every run of a sweep logs it into the same W&B group
  (``wandb.group``, the sweep's name), so the group's workspace shows one table of all its runs.
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
RESULTS_TABLE = "results"
RESULT_COLUMNS = ("group", "run", "variant", "variant_display", "backbone", "backbone_display", "seed", "dataset",
                  "dataset_display", "representation", "representation_display", "ndcg@10", "recall@20",
                  "recall@50", "recall@100")
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


def _init_kwargs(cfg: ExperimentConfig, run_dir: Path) -> dict:
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

    kw = _init_kwargs(cfg, Path(run_dir))
    _start_run(kw)  # WandbLogger attaches to the run in progress
    kw["save_dir"] = kw.pop("dir")
    return WandbLogger(log_model=False, **kw)


def _start_run(kw: dict):
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


def summary_rows(cfg: ExperimentConfig, run_dir: Path, values: dict) -> list[list]:
    """The rows of the W&B ``results`` table (``RESULT_COLUMNS``) from summary ``values`` keyed
    ``<dataset>/<representation>/<metric>``; other keys are ignored."""
    from lr_core.backbone import backbone_display
    from lr_core.benchmarks import display_name as dataset_display
    from lr_core.evaluate import REPRESENTATION_NAMES
    from lr_core.variants import display_name as variant_display

    metrics = RESULT_COLUMNS[-4:]
    grouped: dict[tuple[str, str], dict] = {}
    for key, value in values.items():
        parts = key.split("/")
        if len(parts) == 3 and parts[2] in metrics:
            grouped.setdefault((parts[0], parts[1]), {})[parts[2]] = value
    seed = None if cfg.variant in ("bm25", "untrained") else cfg.trainer.seed
    head = [cfg.wandb.group or None, Path(run_dir).name, cfg.variant, variant_display(cfg.variant),
            cfg.model.backbone, backbone_display(cfg.model.backbone), seed]
    return [head + [ds, dataset_display(ds), rep, REPRESENTATION_NAMES.get(rep, rep), *(m.get(k) for k in metrics)]
            for (ds, rep), m in sorted(grouped.items())]


def log_summary(cfg: ExperimentConfig, run_dir: Path, values: dict) -> None:
    """Put final metrics in the run's W&B summary (re-attaching to the same run id) and finish it."""
    if not cfg.wandb.enabled or resolve_mode(cfg.wandb.mode) == "disabled":
        return
    import wandb

    try:
        run = _start_run(_init_kwargs(cfg, Path(run_dir)))
        rows = summary_rows(cfg, Path(run_dir), values)
        run.summary.update(values)
        if rows:
            run.summary.update(dict(zip(RESULT_COLUMNS[:7], rows[0][:7])))
            run.log({RESULTS_TABLE: wandb.Table(columns=list(RESULT_COLUMNS), data=rows)})
        wandb.finish()
    except Exception as exc:  # W&B must never lose a finished run's results
        log.warning("W&B summary not logged (%s); metrics.json files are the record", exc)
