"""lr_core.retrieval.sparse_index: exact sparse search equals brute force; top-k terms; save/load; postings layout.
"""
from __future__ import annotations

import os

import numpy as np
import pytest
import scipy.sparse as sp

from lr_core.retrieval.dense_index import DenseIndex
from lr_core.retrieval.sparse_index import SparseIndex


# ----------------------------------------------------------------------------- sparse


@pytest.fixture(scope="module")
def sparse_data():
    rng = np.random.default_rng(1)
    n_docs, vocab = 300, 200
    docs = []
    for _ in range(n_docs):
        terms = rng.choice(vocab, size=int(rng.integers(1, 30)), replace=False)
        docs.append({int(t): float(w) for t, w in zip(terms, rng.uniform(0.01, 3.0, terms.size))})
    queries = []
    for _ in range(25):
        terms = rng.choice(vocab, size=int(rng.integers(1, 6)))  # repeats -> counts
        q: dict[int, float] = {}
        for t in terms:
            q[int(t)] = q.get(int(t), 0) + 1
        queries.append(q)
    ids = [f"d{i}" for i in range(n_docs)]
    return docs, queries, ids, vocab


def _dense_matrix(vectors, vocab):
    m = np.zeros((len(vectors), vocab), dtype=np.float64)
    for i, v in enumerate(vectors):
        for t, w in v.items():
            m[i, t] = w
    return m


def _brute_sparse(doc_mat, q_vec, k):
    s = doc_mat @ q_vec
    cand = np.flatnonzero(s > 0)
    order = cand[np.lexsort((cand, -s[cand]))][:k]
    return s[order], order


def test_sparse_equals_numpy_brute_force(sparse_data):
    docs, queries, ids, vocab = sparse_data
    index = SparseIndex(docs, ids, vocab)
    dm = _dense_matrix(docs, vocab)
    qm = _dense_matrix(queries, vocab)
    scores, got = index.search(queries, 10, batch_size=7)  # several batches
    assert len(scores) == len(got) == len(queries)
    n_short = 0
    for i in range(len(queries)):
        ref_s, ref_i = _brute_sparse(dm, qm[i], 10)
        assert got[i] == [ids[j] for j in ref_i], i
        np.testing.assert_allclose(scores[i], ref_s, rtol=1e-5)
        n_short += len(ref_i) < 10
    assert n_short < len(queries)  # most queries fill k


def test_sparse_empty_query_ties_and_validation():
    docs = [{1: 1.0, 2: 1.0}, {1: 1.0}, {3: 2.0}, {}]
    index = SparseIndex(docs, ["w", "x", "y", "z"], vocab_size=5)
    scores, ids = index.search([{}, {4: 1}, {1: 1}, {1: 1, 2: 0}], 5)
    assert ids[0] == [] and len(scores[0]) == 0  # no terms
    assert ids[1] == []  # term present in no document
    assert ids[2] == ["w", "x"]  # tie 1.0 vs 1.0 -> index order
    assert ids[3] == ["w", "x"]  # zero weight ignored
    with pytest.raises(ValueError):
        index.search([{5: 1}], 3)  # token id outside the vocabulary
    with pytest.raises(ValueError):
        SparseIndex([{7: 1.0}], ["a"], vocab_size=5)


def test_sparse_top_k_terms_keeps_exactly_k(sparse_data):
    docs, _, ids, vocab = sparse_data
    k = 5
    index = SparseIndex(docs, ids, vocab, top_k_terms=k)
    nnz = np.diff(index.matrix.indptr)
    assert (nnz == np.minimum([len(d) for d in docs], k)).all()
    assert (nnz == k).sum() > 0 and (nnz < k).sum() > 0
    for i, d in enumerate(docs):
        row = index.matrix.getrow(i)
        expect = sorted(d.items(), key=lambda tw: (-tw[1], tw[0]))[:k]
        assert sorted(row.indices.tolist()) == sorted(t for t, _ in expect)
        np.testing.assert_allclose(sorted(row.data), sorted(w for _, w in expect), rtol=1e-6)
    # ties broken by the smaller token id
    tie = SparseIndex([{5: 1.0, 3: 1.0, 7: 1.0, 9: 2.0}], ["a"], 10, top_k_terms=2)
    assert tie.matrix.indices.tolist() == [3, 9]
    # "largest" is signed (the order map must handle negative float bits)
    neg = SparseIndex([{1: -5.0, 2: 0.5, 3: -0.1, 4: -0.2}], ["a"], 10, top_k_terms=2)
    assert neg.matrix.indices.tolist() == [2, 3]
    # the same via from_csr
    m = sp.csr_matrix(_dense_matrix(docs, vocab))
    via_csr = SparseIndex.from_csr(m, ids, top_k_terms=k)
    assert (via_csr.matrix != index.matrix).nnz == 0


def test_sparse_save_load_roundtrip(sparse_data, tmp_path):
    docs, queries, ids, vocab = sparse_data
    index = SparseIndex(docs, ids, vocab, top_k_terms=8)
    path = tmp_path / "sparse.npz"
    index.save(str(path))
    assert sorted(os.listdir(tmp_path)) == ["sparse.npz", "sparse.npz.ids.json"]
    loaded = SparseIndex.load(str(path))
    assert loaded.doc_ids == ids and loaded.vocab_size == vocab and loaded.top_k_terms == 8
    assert (loaded.matrix != index.matrix).nnz == 0
    s1, i1 = index.search(queries, 10)
    s2, i2 = loaded.search(queries, 10)
    assert i1 == i2
    for a, b in zip(s1, s2):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError):
        DenseIndex.load(str(path))  # wrong kind


def test_sparse_index_postings_layout_round_trip(tmp_path):
    """Saved column-major, an index loads holding only the posting lists, searches alike, and its
    row-major matrix is rebuilt only when asked for."""
    import json

    import scipy.sparse as sp

    from lr_core.errors import DataError
    from lr_core.retrieval.sparse_index import SparseIndex

    rng = np.random.default_rng(3)
    m = sp.random(40, 300, density=0.05, format="csr", dtype=np.float32, random_state=rng)
    m.data[:] = rng.uniform(0.1, 2.0, size=m.nnz).astype(np.float32)
    index = SparseIndex.from_csr(m, [f"d{i}" for i in range(40)])
    queries = [{int(t): 1.0 for t in rng.choice(300, size=4, replace=False)} for _ in range(6)]
    want = index.search(queries, 7)
    index.save(str(tmp_path / "rows.npz"))
    index.save(str(tmp_path / "post.npz"), layout="postings")
    for name in ("rows.npz", "post.npz"):
        loaded = SparseIndex.load(str(tmp_path / name))
        got = loaded.search(queries, 7)
        assert got[1] == want[1] and all(np.array_equal(a, b) for a, b in zip(got[0], want[0]))
    post = SparseIndex.load(str(tmp_path / "post.npz"))
    assert post._rows is None and post.ntotal == 40 and post.vocab_size == 300
    post.search(queries, 3)
    assert post._rows is None  # searching never needs the rows
    assert (post.matrix != index.matrix).nnz == 0
    meta = json.loads((tmp_path / "post.npz.ids.json").read_text())
    meta["layout"] = "rows"
    (tmp_path / "post.npz.ids.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match="layout"):
        SparseIndex.load(str(tmp_path / "post.npz"))
