"""IR evaluation metrics: the one place where the suite scores a run.

All metrics are computed by ``pytrec_eval`` (the trec_eval C code, which is what
BEIR uses), so numbers are comparable with BEIR / MTEB tables.

Conventions (all deliberate, all tested in ``tests/lr_core/test_metrics.py``):

* **Which queries are averaged.**  Only queries that appear in ``qrels`` are
  evaluated; run entries for queries without judgments are ignored.  This is
  what BEIR does: ``GenericDataLoader.load`` keeps only the queries present in
  the qrels file, and ``EvaluateRetrieval.evaluate`` averages over the
  per-query dict returned by ``pytrec_eval``, which contains exactly the
  queries of ``run`` that also appear in ``qrels``.
* **Queries judged but missing from the run count as 0** (``missing_queries=
  "zero"``, the default).  In the BEIR pipeline a run always contains every
  qrels query, because its retrievers start from ``{qid: {} for qid in
  query_ids}`` over the qrels-filtered queries; a query whose result list ends
  up empty is still in the pytrec_eval output and scores 0.  So "average over
  all qrels queries, absent = 0" reproduces BEIR's numbers for the runs BEIR
  produces, and it cannot inflate a score when one of our back ends silently
  drops a query (for example a sparse query with no terms).  Pass
  ``missing_queries="skip"`` to get the raw ``EvaluateRetrieval.evaluate``
  average over qrels ∩ run.
* A query that is in qrels but has only non-positive judgments is kept and
  scores 0 on every metric (pytrec_eval reports it; BEIR averages it).
* ``ignore_identical_ids=True`` (BEIR's default) removes a document from a
  query's list when the document id equals the query id (matters for ArguAna,
  Quora, CQADupStack).  The input run is never modified.
* Relevance: nDCG uses the qrels value itself as the gain (graded, trec_eval
  ``ndcg_cut``: DCG = sum gain / log2(rank + 1), the ideal DCG is computed from
  all judged documents of the query and cut at the same depth).  Recall and MRR
  count a document as relevant when its qrels value is >= 1 (trec_eval
  ``relevance_level`` 1).  MRR@k is trec_eval ``recip_rank`` on the run cut to
  its first k documents (same as BEIR's custom MRR, which uses ``score > 0``).
* **Ties.**  trec_eval ignores the order of the run dict; it sorts each query's
  documents by score descending and breaks ties by document id *descending*
  (string comparison).  MRR's top-k cut below uses the same order, so all
  metrics see the same ranking.  Note this differs from the tie-break used for
  constructing runs in :mod:`lr_core.retrieval.fusion` (doc id ascending), which only
  matters for exactly equal scores.
* Values are fractions in [0, 1] and are not rounded (BEIR rounds to 5
  decimals when it reports).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping

import pytrec_eval

__all__ = ["evaluate_run", "mean_metrics", "per_query_metrics", "read_per_query", "trec_order", "write_per_query"]

# Per-query scores kept beside every metrics.json (paired significance tests in `lr report`).
PER_QUERY_FILE = "per_query.json.gz"
PER_QUERY_METRICS = ("ndcg@10", "recall@20", "recall@100")

logger = logging.getLogger(__name__)

Qrels = Mapping[str, Mapping[str, int]]
Run = Mapping[str, Mapping[str, float]]


def trec_order(doc_scores: Mapping[str, float]) -> list[tuple[str, float]]:
    """Return ``(doc_id, score)`` pairs in the order trec_eval ranks them:
    score descending, then doc id descending."""
    return sorted(doc_scores.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)


def _metric_names(ks_ndcg, ks_recall, k_mrr) -> list[str]:
    names = [f"ndcg@{k}" for k in ks_ndcg] + [f"recall@{k}" for k in ks_recall]
    if k_mrr is not None:
        names.append(f"mrr@{k_mrr}")
    return names


def _check_ks(ks: Iterable[int], what: str) -> tuple[int, ...]:
    out = tuple(int(k) for k in ks)
    for k in out:
        if k < 1:
            raise ValueError(f"{what} cut-offs must be >= 1, got {k}")
    return tuple(sorted(set(out)))


def _clean_qrels(qrels: Qrels) -> dict[str, dict[str, int]]:
    if not qrels:
        raise ValueError("qrels is empty: nothing to evaluate")
    out: dict[str, dict[str, int]] = {}
    for qid, judged in qrels.items():
        row = {}
        for did, rel in judged.items():
            if isinstance(rel, float) and not rel.is_integer():
                raise ValueError(f"qrels value for ({qid}, {did}) is not an integer: {rel}")
            row[str(did)] = int(rel)
        out[str(qid)] = row
    return out


def _clean_run(run: Run, qids: Iterable[str], ignore_identical_ids: bool) -> dict[str, dict[str, float]]:
    """Copy of the run restricted to ``qids`` with float scores and, optionally,
    identical query/doc ids removed."""
    out: dict[str, dict[str, float]] = {}
    for qid in qids:
        if qid not in run:
            continue
        row = {}
        for did, score in run[qid].items():
            did = str(did)
            if ignore_identical_ids and did == qid:
                continue
            s = float(score)
            if math.isnan(s):
                raise ValueError(f"NaN score in run for query {qid!r}, doc {did!r}")
            row[did] = s
        out[qid] = row
    return out


def per_query_metrics(
    qrels: Qrels,
    run: Run,
    ks_ndcg: Iterable[int] = (10, 100),
    ks_recall: Iterable[int] = (20, 50, 100),
    k_mrr: int | None = 10,
    ignore_identical_ids: bool = True,
    missing_queries: str = "zero",
) -> dict[str, dict[str, float]]:
    """Per-query metrics ``{qid: {"ndcg@10": ..., "recall@20": ..., "mrr@10": ...}}``.

    Keys are the qrels queries (``missing_queries="zero"``: a qrels query absent
    from the run gets 0 everywhere) or qrels ∩ run (``"skip"``).  See the module
    docstring for the conventions.
    """
    if missing_queries not in ("zero", "skip"):
        raise ValueError(f"missing_queries must be 'zero' or 'skip', got {missing_queries!r}")
    ks_ndcg = _check_ks(ks_ndcg, "nDCG")
    ks_recall = _check_ks(ks_recall, "recall")
    if k_mrr is not None and int(k_mrr) < 1:
        raise ValueError(f"MRR cut-off must be >= 1, got {k_mrr}")

    q = _clean_qrels(qrels)
    run_str = {str(k): v for k, v in run.items()}
    r = _clean_run(run_str, q.keys(), ignore_identical_ids)

    measures = set()
    if ks_ndcg:
        measures.add("ndcg_cut." + ",".join(map(str, ks_ndcg)))
    if ks_recall:
        measures.add("recall." + ",".join(map(str, ks_recall)))
    # A fresh evaluator per call: old pytrec_eval versions lost cut-offs when an
    # evaluator was reused (cvangysel/pytrec_eval#22).
    raw = pytrec_eval.RelevanceEvaluator(q, measures).evaluate(r) if measures else {qid: {} for qid in r}

    rr = {}
    if k_mrr is not None:
        k_mrr = int(k_mrr)
        cut = {qid: dict(trec_order(docs)[:k_mrr]) for qid, docs in r.items()}
        rr = pytrec_eval.RelevanceEvaluator(q, {"recip_rank"}).evaluate(cut)

    names = _metric_names(ks_ndcg, ks_recall, k_mrr)
    out: dict[str, dict[str, float]] = {}
    missing = []
    for qid in q:
        if qid not in r:
            missing.append(qid)
            if missing_queries == "zero":
                out[qid] = {n: 0.0 for n in names}
            continue
        m = {}
        scores = raw.get(qid, {})
        for k in ks_ndcg:
            m[f"ndcg@{k}"] = float(scores.get(f"ndcg_cut_{k}", 0.0))
        for k in ks_recall:
            m[f"recall@{k}"] = float(scores.get(f"recall_{k}", 0.0))
        if k_mrr is not None:
            m[f"mrr@{k_mrr}"] = float(rr.get(qid, {}).get("recip_rank", 0.0))
        out[qid] = m
    if missing:
        logger.warning(
            "%d of %d judged queries are absent from the run (%s)",
            len(missing),
            len(q),
            "counted as 0" if missing_queries == "zero" else "skipped",
        )
    return out


def evaluate_run(
    qrels: Qrels,
    run: Run,
    ks_ndcg: Iterable[int] = (10, 100),
    ks_recall: Iterable[int] = (20, 50, 100),
    k_mrr: int | None = 10,
    ignore_identical_ids: bool = True,
    missing_queries: str = "zero",
) -> dict:
    """Mean metrics over the evaluated queries, keyed ``ndcg@10``, ``ndcg@100``,
    ``recall@20``, ``recall@50``, ``recall@100``, ``mrr@10`` (fractions 0-1),
    plus ``num_queries`` (how many queries the means are over)."""
    ks_ndcg = _check_ks(ks_ndcg, "nDCG")
    ks_recall = _check_ks(ks_recall, "recall")
    pq = per_query_metrics(
        qrels,
        run,
        ks_ndcg=ks_ndcg,
        ks_recall=ks_recall,
        k_mrr=k_mrr,
        ignore_identical_ids=ignore_identical_ids,
        missing_queries=missing_queries,
    )
    return mean_metrics(pq, _metric_names(ks_ndcg, ks_recall, k_mrr))


def mean_metrics(pq: Mapping[str, Mapping[str, float]], names: Iterable[str] | None = None) -> dict:
    """The means of per-query metrics (what :func:`evaluate_run` returns), plus ``num_queries``."""
    n = len(pq)
    if names is None:
        names = next(iter(pq.values())).keys() if n else ()
    out: dict = {}
    for name in names:
        out[name] = (math.fsum(m[name] for m in pq.values()) / n) if n else 0.0
    out["num_queries"] = n
    return out


def write_per_query(path, pq: Mapping[str, Mapping[str, float]], names: Iterable[str] = PER_QUERY_METRICS):
    """Per-query scores as compact gzipped JSON, atomically::

        {"queries": ["q1", "q2"], "ndcg@10": [0.5, 0.0], "recall@20": [...], "recall@100": [...]}

    (values rounded to 6 decimals; gzip without a timestamp, so equal scores give equal bytes)."""
    import gzip
    import json

    from lr_core.io import atomic_write_bytes

    qids = sorted(pq)
    obj = {"queries": qids}
    for name in names:
        obj[name] = [round(float(pq[q][name]), 6) for q in qids]
    data = gzip.compress(json.dumps(obj, separators=(",", ":")).encode(), mtime=0)
    return atomic_write_bytes(path, data)


def read_per_query(path) -> dict[str, dict[str, float]]:
    """``{metric: {qid: value}}`` from a file written by :func:`write_per_query`; ValueError names the
    file and what is wrong."""
    import gzip
    import json

    try:
        obj = json.loads(gzip.decompress(open(path, "rb").read()).decode())
    except (OSError, EOFError, ValueError) as exc:
        raise ValueError(f"{path}: unreadable per-query scores ({exc})") from exc
    qids = obj.get("queries") if isinstance(obj, dict) else None
    if not isinstance(qids, list):
        raise ValueError(f"{path}: field 'queries' is missing or not a list")
    out = {}
    for name, values in obj.items():
        if name == "queries":
            continue
        if not isinstance(values, list) or len(values) != len(qids):
            raise ValueError(f"{path}: field {name!r} does not have one value per query")
        out[name] = dict(zip(qids, map(float, values)))
    return out
