"""One result file -> checked DataFrame rows: a ``metrics.json`` ledger record (:func:`record_row`)
or a ``speed.json`` (:func:`speed_rows`). A missing or malformed field raises
:class:`lr_core.errors.DataError` naming the file and the field; :mod:`reports.collect` walks the
directories and skips such files with a warning.

Speed results are ``speed.json`` files (found the same way), in either of two shapes.

1. What ``lr bench speed`` writes (experiments/benchmarks/speed.py): one file, several
   pipelines. Each pipeline becomes one row named "<backbone display name> <pipeline name>"
(``PIPELINE_NAMES``): ``full`` (the whole
   LLM on the query: representation ``symmetric``), ``light_dense``, ``light_sparse`` and
   ``light_hybrid`` (``dense``, ``sparse``, ``hybrid``), and ``a3`` (a trained A3 run's one-layer query
   encoder: ``dense``, variant from ``a3_model``), with ``model.variant``,
   ``model.backbone``, ``N`` queries, the encoded corpus's data set (none for random documents),
   ``machine.device`` / ``torch_threads``, and nDCG@10 from ``fp16_cache_check.float32`` when
   it was run.

2. A flat file for one model and one query set, for timings made any other way:

    {
      "model": "LightRetriever-SmolLM2",   # display name (required)
      "num_queries": 300,                   # queries timed (required, > 0)
      "tokenize_s": 0.05,                   # seconds to tokenize all queries (required)
      "encode_s": 0.01,                     # seconds to encode them (required)
      "search_s": 0.30,                     # seconds to search the index (required)
      "total_s": 0.36,                      # end-to-end seconds (required)
      "qps": 833.3,                         # optional; default num_queries / total_s
      "ndcg@10": 0.61,                      # optional fraction 0-1, quality of the same run
      "variant": "lightretriever",          # optional; with backbone, matches the paper's Table 1
      "backbone": "smollm2-135m-instruct",  # optional
      "dataset": "scifact",                 # optional
      "representation": "hybrid",           # optional
      "device": "cpu, 2 threads"            # optional, free text
    }
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from lr_core.backbone import backbone_display
from lr_core.errors import DataError


METRICS = ("ndcg@10", "recall@20", "recall@50", "recall@100", "mrr@10", "ndcg@100")
REQUIRED_TEXT = ("dataset", "variant", "backbone", "representation")
SPEED_REQUIRED = ("tokenize_s", "encode_s", "search_s", "total_s")
A1_REPRESENTATION = "light_both"
A1_SETTING = "a1_both_light"


def setting_of(variant: str, representation: str) -> str:
    """The experiment a result belongs to. A1 is written two ways: by the ``a1_both_light``
    variant, or by ``lr evaluate --representation light_both`` on a LightRetriever run; both
    serve documents as cached token means, so both are A1."""
    return A1_SETTING if representation == A1_REPRESENTATION else variant


def _number(rec: dict, name: str, path: str, fraction: bool = False, required: bool = False):
    value = rec.get(name)
    if value is None:
        if required:
            raise DataError(f"{path}: field {name!r} is missing")
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise DataError(f"{path}: field {name!r} is not a number ({value!r})")
    if fraction and not 0.0 <= value <= 1.0:
        raise DataError(f"{path}: field {name!r}={value!r} is not a fraction in [0, 1]")
    return float(value)


def _optional_int(settings: dict, name: str, path: str):
    value = settings.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise DataError(f"{path}: field 'settings.{name}' is not an integer ({value!r})")
    return value


def training_steps(metrics_path: Path) -> int | None:
    """The training budget of the run a metrics.json belongs to (``RUN/eval*/<dataset>/<rep>/``):
    ``global_step`` of ``RUN/train_done.json``; None for baselines and evaluation-only outputs."""
    parents = metrics_path.parents
    if len(parents) < 4 or not parents[2].name.startswith("eval"):
        return None
    done = parents[3] / "train_done.json"
    try:
        step = json.loads(done.read_text()).get("global_step") if done.is_file() else None
    except (OSError, ValueError, AttributeError):
        return None
    return step if isinstance(step, int) and not isinstance(step, bool) else None


def record_row(rec: object, source: str) -> dict:
    """One ledger record (a parsed metrics.json) as a DataFrame row; DataError names the bad field."""
    if not isinstance(rec, dict):
        raise DataError(f"{source}: expected a JSON object, found {type(rec).__name__}")
    for name in REQUIRED_TEXT:
        if not isinstance(rec.get(name), str) or not rec[name]:
            raise DataError(f"{source}: field {name!r} is missing or not a string")
    settings = rec.get("settings") or {}
    if not isinstance(settings, dict):
        raise DataError(f"{source}: field 'settings' is not an object")
    row = {"source": source, "split": rec.get("split")}
    row.update({k: rec[k] for k in REQUIRED_TEXT})
    row["setting"] = setting_of(rec["variant"], rec["representation"])
    for m in METRICS:
        row[m] = _number(rec, m, source, fraction=True, required=(m == "ndcg@10"))
    nq = rec.get("num_queries")
    row["num_queries"] = nq if isinstance(nq, int) and not isinstance(nq, bool) else None
    seed = rec.get("seed")  # absent in results written before seeds were recorded: unknown
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise DataError(f"{source}: field 'seed' is not an integer ({seed!r})")
    row["seed"] = seed
    row["per_query"] = None  # set by collect() when per_query.json.gz lies beside the metrics.json
    row["mrl_dim"] = _optional_int(settings, "mrl_dim", source)
    row["sparse_top_k"] = _optional_int(settings, "sparse_top_k", source)
    row["sparse_query_mode"] = settings.get("sparse_query_mode")
    row["fusion"] = settings.get("fusion")
    for k in ("config_hash", "checkpoint_hash", "git_commit", "date"):
        row[k] = rec.get(k)
    return row


# `lr bench speed` pipeline -> the representation it serves. "full" runs the whole LLM on the
# query, i.e. the model used symmetrically.
BENCH_PIPELINES = {"full": "symmetric", "light_dense": "dense", "light_sparse": "sparse", "light_hybrid": "hybrid",
                   "a3": "dense"}
PIPELINE_NAMES = {"full": "full LLM query", "light_dense": "light dense", "light_sparse": "light sparse",
                  "light_hybrid": "light hybrid", "a3": "A3 1-layer query"}  # how the Model column reads


def speed_rows(rec: object, source: str) -> list[dict]:
    """The rows of one speed.json, in either shape (module docstring)."""
    if isinstance(rec, dict) and "pipelines" in rec:
        return bench_speed_rows(rec, source)
    return [speed_row(rec, source)]


def bench_speed_rows(rec: dict, source: str) -> list[dict]:
    """One row per pipeline of an ``lr bench speed`` report."""
    pipelines, model = rec.get("pipelines"), rec.get("model")
    if not isinstance(pipelines, dict) or not pipelines:
        raise DataError(f"{source}: field 'pipelines' is not a non-empty object")
    if not isinstance(model, dict) or not isinstance(model.get("backbone"), str):
        raise DataError(f"{source}: field 'model.backbone' is missing or not a string")
    corpus = rec.get("corpus") if isinstance(rec.get("corpus"), dict) else {}
    dataset = corpus.get("dataset") if corpus.get("kind") == "encoded" else None
    machine = rec.get("machine") if isinstance(rec.get("machine"), dict) else {}
    device = machine.get("device")
    if device and machine.get("torch_threads"):
        device = f"{device}, {machine['torch_threads']} threads"
    check = rec.get("fp16_cache_check")
    quality = check.get("float32", {}) if isinstance(check, dict) and dataset else {}
    rows = []
    for name, timings in pipelines.items():
        if name not in BENCH_PIPELINES or not isinstance(timings, dict):
            raise DataError(f"{source}: unknown pipeline {name!r} (known: {', '.join(BENCH_PIPELINES)})")
        rep = BENCH_PIPELINES[name]
        variant = model.get("variant")
        if name == "a3":  # another model (its own run) timed in the same process on the same queries
            variant = (rec.get("a3_model") or {}).get("variant", "a3_one_layer_query")
        flat = {"model": f"{backbone_display(model['backbone'])} {PIPELINE_NAMES[name]}", "num_queries": rec.get("N"),
                "variant": variant,
                "backbone": model["backbone"], "dataset": dataset, "representation": rep, "device": device,
                "ndcg@10": quality.get(rep), **{k: timings.get(k) for k in (*SPEED_REQUIRED, "qps")}}
        rows.append(speed_row(flat, f"{source} ({name})"))
    return rows


def speed_row(rec: object, source: str) -> dict:
    """One flat speed record (shape 2 in the module docstring) as a DataFrame row."""
    if not isinstance(rec, dict):
        raise DataError(f"{source}: expected a JSON object, found {type(rec).__name__}")
    if not isinstance(rec.get("model"), str) or not rec["model"]:
        raise DataError(f"{source}: field 'model' is missing or not a string")
    nq = rec.get("num_queries")
    if isinstance(nq, bool) or not isinstance(nq, int) or nq <= 0:
        raise DataError(f"{source}: field 'num_queries' must be a positive integer ({nq!r})")
    row = {"source": source, "model": rec["model"], "num_queries": nq}
    for k in SPEED_REQUIRED:
        row[k] = _number(rec, k, source, required=True)
        if row[k] < 0:
            raise DataError(f"{source}: field {k!r} is negative ({row[k]})")
    qps = _number(rec, "qps", source)
    if qps is None:
        if row["total_s"] <= 0:
            raise DataError(f"{source}: field 'total_s' must be > 0 to derive qps")
        qps = nq / row["total_s"]
    row["qps"] = qps
    row["ndcg@10"] = _number(rec, "ndcg@10", source, fraction=True)
    for k in ("variant", "backbone", "dataset", "representation", "device"):
        row[k] = rec.get(k) if isinstance(rec.get(k), str) else None
    return row
