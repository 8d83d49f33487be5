"""A small ledger of run directories, written the way `lr evaluate` writes them (test helpers).

Values are chosen so that the expected table text can be worked out by hand: every metric is a
fraction with three decimals, so x 100 with one decimal is exact.
"""
from __future__ import annotations

import json
from pathlib import Path

import yaml

from lr_core.retrieval.metrics import PER_QUERY_FILE, write_per_query

SMOL = "smollm2-135m-instruct"
RECALL = {"recall@20": 0.5, "recall@50": 0.6, "recall@100": 0.7}


def write_metrics(root: Path, dataset: str, variant: str, backbone: str, rep: str, ndcg: float, *,
                  run: str = "run", mrl_dim=None, sparse_top_k=None, recall=None, per_query=None, **extra) -> Path:
    """One metrics.json in the ledger schema (lr_core.retrieval.evaluate.metrics_record) under root/run/eval/...;
    ``per_query`` ({qid: nDCG@10}) also writes per_query.json.gz beside it, as `lr evaluate` does."""
    rec = {"dataset": dataset, "split": "test", "variant": variant, "backbone": backbone, "representation": rep,
           "ndcg@10": ndcg, **(recall or RECALL), "mrr@10": ndcg, "num_queries": 300,
           "timings": {"search_s": 0.5}, "config_hash": "abc", "checkpoint": None, "checkpoint_hash": "-",
           "git_commit": "0" * 40, "date": "2026-11-22T00:00:00+00:00", "instruction": "x",
           "settings": {"mrl_dim": mrl_dim, "sparse_top_k": sparse_top_k, "sparse_query_mode": "counts",
                        "fusion": "linear"}}
    rec.update(extra)
    tag = f"-mrl{mrl_dim}" if mrl_dim else (f"-top{sparse_top_k}" if sparse_top_k else "")
    path = root / run / "eval" / dataset / f"{rep}{tag}" / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rec, indent=2))
    if per_query is not None:
        write_per_query(path.with_name(PER_QUERY_FILE),
                        {q: {"ndcg@10": v, "recall@20": v, "recall@100": v} for q, v in per_query.items()})
    return path


def write_training_log(root: Path, run: str, variant: str, losses: dict[str, list[float]], *, seed=42,
                       batch_size: int = 4, n_negatives: int = 3, mrl_dims=None, steps=None) -> Path:
    """A run directory's config.yaml and logs/metrics.csv as `lr fit` writes them (the columns reports read):
    ``losses`` maps a term (full_dense, light_dense, ...) to its value at each of ``steps`` (default 0, 1, ...)."""
    run_dir = root / run
    (run_dir / "logs").mkdir(parents=True, exist_ok=True)
    cfg = {"variant": variant, "data": {"batch_size": batch_size, "n_negatives": n_negatives},
           "loss": {"mrl_dims": mrl_dims or []}, "trainer": {"seed": seed}}
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg))
    terms = list(losses)
    n = len(next(iter(losses.values())))
    lines = ["epoch,step," + ",".join(f"train/{k}" for k in terms) + ",train/loss,train/lr"]
    for i, step in enumerate(steps if steps is not None else range(n)):
        vals = [losses[k][i] for k in terms]
        lines.append(f"0,{step}," + ",".join(str(v) for v in vals) + f",{sum(vals)},0.0001")
    (run_dir / "logs" / "metrics.csv").write_text("\n".join(lines) + "\n")
    return run_dir


def write_speed(root: Path, name: str, **fields) -> Path:
    path = root / name / "speed.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(fields, indent=2))
    return path


def build_ledger(root: Path) -> Path:
    """Two data sets, BM25, the untrained backbone, the symmetric baseline, LightRetriever with
    every representation, A1 (as a LightRetriever light_both result), A2, A3, KL, MRL prefixes,
    sparse top-k, two speed files, and the training logs of LightRetriever, symmetric and MRL."""
    w = write_metrics
    w(root, "scifact", "bm25", "bm25", "bm25", 0.665, run="bm25", recall={"recall@20": 0.843, "recall@50": 0.886,
                                                                         "recall@100": 0.908})
    w(root, "nfcorpus", "bm25", "bm25", "bm25", 0.325, run="bm25")
    w(root, "scifact", "untrained", SMOL, "dense", 0.081, run="untrained")
    w(root, "scifact", "symmetric", SMOL, "symmetric", 0.612, run="sym", recall={"recall@20": 0.801,
                                                                                   "recall@50": 0.862,
                                                                                   "recall@100": 0.901})
    w(root, "nfcorpus", "symmetric", SMOL, "symmetric", 0.301, run="sym")
    for rep, s, n in (("dense", 0.552, 0.281), ("sparse", 0.571, 0.29), ("hybrid", 0.603, 0.305),
                      ("symmetric", 0.598, 0.299), ("light_both", 0.301, None)):
        kw = {"recall": {"recall@20": 0.79, "recall@50": 0.85, "recall@100": 0.89}} if rep == "hybrid" else {}
        w(root, "scifact", "lightretriever", SMOL, rep, s, run="lr", **kw)
        if n is not None:
            w(root, "nfcorpus", "lightretriever", SMOL, rep, n, run="lr")
    w(root, "scifact", "a2_embedding_query", SMOL, "dense", 0.402, run="a2")
    w(root, "scifact", "a3_one_layer_query", SMOL, "hybrid", 0.55, run="a3")
    for rep, s in (("dense", 0.561), ("sparse", 0.569), ("hybrid", 0.611)):
        w(root, "scifact", "kl", SMOL, rep, s, run="kl")
    for dim, s in ((64, 0.45), (128, 0.5), (256, 0.53)):
        w(root, "scifact", "mrl", SMOL, "dense", s, run="mrl", mrl_dim=dim)
    for k, s in ((16, 0.4), (64, 0.52)):
        w(root, "scifact", "lightretriever", SMOL, "sparse", s, run="lr", sparse_top_k=k)
    # training logs, 60 steps: the last 50 are constant, so the table's means are the values after step 9
    write_training_log(root, "lr", "lightretriever", {"full_dense": [5.0] * 10 + [1.0] * 50,
                                                      "light_dense": [3.0] * 10 + [2.5] * 50,
                                                      "light_sparse": [2.0] * 10 + [1.5] * 50})
    write_training_log(root, "sym", "symmetric", {"full_dense": [4.0] * 10 + [1.75] * 50})
    write_training_log(root, "mrl", "mrl", {"full_dense": [12.0] * 10 + [10.0] * 50,
                                            "light_dense": [12.0] * 10 + [11.5] * 50,
                                            "light_sparse": [2.0] * 60}, mrl_dims=[64, 128, 256])
    write_speed(root, "speed-light", model="LightRetriever-SmolLM2", variant="lightretriever", backbone=SMOL,
                dataset="scifact", representation="hybrid", num_queries=300, tokenize_s=0.05, encode_s=0.01,
                search_s=0.3, total_s=0.36, device="cpu")
    write_speed(root, "speed-full", model="Full-SmolLM2", variant="symmetric", num_queries=300, tokenize_s=0.06,
                encode_s=2.5, search_s=0.3, total_s=2.86, qps=104.9, **{"ndcg@10": 0.612})
    return root


def write_bench_speed(root: Path, name: str = "bench", fp16_check: bool = True, **changes) -> Path:
    """A speed.json shaped like the one `lr bench speed` writes (experiments/benchmarks/speed.py),
    trimmed to what reports read plus a few of the other fields it holds."""
    def timing(tok, enc, search):
        total = tok + enc + search
        return {"tokenize_s": tok, "encode_s": enc, "search_s": search, "total_s": total, "qps": round(64 / total, 2),
                "encode_us_per_query": 1e6 * enc / 64}

    rec = {"benchmark": "speed", "date": "2026-11-22T01:00:00+00:00", "command": "lr bench speed ...",
           "machine": {"cpu_count": 2, "torch_threads": 2, "faiss_threads": 2, "device": "cpu"},
           "model": {"variant": "lightretriever", "backbone": SMOL, "checkpoint": "x.ckpt", "hidden_size": 576},
           "N": 64, "M": 5183, "batch_size": 16, "top_k": 100,
           "corpus": {"kind": "encoded", "dataset": "scifact", "M": 5183},
           "pipelines": {"full": timing(0.02, 3.18, 0.01), "light_dense": timing(0.01, 0.002, 0.008),
                         "light_sparse": timing(0.01, 0.001, 0.05), "light_hybrid": timing(0.02, 0.003, 0.057)},
           "encode_speedup": 1590.0, "qps_speedup": 40.2}
    if fp16_check:
        rec["fp16_cache_check"] = {"float32": {"dense": 0.552, "hybrid": 0.603},
                                   "float16": {"dense": 0.551, "hybrid": 0.603}, "num_queries": 300}
    rec.update(changes)
    path = root / name / "speed.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rec, indent=2))
    return path
