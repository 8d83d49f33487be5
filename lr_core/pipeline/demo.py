"""``lr demo``: the suite's main job on SciFact with the default model, sized for a 2-core CPU.

By default (:func:`run_published_demo`) nothing is trained: the published LightRetriever adapter
(``experiments.DEMO_ADAPTERS``, float16 peft directories committed under ``reports/results/``) is
scored beside BM25 (dense, sparse, hybrid, and its own symmetric row: the released recipe trains the
symmetric baseline in the same run), and the CLI then runs the query-side speed comparison on its
cache and corpus encoding. ``lr demo --standalone-symmetric`` adds the standalone symmetric model,
``--untrained`` the untrained backbone.

With ``lr demo --train`` (:func:`run_demo`) both models are trained from scratch first:

1. BM25 (Lucene) on SciFact test, and the untrained backbone (full LLM, dense) as a control;
2. mine BM25 hard negatives on SciFact train and train LightRetriever (joint recipe) and the
   symmetric baseline for ``--steps`` steps each (``experiments/*_scifact.yaml``);
3. build LightRetriever's vocabulary cache, encode the corpus, and evaluate dense / sparse /
   hybrid / symmetric (LightRetriever) and symmetric (baseline) on the 300 test queries;
4. print one comparison table. Every number also lands in a ``metrics.json``.

Everything is resumable: rerunning ``lr demo`` reuses finished training runs, caches and
corpus encodings.
"""
from __future__ import annotations

import json
import time
from pathlib import Path


# CPU-sized demo budget (measured on a 2-core VM; see the README): steps per model and document length.
DEMO_STEPS = 40
DEMO_MAX_DOC_LEN = 64
# The published demo evaluates under bf16 autocast, like the findings grid (evaluate.precision).
DEMO_PRECISION = "bfloat16"


def format_table(records: list[dict]) -> str:
    """A plain-text table of ledger records (nDCG@10 and recall as percentages, like the paper)."""
    wm = max([16, *(len(r["variant"]) + 2 for r in records)])
    wr = max([16, *(len(r["representation"]) + 2 for r in records)])
    head = f"{'model':<{wm}}{'representation':<{wr}}{'nDCG@10':>9}{'R@20':>8}{'R@50':>8}{'R@100':>8}"
    lines = [head, "-" * len(head)]
    for r in records:
        lines.append(f"{r['variant']:<{wm}}{r['representation']:<{wr}}{100 * r['ndcg@10']:>9.1f}"
                     f"{100 * r['recall@20']:>8.1f}{100 * r['recall@50']:>8.1f}{100 * r['recall@100']:>8.1f}")
    return "\n".join(lines)


def _stepper(out: Path, times: dict[str, float]):
    """``step(name, fn)``: run ``fn``, record and print its wall seconds under ``name``."""
    def step(name, fn):
        start = time.perf_counter()
        result = fn()
        times[name] = round(time.perf_counter() - start, 1)
        print(f"[{out.name}] {name}: {times[name]:.0f} s", flush=True)
        return result
    return step


def run_comparison(out: Path, runs: dict[str, tuple[str, list[str]]], steps: int, dataset: str = "scifact",
                   data_dir: str | None = None, batch_size: int = 16,
                   overrides: list[str] | None = None, representations: dict[str, list[str]] | None = None,
                   bm25: bool = False, tag: str | None = None, untrained: bool = False) -> list[dict]:
    """Train every ``label -> (config path, extra overrides)`` for ``steps`` steps on ``dataset``'s
    train split (BM25-mined negatives), evaluate each on the test split, print one table. Every row
    goes through :mod:`lr_core.pipeline.run`, the pipeline each sweep run uses.

    Every model's ``metrics.json`` files go to its own ``<out>/<label>/eval/<dataset>/<representation>/``
    (``bm25``, ``untrained`` and each trained run). ``overrides`` apply to every run (the same budget
    for all); ``representations[label]``
    narrows what is evaluated (default: what the variant declares). Resumable: finished
    runs, caches and corpus encodings are reused. ``tag`` names the summary files
    (``summary-TAG.json``, ``table-TAG.txt``) so several comparisons can share ``out``.
    ``untrained`` adds the control row: the same backbone without training, full LLM on both
    sides (dense only: an untrained LM head gives nearly dense "sparse" vectors).
    """
    from dataclasses import replace

    from lr_core.config import load_config
    from lr_core.io import atomic_write_text
    from lr_core.pipeline.run import EvalPlan, evaluate_run, fit_run

    out.mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}
    records = []
    step = _stepper(out, times)

    mined = out / "mined" / f"{dataset}-train-bm25.jsonl"
    cfgs = {}
    for label, (cfg_path, extra) in runs.items():
        cfg = load_config(Path(cfg_path), [f"run_dir={out / label}", f"trainer.max_steps={steps}",
                                           f"data.train=[{{beir: {dataset}, split: train, depth: 100, n_negatives: 30, "
                                           f"cache: {mined}}}]", *(overrides or []), *extra])
        if data_dir:
            cfg.data.data_dir = data_dir
        cfgs[label] = cfg
    plan = EvalPlan((dataset,), data_dir, batch_size=batch_size)
    first = next(iter(cfgs.values()))
    # the same pipeline as every sweep run: baselines are only evaluated, variants fit then evaluated
    if bm25:
        records += step("bm25", lambda: evaluate_run(replace(first, variant="bm25"), out / "bm25", plan))
    run_dirs = {label: step(f"train {label}", lambda cfg=cfg: fit_run(cfg)) for label, cfg in cfgs.items()}
    if untrained:
        records += step("evaluate untrained", lambda: evaluate_run(
            replace(first, variant="untrained"), out / "untrained", replace(plan, representations=("symmetric",))))
    for label, run_dir in run_dirs.items():  # one model in memory at a time
        reps = (representations or {}).get(label)
        rplan = replace(plan, representations=tuple(reps) if reps else None)
        records += step(f"evaluate {label}", lambda cfg=cfgs[label], run_dir=run_dir, rplan=rplan: evaluate_run(
            cfg, run_dir, rplan))
    table = format_table(records)
    times["total"] = round(sum(times.values()), 1)
    suffix = f"-{tag}" if tag else ""
    atomic_write_text(out / f"summary{suffix}.json", json.dumps({"steps": steps, "dataset": dataset, "overrides": overrides,
                                                         "runs": runs, "seconds": times, "records": records}, indent=2))
    atomic_write_text(out / f"table{suffix}.txt", table + "\n")
    print(table)
    print(f"[{out.name}] total {times['total']:.0f} s; results in {out}")
    return records


def run_published_demo(out: Path, adapters: dict[str, str | Path], dataset: str = "scifact",
                       data_dir: str | None = None, batch_size: int = 16, untrained: bool = False,
                       precision: str = DEMO_PRECISION) -> list[dict]:
    """The default demo: BM25, then every ``label -> published adapter directory`` of ``adapters``
    (:mod:`lr_core.adapters`), each evaluated on ``dataset``'s test split with the adapter's own
    config (document length, instructions). Nothing is trained and nothing is written into the
    adapter directories: caches, corpus encodings and ``metrics.json`` files go to
    ``<out>/<label>/``. ``untrained`` adds the untrained backbone's row (one more corpus encoding,
    about a third more time on 2 cores). ``precision``: the evaluation's autocast (default bf16, as
    the findings grid: 1.8x faster encoding on this CPU). Resumable like :func:`run_comparison`."""
    from dataclasses import replace

    from lr_core.adapters import is_adapter_dir
    from lr_core.config import load_config
    from lr_core.errors import ConfigError
    from lr_core.io import atomic_write_text
    from lr_core.pipeline.run import EvalPlan, evaluate_run
    from lr_core.retrieval.evaluate import load_model_for_eval

    missing = [str(p) for p in adapters.values() if not is_adapter_dir(p)]
    if missing:
        raise ConfigError(f"{missing[0]}: not a published adapter directory (adapter_config.json + config.yaml); "
                          "give --adapter LABEL=DIR, or train from scratch with `lr demo --train`")
    out.mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}
    step = _stepper(out, times)

    cfgs = {label: load_config(Path(path) / "config.yaml") for label, path in adapters.items()}
    plan = EvalPlan((dataset,), data_dir, batch_size=batch_size, precision=precision)
    first = next(iter(cfgs.values()))
    records = step("bm25", lambda: evaluate_run(replace(first, variant="bm25"), out / "bm25", plan))
    if untrained:
        records += step("evaluate untrained", lambda: evaluate_run(
            replace(first, variant="untrained"), out / "untrained", replace(plan, representations=("symmetric",))))
    for label, path in adapters.items():  # one model in memory at a time
        def score(label=label, path=path):
            model = load_model_for_eval(path, work_dir=out / label, device=plan.device, precision=precision)
            return evaluate_run(cfgs[label], out / label, plan, model=model)
        records += step(f"evaluate {label}", score)
    table = format_table(records)
    times["total"] = round(sum(times.values()), 1)
    atomic_write_text(out / "summary.json", json.dumps({"dataset": dataset, "adapters": {k: str(v) for k, v in adapters.items()},
                                                         "seconds": times, "records": records}, indent=2))
    atomic_write_text(out / "table.txt", table + "\n")
    print(table)
    print(f"[{out.name}] total {times['total']:.0f} s; results in {out}")
    return records


def run_demo(out: Path, steps: int, configs: dict[str, str | Path], dataset: str = "scifact",
             data_dir: str | None = None, batch_size: int = 16, overrides: list[str] | None = None,
             max_doc_len: int | None = DEMO_MAX_DOC_LEN) -> list[dict]:
    """The demo: BM25, the untrained backbone, then the ``label -> config`` runs of ``configs``
    (``lr demo``: LightRetriever and the symmetric baseline, ``experiments.DEMO_CONFIGS``).

    ``max_doc_len`` (training and corpus encoding) is the CPU budget's main knob: encoding the
    5,183 SciFact documents dominates the run time and grows linearly with it.
    """
    lengths = [f"data.max_doc_len={max_doc_len}"] if max_doc_len else []
    return run_comparison(out, {v: (str(c), []) for v, c in configs.items()}, steps, dataset, data_dir, batch_size,
                          [*lengths, *(overrides or [])], bm25=True, untrained=True)
