"""Serve-time centring of a trained run's light dense queries, scored on the validation split.

A light query is ``mean_t(v_t)`` of cached token vectors. When all token vectors share one
large component ``c``, every query scores documents by ``c . d`` plus a small query-specific
part, so all queries rank alike. Subtracting a centre from every cache row removes that shared
document prior, and serving stays a lookup and a mean. This measures, without training, how
much of a run's dense quality the shared component hides:

    python -m experiments.analysis.light_query_centring RUN_DIR [--dataset scifact]

Centres tried: none, the mean over the vocabulary, and the mean over the token occurrences of
the training queries (validation queries excluded). Only the validation split is read.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def centred_scores(cache: np.ndarray, query_ids: list[list[int]], docs: np.ndarray, centre: np.ndarray | None):
    """Cosine scores [Q, N] of light queries (mean of ``cache`` rows minus ``centre``) against docs."""
    shift = 0.0 if centre is None else centre
    q = np.stack([cache[ids].mean(axis=0) for ids in query_ids]) - shift
    q /= np.linalg.norm(q, axis=1, keepdims=True) + 1e-12
    return q @ docs.T


def to_run(scores: np.ndarray, qids: list[str], doc_ids: list[str], depth: int = 1000) -> dict:
    top = np.argsort(-scores, axis=1)[:, :depth]
    return {q: {doc_ids[j]: float(scores[i, j]) for j in top[i]} for i, q in enumerate(qids)}


def ndcg_at_10(scores: np.ndarray, qids: list[str], doc_ids: list[str], qrels: dict) -> float:
    from lr_core.retrieval.metrics import evaluate_run

    return evaluate_run(qrels, to_run(scores, qids, doc_ids, 100))["ndcg@10"]


def read_trec(path: Path) -> dict:
    """A TREC run file (``qid Q0 docid rank score tag``) as ``{qid: {docid: score}}``."""
    run: dict = {}
    for line in path.read_text().splitlines():
        qid, _, doc, _, score, _ = line.split()
        run.setdefault(qid, {})[doc] = float(score)
    return run


def main(argv: list[str] | None = None) -> int:
    from lr_core.data.beir import load_beir
    from lr_core.retrieval.tasks import get_task
    from lr_core.retrieval.evaluate import EvalSettings, encoded_corpus_for, load_model_for_eval, vocab_cache_for
    from lr_core.data.mining import load_training_sources

    p = argparse.ArgumentParser(prog="python -m experiments.analysis.light_query_centring", description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir", type=Path)
    p.add_argument("--dataset", default="scifact")
    p.add_argument("--out", type=Path, help="default: RUN_DIR/analysis/light_query_centring.json")
    args = p.parse_args(argv)
    model = load_model_for_eval(args.run_dir)
    data = load_beir(args.dataset, "val")
    cache = vocab_cache_for(model, get_task(args.dataset).instruction).vectors.astype(np.float32)
    corpus = encoded_corpus_for(model, data, EvalSettings(split="val"), sparse=False)
    tok = model.encoder.tokenizer
    qids = list(data.queries)
    ids = tok.light_query_ids([data.queries[q] for q in qids])
    train = load_training_sources(model.module.cfg.data.train, model.module.cfg.data.data_dir)
    train_tokens = np.concatenate([np.asarray(t) for t in tok.light_query_ids([e.query for e in train])])
    centres = {"none": None, "vocabulary_mean": cache.mean(axis=0), "training_token_mean": cache[train_tokens].mean(axis=0)}
    docs, doc_ids = corpus.dense.astype(np.float32), list(corpus.doc_ids)
    scores = {name: centred_scores(cache, ids, docs, c) for name, c in centres.items()}
    result = {"run": str(args.run_dir), "dataset": args.dataset, "split": "val", "num_queries": len(qids),
              "ndcg@10": {name: ndcg_at_10(sc, qids, doc_ids, data.qrels) for name, sc in scores.items()}}
    sparse_trec = args.run_dir / "eval" / args.dataset / "sparse" / "run.trec"
    if sparse_trec.is_file():  # hybrid as lr evaluate fuses it (0.7 dense + 0.3 sparse, min-max), per centre
        from lr_core.retrieval.fusion import fuse
        from lr_core.retrieval.metrics import evaluate_run

        sparse = read_trec(sparse_trec)
        result["hybrid_ndcg@10"] = {name: evaluate_run(data.qrels, fuse(to_run(sc, qids, doc_ids), sparse))["ndcg@10"]
                                    for name, sc in scores.items()}
    out = args.out or args.run_dir / "analysis" / "light_query_centring.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k.endswith("ndcg@10")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
