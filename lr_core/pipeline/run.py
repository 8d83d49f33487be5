"""The one pipeline of every comparison: baselines, fit, evaluate, per run.

``lr demo`` and ``lr compare`` (:mod:`lr_core.pipeline.demo`), each Slurm array task of a sweep
and ``lr sweep --local`` (:mod:`slurm.task`) all run a row the same way:

* a baseline (``bm25``: Lucene BM25; ``untrained``: the backbone without training, full LLM on
  both sides, dense) trains nothing and is only evaluated;
* a variant is trained (or resumed) by :func:`fit_run`, then :func:`evaluate_run` scores it on
  every data set of the :class:`EvalPlan`, plus the smaller widths of a variant that declares
  ``eval_at_widths`` (MRL). Every record also lands in a ``metrics.json`` under ``<run_dir>/eval*``.

>>> plan = EvalPlan(datasets=("scifact",), batch_size=16)                 # doctest: +SKIP
>>> fit_run(cfg); records = evaluate_run(cfg, cfg.resolved_run_dir, plan)  # doctest: +SKIP
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lr_core.variants import BASELINES

METRICS = ("ndcg@10", "recall@20", "recall@50", "recall@100")


@dataclass(frozen=True)
class EvalPlan:
    """What a run is evaluated on (a sweep spec's ``evaluate`` block; the demo's data set)."""

    datasets: tuple[str, ...]  # data set names (or BEIR directories), each scored on its evaluation split
    data_dir: str | None = None  # where data sets live (None: $LR_DATA_DIR)
    split: str | None = None  # None: each data set's evaluation split; "val": the held-out train queries
    representations: tuple[str, ...] | None = None  # None: what the variant declares (untrained: symmetric)
    device: str = "cpu"  # where the model encodes: cpu, auto or cuda[:N]
    batch_size: int = 16  # documents per forward pass
    mrl_dims: tuple[int, ...] = ()  # smaller dense widths for variants with eval_at_widths (MRL)


def is_baseline(variant: str) -> bool:
    """``bm25`` and ``untrained`` are rows without training."""
    return variant in BASELINES


def fit_run(cfg, callbacks=()) -> Path | None:
    """Train (or resume) ``cfg``'s run and return its directory; a baseline trains nothing (None)."""
    if is_baseline(cfg.variant):
        return None
    from lr_core.train import fit

    return fit(cfg, extra_callbacks=list(callbacks))


def evaluate_run(cfg, run_dir: str | Path, plan: EvalPlan) -> list[dict]:
    """Evaluate a finished run (or a baseline) on every data set of ``plan``; one ledger record per
    data set and representation (MRL widths as ``dense@<dim>``)."""
    from lr_core.retrieval.evaluate import EvalSettings, evaluate, evaluate_bm25, load_model_for_eval

    run_dir = Path(run_dir)
    if cfg.variant == "bm25":
        return [evaluate_bm25(ds, run_dir / "eval", split=plan.split, data_dir=plan.data_dir) for ds in plan.datasets]
    if cfg.variant == "untrained":
        model = load_model_for_eval(backbone=cfg.model.backbone, work_dir=run_dir, max_doc_len=cfg.data.max_doc_len,
                                    device=plan.device)
        reps = plan.representations or ("symmetric",)
    else:
        model = load_model_for_eval(run_dir, device=plan.device)
        reps = plan.representations
    settings = EvalSettings(split=plan.split, representations=tuple(reps) if reps else None,
                            batch_size=plan.batch_size)
    records = []
    for ds in plan.datasets:
        records += evaluate(model, ds, run_dir / "eval", settings, plan.data_dir)
    if model.module is not None and model.module.eval_at_widths:  # e.g. MRL: the same model, smaller widths
        for dim in plan.mrl_dims:
            for ds in plan.datasets:
                records += [{**r, "representation": f"{r['representation']}@{dim}"} for r in
                            evaluate(model, ds, run_dir / f"eval-mrl{dim}",
                                     EvalSettings(split=plan.split, representations=("dense",), mrl_dim=dim,
                                                  batch_size=plan.batch_size), plan.data_dir)]
    return records


def summary_values(records: list[dict]) -> dict[str, float]:
    """``<dataset>/<representation>/<metric>`` -> value: what a run's W&B summary and done file hold."""
    return {f"{r['dataset']}/{r['representation']}/{m}": r[m] for r in records for m in METRICS}
