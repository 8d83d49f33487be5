"""lr_core.retrieval.lucene_impact: the impact index returns exact sparse search's rankings and integer scores; term strings; collections.

Nothing is skipped: a missing Java or pyserini fails. JVM start-ups cost seconds, so the index is a module-scoped fixture.
"""
from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from lr_core.retrieval import lucene_jvm
from lr_core.errors import CacheMismatchError, ConfigError
from lr_core.retrieval.lucene_bm25 import LuceneBM25Searcher, build_bm25_index
from lr_core.retrieval.lucene_impact import (
    LuceneImpactSearcher,
    build_impact_index,
    id_for_term,
    impact_query_string,
    term_for_id,
    write_impact_collection,
)
from lr_core.retrieval.sparse_index import SparseIndex
from lr_core.sparse import quantize_impact

from tests.helpers import leftover_temp_dirs


def test_bm25_searcher_rejects_impact_index(impact_setup):
    with pytest.raises(ConfigError):
        LuceneBM25Searcher(impact_setup["index"])


# --------------------------------------------------------------------------- impact index == exact sparse search

N_DOCS, VOCAB, N_QUERIES, N_DUPS = 2000, 5000, 50, 20


def _synthetic(seed: int = 0):
    """~2,000 random sparse docs over 5,000 tokens (Zipf-like popularity),
    quantised with quantize_impact; token 0 in every doc; 20 exact duplicates
    (score ties); 50 queries with repeated tokens plus two edge cases."""
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, VOCAB + 1) ** 0.8
    p /= p.sum()
    docs: dict[str, dict[int, int]] = {}
    for i in range(N_DOCS - N_DUPS):
        n = int(rng.integers(20, 120))
        toks = rng.choice(VOCAB, size=n, replace=False, p=p)
        w = rng.uniform(0.0, 0.3, size=n)  # -> impacts 0..29 (zeros dropped), many ties
        vec = quantize_impact({int(t): float(x) for t, x in zip(toks, w)})
        vec[0] = int(rng.integers(1, 4))
        docs[f"doc{i:05d}"] = vec
    base = list(docs)
    for j in range(N_DUPS):
        docs[f"dup{j:03d}"] = dict(docs[base[j]])
    queries: dict[str, dict[int, int]] = {}
    for q in range(N_QUERIES):
        n = int(rng.integers(2, 10))
        toks = rng.choice(VOCAB, size=n, replace=False, p=p)
        counts = rng.integers(1, 4, size=n)
        queries[f"q{q:02d}"] = {int(t): int(c) for t, c in zip(toks, counts)}
    queries["q-only-common"] = {0: 2}  # a term in every document (pyserini's min_idf filter would drop it)
    queries["q-unseen"] = {VOCAB + 123: 3}
    queries["q-empty"] = {}
    return docs, queries


@pytest.fixture(scope="module")
def impact_setup(tmp_path_factory):
    docs, queries = _synthetic()
    root = tmp_path_factory.mktemp("impact")
    n = write_impact_collection(docs, root / "collection", docs_per_file=700)
    assert n == len(docs)
    index = build_impact_index(root / "collection", root / "index", threads=2)
    searcher = LuceneImpactSearcher(index)
    yield {"docs": docs, "queries": queries, "root": root, "index": index, "searcher": searcher}
    searcher.close()


def _dot(q: dict[int, int], d: dict[int, int]) -> float:
    return float(sum(c * d.get(t, 0) for t, c in q.items()))


def test_impact_top10_equals_exact_sparse(impact_setup):
    docs, queries, searcher = impact_setup["docs"], impact_setup["queries"], impact_setup["searcher"]
    assert searcher.num_docs == len(docs)
    exact = SparseIndex(list(docs.values()), list(docs), vocab_size=VOCAB + 1000)
    ex_scores, ex_ids = exact.search(list(queries.values()), k=10)
    run = searcher.search(queries, k=10, threads=2)
    assert list(run) == list(queries)
    n_tied = 0
    for (qid, q), sc, ids in zip(queries.items(), ex_scores, ex_ids):
        got = run[qid]
        lucene_scores = list(got.values())
        # same scores, exactly (integers: quantised weight x query count)
        assert lucene_scores == [float(s) for s in sc], qid
        # every Lucene score is the exact dot product of that document
        for did, s in got.items():
            assert s == _dot(q, docs[did]), (qid, did)
        # same documents for every score above the cut-off (a tie at the k-th
        # score may be cut differently); ties may be ordered differently
        if lucene_scores:
            cut = lucene_scores[-1]
            groups_l, groups_e = {}, {}
            for d, s in got.items():
                groups_l.setdefault(s, set()).add(d)
            for d, s in zip(ids, sc):
                groups_e.setdefault(float(s), set()).add(d)
            assert {s: g for s, g in groups_l.items() if s > cut} == {s: g for s, g in groups_e.items() if s > cut}, qid
            assert groups_l[cut] <= {d for d, v in docs.items() if _dot(q, v) == cut}, qid
            n_tied += len(set(lucene_scores)) < len(lucene_scores)
        # Lucene ranks ties by document id ascending
        order = sorted(got.items(), key=lambda kv: (-kv[1], kv[0]))
        assert list(got.items()) == order
    assert run["q-unseen"] == {} and run["q-empty"] == {}
    assert len(run["q-only-common"]) == 10  # a term in every document is kept
    assert n_tied > 0  # the synthetic data does exercise ties


def test_impact_full_ranking_equals_exact(impact_setup):
    """All matching documents (k >= N): identical {doc: score} for every query."""
    docs, queries, searcher = impact_setup["docs"], impact_setup["queries"], impact_setup["searcher"]
    run = searcher.search(queries, k=len(docs) + 5, threads=2)
    for qid, q in queries.items():
        full = {d: _dot(q, v) for d, v in docs.items()}
        assert run[qid] == {d: s for d, s in full.items() if s > 0}, qid


def test_impact_query_forms(impact_setup):
    searcher = impact_setup["searcher"]
    q = {7: 2, 3: 1, 11: 0}
    assert impact_query_string(q) == "t3 t7 t7"
    # pyserini's pretokenized path (TokFreqQueryEncoder): whitespace split + counting
    assert Counter(impact_query_string(q).split()) == {"t3": 1, "t7": 2}
    a = searcher.search({"a": {7: 2, 3: 1}}, k=5)["a"]
    b = searcher.search({"a": {7: 2.0, 3: 1.0, 11: 0}}, k=5)["a"]  # integral floats = counts
    assert a == b
    with pytest.raises(ValueError, match="not an integer"):
        searcher.search({"a": {7: 1.5}}, k=5)
    with pytest.raises(ValueError, match="negative"):
        searcher.search({"a": {7: -1}}, k=5)
    with pytest.raises(ValueError):
        searcher.search({"a": {7: 1}}, k=0)


def test_impact_index_reuse_and_mismatch(impact_setup, tmp_path):
    root, index = impact_setup["root"], impact_setup["index"]
    marker = index / lucene_jvm.MARKER_FILE
    before = marker.stat().st_mtime_ns
    assert build_impact_index(root / "collection", index) == index  # no rebuild
    assert marker.stat().st_mtime_ns == before
    meta = json.loads(marker.read_text())
    assert meta["kind"] == "impact" and meta["num_docs"] == len(impact_setup["docs"])
    other = tmp_path / "other"
    write_impact_collection({"x": {1: 1}}, other)
    with pytest.raises(CacheMismatchError):
        build_impact_index(other, index)
    # collection gone: the complete index is still usable
    assert build_impact_index(tmp_path / "deleted-collection", index) == index


# --------------------------------------------------------------------------- term strings


def test_term_for_id_round_trip_and_safety():
    ids = range(49152)
    terms = [term_for_id(i) for i in ids]
    assert len(set(terms)) == len(terms)
    for i, t in zip(ids, terms):
        assert t and not any(c.isspace() for c in t) and t.isascii() and t == t.lower()
        assert id_for_term(t) == i
    assert term_for_id(np.int64(42)) == "t42"
    for bad in (-1, 1.0, True, "3", None):
        with pytest.raises(ValueError):
            term_for_id(bad)
    for bad in ("t", "t01", "x1", "t-1", "T1", "t1 ", 1):
        with pytest.raises(ValueError):
            id_for_term(bad)


def test_term_strings_survive_the_default_analyzer(tmp_path):
    """Terms made by term_for_id are single, unchanged tokens even under Anserini's
    English analyzer (stemming, stopwords): each one finds exactly its document.
    (The whitespace analyzer of -pretokenized is covered by the impact-equals-exact tests.)"""
    from lr_core.data.beir import Passage

    rng = np.random.default_rng(0)
    ids = sorted({0, 1, 9, 10, 99, 100, 101, 1000, 49151, *rng.integers(0, 49152, 300).tolist()})
    corpus = {f"d{i}": Passage(docid=f"d{i}", title="", text=f"{term_for_id(i)} filler") for i in ids}
    index = build_bm25_index(corpus, tmp_path / "idx", variant="flat")
    run = LuceneBM25Searcher(index).search({f"q{i}": term_for_id(i) for i in ids}, k=3)
    assert {q: list(h) for q, h in run.items()} == {f"q{i}": [f"d{i}"] for i in ids}


# --------------------------------------------------------------------------- collections


def test_write_impact_collection_format(tmp_path):
    docs = [("a", {5: 3, 2: 1, 9: 0}), ("b", {}), ("c", {40000: 2.0})]
    n = write_impact_collection(iter(docs), tmp_path / "c")
    assert n == 2  # "b" has no weight: left out
    files = sorted((tmp_path / "c").iterdir())
    assert [f.name for f in files] == ["docs-00000.jsonl"]
    rows = [json.loads(line) for line in files[0].read_text().splitlines()]
    assert rows == [
        {"id": "a", "contents": "", "vector": {"t2": 1, "t5": 3}},
        {"id": "c", "contents": "", "vector": {"t40000": 2}},
    ]
    assert all(type(v) is int for r in rows for v in r["vector"].values())
    with pytest.raises(ConfigError, match="not empty"):
        write_impact_collection({"z": {1: 1}}, tmp_path / "c")
    assert write_impact_collection({"z": {1: 1}}, tmp_path / "c", overwrite=True) == 1
    assert leftover_temp_dirs(tmp_path, "c") == []


@pytest.mark.parametrize(
    "docs, match",
    [
        ({"a": {1: 0.5}}, "not an integer"),
        ({"a": {1: -2}}, "negative"),
        ({"a": {-1: 2}}, "token id"),
        ([("a", {1: 1}), ("a", {2: 1})], "duplicate"),
        ({"a": {1: 0}}, "nothing to index"),
    ],
)
def test_write_impact_collection_rejects(tmp_path, docs, match):
    with pytest.raises(ValueError, match=match):
        write_impact_collection(docs, tmp_path / "c")
    assert not (tmp_path / "c").exists()
    assert leftover_temp_dirs(tmp_path, "c") == []
