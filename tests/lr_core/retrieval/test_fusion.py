"""Tests for lr_core.retrieval.fusion (min-max linear fusion and RRF)."""

from __future__ import annotations

import math

import pytest

from lr_core.retrieval.fusion import fuse, fuse_linear, fuse_rrf, minmax_normalize, rank_items

EPS = 1e-8


def test_minmax_normalize_values_and_eps():
    n = minmax_normalize({"a": 3.0, "b": 2.0, "c": 1.0})
    assert n["a"] == pytest.approx(2 / (2 + EPS)) and n["a"] < 1.0  # eps in the denominator
    assert n["b"] == pytest.approx(0.5, abs=1e-8)
    assert n["c"] == 0.0
    # all-equal scores: denominator is eps only, everything maps to 0, no NaN
    assert minmax_normalize({"a": 2.0, "b": 2.0}) == {"a": 0.0, "b": 0.0}
    assert minmax_normalize({"a": 7.0}) == {"a": 0.0}
    assert minmax_normalize({}) == {}
    with pytest.raises(ValueError):
        minmax_normalize({"a": float("nan")})


def test_linear_union_and_missing_docs():
    dense = {"q": {"a": 3.0, "b": 2.0, "c": 1.0}}  # normalised: a 1, b .5, c 0
    sparse = {"q": {"b": 10.0, "d": 5.0, "e": 0.0}}  # normalised: b 1, d .5, e 0
    out = fuse_linear(dense, sparse)
    # a: .7*1 ; b: .7*.5 + .3*1 ; d: .3*.5 ; c, e: 0 (tie -> doc id ascending)
    assert list(out["q"]) == ["a", "b", "d", "c", "e"]
    assert out["q"]["a"] == pytest.approx(0.7, abs=1e-6)
    assert out["q"]["b"] == pytest.approx(0.65, abs=1e-6)
    assert out["q"]["d"] == pytest.approx(0.15, abs=1e-6)
    assert out["q"]["c"] == 0.0 and out["q"]["e"] == 0.0


def test_linear_weights_are_used():
    dense = {"q": {"a": 1.0, "b": 0.0}}
    sparse = {"q": {"b": 1.0, "a": 0.0}}
    assert list(fuse_linear(dense, sparse)["q"]) == ["a", "b"]  # 0.7 vs 0.3
    assert list(fuse_linear(dense, sparse, w_dense=0.2, w_sparse=0.8)["q"]) == ["b", "a"]


def test_linear_truncates_each_system_before_normalising():
    dense = {"q": {"a": 10.0, "b": 5.0, "c": 0.0}}
    sparse = {"q": {"c": 1.0, "b": 0.5, "a": 0.0}}
    out = fuse_linear(dense, sparse, top_k=2)
    # dense keeps {a, b} -> a 1, b 0 ; sparse keeps {c, b} -> c 1, b 0
    assert out["q"] == pytest.approx({"a": 0.7, "c": 0.3}, abs=1e-6)
    assert len(out["q"]) == 2
    # without truncation b would have had dense 0.5
    assert fuse_linear(dense, sparse)["q"]["b"] == pytest.approx(0.7 * 0.5 + 0.3 * 0.5, abs=1e-6)


def test_linear_query_present_in_one_system_only():
    dense = {"q1": {"a": 2.0, "b": 1.0}, "q2": {"x": 4.0, "y": 2.0}}
    sparse = {"q1": {"a": 1.0, "c": 3.0}, "q3": {"z": 5.0, "w": 1.0}, "q2": {}}
    out = fuse_linear(dense, sparse)
    assert set(out) == {"q1", "q2", "q3"}
    assert out["q2"] == pytest.approx({"x": 0.7, "y": 0.0}, abs=1e-6)  # sparse list empty
    assert out["q3"] == pytest.approx({"z": 0.3, "w": 0.0}, abs=1e-6)  # absent from dense
    assert list(out["q3"]) == ["z", "w"]


def test_linear_all_equal_scores_and_ties():
    dense = {"q": {"b": 1.0, "a": 1.0}}  # all equal -> 0
    sparse = {"q": {"c": 2.0, "d": 2.0}}
    out = fuse_linear(dense, sparse)
    assert all(v == 0.0 and math.isfinite(v) for v in out["q"].values())
    assert list(out["q"]) == ["a", "b", "c", "d"]  # full tie -> doc id ascending
    # exact tie in the fused score at the top_k boundary: smaller doc id kept
    dense = {"q": {"b": 1.0, "a": 0.0}}
    sparse = {"q": {"a": 1.0, "b": 0.0}}
    out = fuse_linear(dense, sparse, w_dense=0.5, w_sparse=0.5, top_k=1)
    assert list(out["q"]) == ["a"]


def test_linear_rejects_non_finite():
    with pytest.raises(ValueError):
        fuse_linear({"q": {"a": float("inf")}}, {"q": {"a": 1.0}})


def test_rank_items_order():
    assert rank_items({"b": 1.0, "a": 1.0, "c": 2.0}) == [("c", 2.0), ("a", 1.0), ("b", 1.0)]
    assert rank_items({"b": 1.0, "a": 1.0, "c": 2.0}, top_k=2) == [("c", 2.0), ("a", 1.0)]


def test_rrf_ranks_start_at_one():
    r1 = {"q": {"a": 0.9, "b": 0.5, "c": 0.1}}
    r2 = {"q": {"c": 7.0, "a": 3.0}}
    out = fuse_rrf([r1, r2], k=60)
    assert out["q"]["a"] == pytest.approx(1 / 61 + 1 / 62)
    assert out["q"]["c"] == pytest.approx(1 / 63 + 1 / 61)
    assert out["q"]["b"] == pytest.approx(1 / 62)
    assert list(out["q"]) == ["a", "c", "b"]
    # raw score scale does not matter, only ranks
    r2_scaled = {"q": {"c": 7000.0, "a": -3.0}}
    assert fuse_rrf([r1, r2_scaled]) == out


def test_rrf_ties_and_truncation_and_missing_query():
    # input ties: doc id ascending gets the better rank
    out = fuse_rrf([{"q": {"y": 1.0, "x": 1.0}}], k=60)
    assert out["q"] == pytest.approx({"x": 1 / 61, "y": 1 / 62})
    # each input list is cut to top_k before ranking
    out = fuse_rrf([{"q": {"a": 3.0, "b": 2.0, "c": 1.0}}, {"q": {"c": 1.0}}], top_k=2)
    assert out["q"] == pytest.approx({"a": 1 / 61, "c": 1 / 61})
    assert list(out["q"]) == ["a", "c"]
    # query only in one run; empty list in the other
    out = fuse_rrf([{"q1": {"a": 1.0}}, {"q2": {"b": 1.0}, "q1": {}}])
    assert out == {"q1": {"a": 1 / 61}, "q2": {"b": 1 / 61}}
    with pytest.raises(ValueError):
        fuse_rrf([])
    with pytest.raises(TypeError):
        fuse_rrf({"q": {"a": 1.0}})


def test_dispatcher():
    dense = {"q": {"a": 3.0, "b": 2.0}}
    sparse = {"q": {"b": 1.0, "c": 0.5}}
    assert fuse(dense, sparse) == fuse_linear(dense, sparse)
    assert fuse(dense, sparse, method="linear", w_dense=0.5, w_sparse=0.5) == fuse_linear(
        dense, sparse, w_dense=0.5, w_sparse=0.5
    )
    assert fuse(dense, sparse, method="rrf", k=10) == fuse_rrf([dense, sparse], k=10)
    with pytest.raises(ValueError, match="unknown fusion method 'max'"):
        fuse(dense, sparse, method="max")


@pytest.mark.parametrize("seed", range(20))
def test_array_fusion_gives_fuse_linear_numbers(seed):
    """The query server's fast path: same documents, order and scores as fuse_linear, ties included."""
    import numpy as np

    from lr_core.retrieval.fusion import fuse_linear_arrays

    rng = np.random.default_rng(seed)
    doc_ids = [f"d{rng.integers(0, 10**6)}-{i}" for i in range(60)]
    rank = np.empty(60, dtype=np.int64)
    rank[np.argsort(np.asarray(doc_ids, dtype=str))] = np.arange(60)
    lists = []
    for n in (int(rng.integers(0, 25)), int(rng.integers(0, 25))):
        pos = rng.choice(60, size=n, replace=False)
        scores = rng.integers(0, 5, size=n).astype(np.float32) / 4 if seed % 2 else rng.standard_normal(n).astype(np.float32)
        lists.append((pos, scores))
    (dp, ds), (sp_, ss) = lists
    expect = fuse_linear({"q": {doc_ids[p]: float(s) for p, s in zip(dp, ds)}},
                         {"q": {doc_ids[p]: float(s) for p, s in zip(sp_, ss)}}, w_dense=0.7, w_sparse=0.3, top_k=1000)
    pos, fused = fuse_linear_arrays(dp, ds, sp_, ss, rank, 0.7, 0.3)
    assert [(doc_ids[p], s) for p, s in zip(pos, fused.tolist())] == list(expect.get("q", {}).items())
    for k in (1, 3, 10):  # top-k selected before sorting: the same first k, ties included
        pos, fused = fuse_linear_arrays(dp[::-1], ds[::-1], sp_, ss, rank, 0.7, 0.3, k=k)
        assert [(doc_ids[p], s) for p, s in zip(pos, fused.tolist())] == list(expect.get("q", {}).items())[:k]
