"""Tests for lr_core.retrieval.search (exact dense and sparse back ends)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import scipy.sparse as sp

from lr_core.retrieval.search import DenseIndex, SparseIndex, run_from_results


def _normed(x):
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _brute_dense(docs, queries, k):
    s = np.asarray(queries, np.float64) @ np.asarray(docs, np.float64).T
    order = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(s, order, 1), order


@pytest.fixture(scope="module")
def dense_data():
    rng = np.random.default_rng(0)
    docs = _normed(rng.standard_normal((500, 32))).astype(np.float32)
    queries = _normed(rng.standard_normal((20, 32))).astype(np.float32)
    ids = [f"doc{i}" for i in range(500)]
    return docs, queries, ids


def test_dense_topk_equals_numpy_brute_force(dense_data):
    docs, queries, ids = dense_data
    index = DenseIndex(docs, ids)
    assert not index.on_gpu and len(index) == 500
    scores, got = index.search(queries, 10)
    ref_s, ref_i = _brute_dense(docs, queries, 10)
    assert scores.shape == (20, 10) and scores.dtype == np.float32
    assert got == [[ids[j] for j in row] for row in ref_i]
    np.testing.assert_allclose(scores, ref_s, atol=1e-5)


def test_dense_k_larger_than_corpus_and_ties():
    docs = np.array([[1, 0], [1, 0], [0, 1]], dtype=np.float32)
    index = DenseIndex(docs, ["b", "a", "c"])
    scores, ids = index.search(np.array([[1, 0]], dtype=np.float32), 10)
    assert scores.shape == (1, 3)
    assert ids == [["b", "a", "c"]]  # equal scores: index position ascending
    with pytest.raises(ValueError):
        index.search(np.zeros((1, 3), np.float32), 1)  # wrong dim
    with pytest.raises(ValueError):
        DenseIndex(docs, ["a", "a", "c"])  # duplicate ids


def test_dense_matryoshka_truncation(dense_data):
    docs, queries, ids = dense_data
    dim = 8
    index = DenseIndex(docs, ids, dim=dim)
    assert index.index_dim == dim and index.dim == dim
    scores, got = index.search(queries, 15)
    # manual: cut to the first 8 coordinates, L2-renormalise both sides
    ref_s, ref_i = _brute_dense(_normed(docs[:, :dim]), _normed(queries[:, :dim]), 15)
    assert got == [[ids[j] for j in row] for row in ref_i]
    np.testing.assert_allclose(scores, ref_s, atol=1e-5)
    # truncation without re-normalisation would give different scores
    raw_s, _ = _brute_dense(docs[:, :dim], queries[:, :dim], 15)
    assert not np.allclose(scores, raw_s, atol=1e-3)
    with pytest.raises(ValueError):
        DenseIndex(docs, ids, dim=33)
    with pytest.raises(ValueError):
        index.search(queries[:, :4], 5)  # queries shorter than the truncation


def test_dense_save_load_roundtrip(dense_data, tmp_path):
    docs, queries, ids = dense_data
    index = DenseIndex(docs, ids, dim=16)
    path = tmp_path / "sub" / "dense.faiss"
    index.save(str(path))
    assert sorted(os.listdir(path.parent)) == ["dense.faiss", "dense.faiss.ids.json"]  # no tmp left
    loaded = DenseIndex.load(str(path))
    assert loaded.doc_ids == ids and loaded.dim == 16 and len(loaded) == 500
    s1, i1 = index.search(queries, 7)
    s2, i2 = loaded.search(queries, 7)
    assert i1 == i2
    np.testing.assert_array_equal(s1, s2)


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


def test_run_from_results():
    run = run_from_results(["q1", "q2"], [np.array([2.0, 1.0]), np.array([])], [["a", "b"], []])
    assert run == {"q1": {"a": 2.0, "b": 1.0}, "q2": {}}
    assert list(run["q1"]) == ["a", "b"]
    with pytest.raises(ValueError):
        run_from_results(["q1"], [[1.0]], [["a"], ["b"]])
    with pytest.raises(ValueError):
        run_from_results(["q", "q"], [[1.0], [1.0]], [["a"], ["b"]])


def test_sparse_index_postings_layout_round_trip(tmp_path):
    """Saved column-major, an index loads holding only the posting lists, searches alike, and its
    row-major matrix is rebuilt only when asked for."""
    import json

    import scipy.sparse as sp

    from lr_core.errors import DataError
    from lr_core.retrieval.search import SparseIndex

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


# --------------------------------------------------------------------------- Faiss on GPUs


def test_faiss_gpu_mode_is_checked_without_a_gpu():
    import numpy as np

    from lr_core.retrieval.search import DenseIndex

    with pytest.raises(ValueError, match="replicate"):
        DenseIndex(np.eye(3, dtype=np.float32), ["a", "b", "c"], gpu_mode="mirror")


@pytest.mark.gpu
@pytest.mark.parametrize("mode, fp16", [("replicate", False), ("shard", False), ("shard", True)])
def test_faiss_gpu_index_matches_the_cpu_one(mode, fp16):
    import numpy as np

    from lr_core.retrieval.search import DenseIndex, l2_normalize

    rng = np.random.default_rng(0)
    docs = l2_normalize(rng.standard_normal((2000, 64)).astype(np.float32))
    queries = l2_normalize(rng.standard_normal((50, 64)).astype(np.float32))
    ids = [f"d{i}" for i in range(len(docs))]
    cpu = DenseIndex(docs, ids, use_gpu=False)
    gpu = DenseIndex(docs, ids, use_gpu=True, gpu_mode=mode, gpu_fp16=fp16)
    assert gpu.on_gpu
    s_cpu, h_cpu = cpu.search(queries, 10)
    s_gpu, h_gpu = gpu.search(queries, 10)
    assert [h[0] for h in h_cpu] == [h[0] for h in h_gpu]
    np.testing.assert_allclose(s_gpu, s_cpu, atol=2e-3 if fp16 else 1e-5)
