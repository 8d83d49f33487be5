"""lr_core.retrieval.dense_index: exact Faiss search equals brute force; Matryoshka truncation; save/load; GPU modes.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

from lr_core.retrieval.dense_index import DenseIndex


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


# --------------------------------------------------------------------------- Faiss on GPUs


def test_faiss_gpu_mode_is_checked_without_a_gpu():
    import numpy as np

    from lr_core.retrieval.dense_index import DenseIndex

    with pytest.raises(ValueError, match="replicate"):
        DenseIndex(np.eye(3, dtype=np.float32), ["a", "b", "c"], gpu_mode="mirror")


@pytest.mark.gpu
@pytest.mark.parametrize("mode, fp16", [("replicate", False), ("shard", False), ("shard", True)])
def test_faiss_gpu_index_matches_the_cpu_one(mode, fp16):
    import numpy as np

    from lr_core.retrieval.dense_index import DenseIndex
    from lr_core.retrieval.search import l2_normalize

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
