"""What a finished run leaves in W&B (``log_summary``), so runs compare in the W&B UI.

>>> log_summary(cfg, run_dir, {"scifact/dense/ndcg@10": 0.61})  # doctest: +SKIP

* summary ``<dataset>/<representation>/<metric>`` (fractions 0-1): what ``lr report --wandb`` reads;
* summary ``variant``, ``variant_display``, ``backbone``, ``backbone_display``, ``seed``, ``group``;
* a table ``results`` (``RESULT_COLUMNS``, one row per data set and representation, display names
  from the registries beside the raw names). Every run of a sweep logs it into the same W&B group
  (``wandb.group``, the sweep's name), so the group's workspace shows one table of all its runs.

The run itself (its id kept in ``<run_dir>/wandb_id.txt``, online/offline) is :mod:`lr_core.tracking`'s.
"""
from __future__ import annotations

import logging
from pathlib import Path

from lr_core.config import ExperimentConfig
from lr_core.tracking import init_kwargs, start_run, resolve_mode

log = logging.getLogger(__name__)

RESULTS_TABLE = "results"
RESULT_COLUMNS = ("group", "run", "variant", "variant_display", "backbone", "backbone_display", "seed", "dataset",
                  "dataset_display", "representation", "representation_display", "ndcg@10", "recall@20",
                  "recall@50", "recall@100")


def summary_rows(cfg: ExperimentConfig, run_dir: Path, values: dict) -> list[list]:
    """The rows of the W&B ``results`` table (``RESULT_COLUMNS``) from summary ``values`` keyed
    ``<dataset>/<representation>/<metric>``; other keys are ignored."""
    from lr_core.backbone import backbone_display
    from lr_core.retrieval.tasks import display_name as dataset_display
    from lr_core.retrieval.evaluate import REPRESENTATION_NAMES
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
        run = start_run(init_kwargs(cfg, Path(run_dir)))
        rows = summary_rows(cfg, Path(run_dir), values)
        run.summary.update(values)
        if rows:
            run.summary.update(dict(zip(RESULT_COLUMNS[:7], rows[0][:7])))
            run.log({RESULTS_TABLE: wandb.Table(columns=list(RESULT_COLUMNS), data=rows)})
        wandb.finish()
    except Exception as exc:  # W&B must never lose a finished run's results
        log.warning("W&B summary not logged (%s); metrics.json files are the record", exc)
