"""The one pipeline of every comparison: baselines, fit, evaluate, per run.

``lr demo`` and ``lr compare`` (:mod:`lr_core.pipeline.demo`), each Slurm array task of a sweep
and ``lr sweep --local`` (:mod:`slurm.task`) all run a row the same way:

* a baseline (``bm25``: Lucene BM25; ``untrained``: the backbone without training, full LLM on
  both sides, dense) trains nothing and is only evaluated;
* a variant is trained (or resumed) by :func:`fit_run`, then :func:`evaluate_run` scores it on
  every data set of the :class:`EvalPlan`, plus the smaller widths of a variant that declares
  ``eval_at_widths`` (MRL), plus the plan's document top-k cuts (``sparse_top_ks``) of a run that
  is evaluated as ``sparse`` or ``hybrid``. Every record also lands in a ``metrics.json`` under
  ``<run_dir>/eval*`` (``eval``, ``eval-mrl<dim>``, ``eval-top<k>``).

>>> plan = EvalPlan(datasets=("scifact",), batch_size=16)                 # doctest: +SKIP
>>> fit_run(cfg); records = evaluate_run(cfg, cfg.resolved_run_dir, plan)  # doctest: +SKIP
"""
from __future__ import annotations

from dataclasses import dataclass, replace
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
    cache_batch_size: int | None = None  # vocabulary ids per forward pass building the cache (None: the model's)
    query_batch_size: int = 64  # queries per forward pass (full-LLM queries, A3)
    sparse_top_ks: tuple[int, ...] = ()  # document top-k term cuts for runs evaluated as sparse / hybrid
    precision: str = "auto"  # inference autocast: auto (bf16 on CUDA, float32 on CPU), bfloat16 or float32


def is_baseline(variant: str) -> bool:
    """``bm25`` and ``untrained`` are rows without training."""
    return variant in BASELINES


def fit_run(cfg, callbacks=()) -> Path | None:
    """Train (or resume) ``cfg``'s run and return its directory; a baseline trains nothing (None)."""
    if is_baseline(cfg.variant):
        return None
    from lr_core.train import fit

    return fit(cfg, extra_callbacks=list(callbacks))


def eval_settings(cfg, plan: EvalPlan):
    """What a run (or the ``untrained`` baseline) is evaluated with; under several ranks (torchrun,
    ``srun``) the corpus is encoded in one shard per rank."""
    from lr_core.distributed import launch_world_size
    from lr_core.retrieval.evaluate import EvalSettings

    reps = plan.representations
    if cfg.variant == "untrained":
        reps = reps or ("symmetric",)
    return EvalSettings(split=plan.split, representations=tuple(reps) if reps else None, batch_size=plan.batch_size,
                        cache_batch_size=plan.cache_batch_size, query_batch_size=plan.query_batch_size,
                        num_shards=max(1, launch_world_size()))


def top_k_representations(model, settings) -> tuple[str, ...]:
    """The representations a run is also evaluated as at each document top-k: those of ``sparse``
    and ``hybrid`` it is evaluated as at all (none for a dense-only or full-LLM-query run)."""
    evaluated = settings.representations or model.representations
    return tuple(r for r in ("sparse", "hybrid") if r in evaluated)


def top_k_settings(settings, reps: tuple[str, ...], k: int):
    """``settings`` for the evaluation of ``reps`` with every document cut to its ``k`` largest term
    weights (cut from the run's full corpus encoding, :func:`lr_core.retrieval.evaluate.encoded_corpus_for`)."""
    return replace(settings, representations=reps, sparse_top_k=k)


def eval_model(cfg, run_dir: str | Path, plan: EvalPlan):
    """The model a run (or the ``untrained`` baseline) is evaluated as, on this rank's device."""
    from lr_core.devices import rank_device
    from lr_core.distributed import launch_world_size, local_rank
    from lr_core.retrieval.evaluate import load_model_for_eval

    device = rank_device(plan.device, local_rank()) if launch_world_size() > 1 else plan.device
    if cfg.variant == "untrained":
        return load_model_for_eval(backbone=cfg.model.backbone, work_dir=Path(run_dir),
                                   max_doc_len=cfg.data.max_doc_len, device=device, precision=plan.precision)
    return load_model_for_eval(run_dir, device=device, precision=plan.precision)


def encode_corpora_on_ranks(cfg, run_dir: str | Path, plan: EvalPlan):
    """Every rank: its share of each data set's corpus shards, then a wait for the others; returns
    the loaded model (rank 0 then evaluates it). Nothing for BM25 or a single rank (None)."""
    from lr_core.distributed import launch_rank, launch_world_size
    from lr_core.retrieval.corpus_encoding import rank_shards
    from lr_core.retrieval.evaluate import encode_corpus_shards_on_ranks

    world = launch_world_size()
    if cfg.variant == "bm25" or world <= 1:
        return None
    model = eval_model(cfg, run_dir, plan)
    settings = eval_settings(cfg, plan)
    print(f"lr: rank {launch_rank()} encodes corpus shards {rank_shards(settings.num_shards, launch_rank(), world)} "
          f"of {settings.num_shards}", flush=True)
    encode_corpus_shards_on_ranks(model, plan.datasets, settings, plan.data_dir)  # top-k cuts reuse it
    return model


def evaluate_run(cfg, run_dir: str | Path, plan: EvalPlan, model=None) -> list[dict]:
    """Evaluate a finished run (or a baseline) on every data set of ``plan``; one ledger record per
    data set and representation (MRL widths as ``dense@<dim>``, document top-k cuts as
    ``sparse@top<k>`` / ``hybrid@top<k>``; their metrics.json keep the plain representation and
    record the width / cut in ``settings.mrl_dim`` / ``settings.sparse_top_k``, which reports key
    on). ``model``: the one :func:`encode_corpora_on_ranks` loaded (None: load it here)."""
    from lr_core.retrieval.evaluate import evaluate, evaluate_bm25

    run_dir = Path(run_dir)
    if cfg.variant == "bm25":
        return [evaluate_bm25(ds, run_dir / "eval", split=plan.split, data_dir=plan.data_dir) for ds in plan.datasets]
    model = model or eval_model(cfg, run_dir, plan)
    settings = eval_settings(cfg, plan)
    records = []
    for ds in plan.datasets:
        records += evaluate(model, ds, run_dir / "eval", settings, plan.data_dir)
    if model.module is not None and model.module.eval_at_widths:  # e.g. MRL: the same model, smaller widths
        for dim in plan.mrl_dims:
            for ds in plan.datasets:
                records += [{**r, "representation": f"{r['representation']}@{dim}"} for r in
                            evaluate(model, ds, run_dir / f"eval-mrl{dim}",
                                     replace(settings, representations=("dense",), mrl_dim=dim), plan.data_dir)]
    top_reps = top_k_representations(model, settings)
    for k in plan.sparse_top_ks if top_reps else ():  # e.g. Figure 6: the same encoding, each document cut to k terms
        for ds in plan.datasets:
            records += [{**r, "representation": f"{r['representation']}@top{k}"} for r in
                        evaluate(model, ds, run_dir / f"eval-top{k}", top_k_settings(settings, top_reps, k),
                                 plan.data_dir)]
    return records


def summary_values(records: list[dict]) -> dict[str, float]:
    """``<dataset>/<representation>/<metric>`` -> value: what a run's W&B summary and done file hold."""
    return {f"{r['dataset']}/{r['representation']}/{m}": r[m] for r in records for m in METRICS}
