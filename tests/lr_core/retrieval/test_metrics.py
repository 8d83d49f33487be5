"""Tests for lr_core.retrieval.metrics (pytrec_eval wrapper, BEIR conventions)."""

from __future__ import annotations

import copy
import csv
import math
import random
from pathlib import Path

import pytest

from lr_core.retrieval.metrics import (PER_QUERY_FILE, evaluate_run, mean_metrics, per_query_metrics, read_per_query,
                             trec_order, write_per_query)


LOG2_3 = math.log2(3)

# ----------------------------------------------------------------------------- toy data
# q1: graded.  Judgments A=2, B=1, C=0.  Run order: X (unjudged), B, A, C.
#   DCG@10  = 0/log2(2) + 1/log2(3) + 2/log2(4) + 0/log2(5) = 1/log2(3) + 1
#   IDCG@10 = ideal order A(2), B(1), C(0): 2/log2(2) + 1/log2(3) = 2 + 1/log2(3)
#   nDCG@10 = (1 + 1/log2 3) / (2 + 1/log2 3) = 1.630930 / 2.630930 = 0.619906
#   recall@k (k >= 4): relevant = {A, B} (C has score 0), both retrieved -> 1.0
#   MRR@10: first relevant (B) at rank 2 -> 0.5
# q2: binary.  Judgments E=1, F=1.  Run: 11 unjudged docs, then E at rank 12; F never.
#   nDCG@10 = 0 (nothing relevant in top 10); MRR@10 = 0 (rank 12 > 10)
#   nDCG@100 = (1/log2(13)) / (1/log2(2) + 1/log2(3))
#   recall@20 = recall@50 = recall@100 = 1/2
# q3: judged (G=1) but absent from the run -> 0 everywhere (default), excluded with "skip".
# u1: in the run but not judged -> never evaluated.
QRELS = {
    "q1": {"A": 2, "B": 1, "C": 0},
    "q2": {"E": 1, "F": 1},
    "q3": {"G": 1},
}
RUN = {
    "q1": {"X": 4.0, "B": 3.0, "A": 2.0, "C": 1.0},
    "q2": {**{f"n{i:02d}": 100.0 - i for i in range(11)}, "E": 50.0},
    "u1": {"A": 1.0, "G": 0.5},
}
Q1_NDCG10 = (1 + 1 / LOG2_3) / (2 + 1 / LOG2_3)
Q2_NDCG100 = (1 / math.log2(13)) / (1 + 1 / LOG2_3)


def test_toy_per_query_hand_computed():
    pq = per_query_metrics(QRELS, RUN)
    assert set(pq) == {"q1", "q2", "q3"}  # u1 (unjudged) excluded, q3 (missing) kept
    assert pq["q1"]["ndcg@10"] == pytest.approx(Q1_NDCG10, abs=1e-12)
    assert pq["q1"]["ndcg@10"] == pytest.approx(0.619906, abs=1e-6)
    assert pq["q1"]["ndcg@100"] == pytest.approx(Q1_NDCG10, abs=1e-12)
    assert pq["q1"]["recall@20"] == 1.0
    assert pq["q1"]["mrr@10"] == 0.5
    assert pq["q2"]["ndcg@10"] == 0.0
    assert pq["q2"]["ndcg@100"] == pytest.approx(Q2_NDCG100, abs=1e-12)
    assert pq["q2"]["recall@20"] == 0.5
    assert pq["q2"]["recall@100"] == 0.5
    assert pq["q2"]["mrr@10"] == 0.0
    assert all(v == 0.0 for v in pq["q3"].values())


def test_toy_averages_over_all_judged_queries():
    m = evaluate_run(QRELS, RUN)
    assert set(m) == {"ndcg@10", "ndcg@100", "recall@20", "recall@50", "recall@100", "mrr@10", "num_queries"}
    assert m["num_queries"] == 3
    assert m["ndcg@10"] == pytest.approx((Q1_NDCG10 + 0 + 0) / 3, abs=1e-12)
    assert m["ndcg@100"] == pytest.approx((Q1_NDCG10 + Q2_NDCG100 + 0) / 3, abs=1e-12)
    assert m["recall@20"] == pytest.approx((1 + 0.5 + 0) / 3, abs=1e-12)
    assert m["recall@50"] == pytest.approx(0.5, abs=1e-12)
    assert m["mrr@10"] == pytest.approx(0.5 / 3, abs=1e-12)


def test_skip_mode_matches_raw_beir_evaluate_average():
    # BEIR's EvaluateRetrieval.evaluate averages over pytrec_eval's output, i.e.
    # qrels ∩ run queries.  "skip" reproduces that; q3 (missing) drops out.
    m = evaluate_run(QRELS, RUN, missing_queries="skip")
    assert m["num_queries"] == 2
    assert m["ndcg@10"] == pytest.approx(Q1_NDCG10 / 2, abs=1e-12)
    assert m["mrr@10"] == pytest.approx(0.25, abs=1e-12)
    with pytest.raises(ValueError):
        evaluate_run(QRELS, RUN, missing_queries="bogus")


def test_unjudged_queries_do_not_change_scores():
    run2 = dict(RUN)
    run2["u2"] = {"A": 9.0}
    assert evaluate_run(QRELS, run2) == evaluate_run(QRELS, RUN)
    # and a run containing only unjudged queries scores 0 over the judged ones
    m = evaluate_run(QRELS, {"u1": {"A": 1.0}})
    assert m["num_queries"] == 3 and m["ndcg@10"] == 0.0


def test_empty_result_list_counts_as_zero():
    m = evaluate_run({"q": {"a": 1}, "r": {"b": 1}}, {"q": {}, "r": {"b": 1.0}})
    assert m["num_queries"] == 2 and m["ndcg@10"] == 0.5
    # pytrec_eval (and so BEIR) keeps a present-but-empty list even in "skip" mode
    m = evaluate_run({"q": {"a": 1}, "r": {"b": 1}}, {"q": {}, "r": {"b": 1.0}}, missing_queries="skip")
    assert m["num_queries"] == 2 and m["ndcg@10"] == 0.5
    # ... also when identical-id removal empties the list
    m = evaluate_run({"q": {"a": 1}}, {"q": {"q": 1.0}}, missing_queries="skip")
    assert m["num_queries"] == 1 and m["ndcg@10"] == 0.0


def test_identical_ids_removed_by_default():
    qrels = {"q1": {"d1": 1}}
    run = {"q1": {"q1": 10.0, "d1": 5.0}}
    before = copy.deepcopy(run)
    on = evaluate_run(qrels, run)
    assert on["mrr@10"] == 1.0 and on["ndcg@10"] == 1.0
    off = evaluate_run(qrels, run, ignore_identical_ids=False)
    assert off["mrr@10"] == 0.5
    assert off["ndcg@10"] == pytest.approx(1 / LOG2_3)
    assert run == before  # input not mutated (BEIR mutates; we do not)


def test_ties_broken_by_doc_id_descending_like_trec_eval():
    qrels = {"q": {"a": 1}}
    # equal scores: trec_eval ranks "b" before "a" whatever the dict order
    for run in ({"q": {"a": 1.0, "b": 1.0}}, {"q": {"b": 1.0, "a": 1.0}}):
        m = evaluate_run(qrels, run)
        assert m["mrr@10"] == 0.5
        assert m["ndcg@10"] == pytest.approx(1 / LOG2_3)
    assert [d for d, _ in trec_order({"a": 1.0, "c": 2.0, "b": 1.0})] == ["c", "b", "a"]


def test_mrr_cut_uses_trec_order_at_the_boundary():
    # 10 ties at score 1 ranked by doc id desc: z9..z0 then "a" (rel) at rank 11
    qrels = {"q": {"a": 1}}
    run = {"q": {**{f"z{i}": 1.0 for i in range(10)}, "a": 1.0}}
    assert evaluate_run(qrels, run)["mrr@10"] == 0.0
    assert evaluate_run(qrels, run, k_mrr=11)["mrr@11"] == pytest.approx(1 / 11)


def test_custom_cutoffs_and_validation():
    m = evaluate_run(QRELS, RUN, ks_ndcg=(3,), ks_recall=(1,), k_mrr=None)
    assert set(m) == {"ndcg@3", "recall@1", "num_queries"}
    with pytest.raises(ValueError):
        evaluate_run({}, RUN)
    with pytest.raises(ValueError):
        evaluate_run(QRELS, RUN, ks_ndcg=(0,))
    with pytest.raises(ValueError):
        evaluate_run({"q": {"a": 1.5}}, {"q": {"a": 1.0}})


# ----------------------------------------------------------------------------- Cranfield


def _read_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f, delimiter="\t")
        header = next(reader)
        assert header == ["query-id", "corpus-id", "score"]
        for qid, did, score in reader:
            qrels.setdefault(qid, {})[did] = int(score)
    return qrels


def _ref_metrics(judged: dict[str, int], ranked: list[str], k_ndcg=10, k_rec=(20, 50, 100), k_mrr=10):
    """Independent textbook implementation: gain = grade, discount log2(rank+1),
    ideal DCG from all judgments cut at k; relevant = grade >= 1."""
    dcg = sum(judged.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k_ndcg]))
    ideal = sorted(judged.values(), reverse=True)[:k_ndcg]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    out = {"ndcg@10": dcg / idcg if idcg > 0 else 0.0}
    rel = {d for d, g in judged.items() if g >= 1}
    for k in k_rec:
        out[f"recall@{k}"] = len(rel.intersection(ranked[:k])) / len(rel) if rel else 0.0
    out["mrr@10"] = 0.0
    for i, d in enumerate(ranked[:k_mrr]):
        if d in rel:
            out["mrr@10"] = 1.0 / (i + 1)
            break
    return out


def test_cranfield_graded_qrels_match_reference_implementation(shared_data):
    qrels = _read_qrels(shared_data / "cranfield" / "qrels" / "test.tsv")
    assert len(qrels) == 225
    grades = {g for row in qrels.values() for g in row.values()}
    assert {0, 1, 2, 3, 4} <= grades  # really graded

    rnd = random.Random(1234)
    all_docs = [str(i) for i in range(1, 1401)]
    qids = sorted(qrels, key=int)
    dropped = set(qids[::20])  # judged queries missing from the run
    run: dict[str, dict[str, float]] = {}
    for qid in qids:
        if qid in dropped:
            continue
        judged = list(qrels[qid])
        cand = set(rnd.sample(judged, max(1, len(judged) // 2))) | set(rnd.sample(all_docs, 80))
        cand.add(qid)  # the doc whose id equals the query id must be ignored
        run[qid] = {d: rnd.random() for d in cand}  # distinct scores: no ties
    run["99999"] = {"1": 1.0}  # unjudged query

    expect: dict[str, dict[str, float]] = {}
    for qid in qids:
        ranked = []
        if qid in run:
            ranked = [d for d, _ in sorted(run[qid].items(), key=lambda kv: -kv[1]) if d != qid]
        expect[qid] = _ref_metrics(qrels[qid], ranked)

    pq = per_query_metrics(qrels, run)
    assert set(pq) == set(qids)
    for qid in qids:
        for name, val in expect[qid].items():
            assert pq[qid][name] == pytest.approx(val, abs=1e-12), (qid, name)

    m = evaluate_run(qrels, run)
    assert m["num_queries"] == 225
    for name in ("ndcg@10", "recall@20", "recall@50", "recall@100", "mrr@10"):
        ref = math.fsum(e[name] for e in expect.values()) / len(qids)
        assert m[name] == pytest.approx(ref, abs=1e-12), name
    assert 0.0 < m["ndcg@10"] < 1.0


def test_per_query_file_round_trip_is_compact_and_deterministic(tmp_path):
    pq = {"q2": {"ndcg@10": 0.5, "recall@20": 1.0, "recall@100": 1.0, "mrr@10": 0.5},
          "q1": {"ndcg@10": 1 / 3, "recall@20": 0.0, "recall@100": 0.5, "mrr@10": 0.0}}
    a, b = tmp_path / "a" / PER_QUERY_FILE, tmp_path / "b" / PER_QUERY_FILE
    write_per_query(a, pq)
    write_per_query(b, dict(reversed(list(pq.items()))))
    assert a.read_bytes() == b.read_bytes()  # sorted queries, no gzip timestamp
    back = read_per_query(a)
    assert back == {"ndcg@10": {"q1": 0.333333, "q2": 0.5}, "recall@20": {"q1": 0.0, "q2": 1.0},
                    "recall@100": {"q1": 0.5, "q2": 1.0}}
    assert mean_metrics(pq)["ndcg@10"] == pytest.approx((0.5 + 1 / 3) / 2) and mean_metrics(pq)["num_queries"] == 2
    (tmp_path / "bad.gz").write_bytes(b"not gzip")
    with pytest.raises(ValueError, match="bad.gz: unreadable per-query scores"):
        read_per_query(tmp_path / "bad.gz")


def test_evaluate_run_is_the_mean_of_the_per_query_metrics():
    qrels = {"q1": {"d1": 1}, "q2": {"d2": 1}}
    run = {"q1": {"d1": 2.0, "d3": 1.0}, "q2": {"d3": 2.0, "d2": 1.0}}
    assert evaluate_run(qrels, run) == mean_metrics(per_query_metrics(qrels, run))
