"""Sharded, resumable corpus encoding."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lr_core.data.beir import Passage
from lr_core.retrieval.corpus_encoding import encode_corpus, merge_shards, shard_path, shard_ranges
from lr_core.errors import CacheMismatchError, DataError

CORPUS = {f"d{i}": Passage(f"d{i}", f"title {i}", "word " * (i % 7 + 1) + f"number {i} cells") for i in range(11)}
FP = {"model_id": "tiny", "checkpoint_hash": "x"}


def test_shard_ranges_cover_everything():
    assert shard_ranges(11, 3) == [(0, 4), (4, 7), (7, 11)]
    assert shard_ranges(2, 3)[0] == (0, 1) and sum(hi - lo for lo, hi in shard_ranges(2, 3)) == 2


def test_sharded_encoding_equals_direct_encoding(tiny_encoder, tmp_path):
    encode_corpus(tiny_encoder, CORPUS, tmp_path, FP, num_shards=3, batch_size=4, progress=False)
    merged = merge_shards(tmp_path)
    assert merged.doc_ids == list(CORPUS)
    with torch.no_grad():
        direct = tiny_encoder.encode_documents([p.title for p in CORPUS.values()], [p.text for p in CORPUS.values()])
    np.testing.assert_allclose(merged.dense, direct["dense"].numpy(), atol=1e-5)
    np.testing.assert_allclose(merged.sparse.toarray(), direct["sparse"].numpy(), atol=1e-5)


def test_killed_encoding_resumes_without_redoing_finished_shards(tiny_encoder, tmp_path, monkeypatch):
    calls = {"n": 0}
    original = tiny_encoder.encode_document_ids

    def crashing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # shard 0 needs 2 batches of 2; die inside shard 1
            raise KeyboardInterrupt("killed")
        return original(*args, **kwargs)

    monkeypatch.setattr(tiny_encoder, "encode_document_ids", crashing)
    with pytest.raises(KeyboardInterrupt):
        encode_corpus(tiny_encoder, CORPUS, tmp_path, FP, num_shards=3, batch_size=2, progress=False)
    assert shard_path(tmp_path, 0, 3).exists() and not shard_path(tmp_path, 1, 3).exists()
    assert not list(tmp_path.glob("*.tmp"))  # nothing half-written
    with pytest.raises(DataError, match=r"shard\(s\) \[1, 2\]"):
        merge_shards(tmp_path)
    first = shard_path(tmp_path, 0, 3).stat().st_mtime_ns
    calls["n"] = -100
    encode_corpus(tiny_encoder, CORPUS, tmp_path, FP, num_shards=3, batch_size=2, progress=False)
    assert shard_path(tmp_path, 0, 3).stat().st_mtime_ns == first
    assert calls["n"] == -100 + 4  # shards 1 and 2: 3 + 4 docs in batches of 2
    assert merge_shards(tmp_path).doc_ids == list(CORPUS)


def test_separate_processes_encode_their_own_shards(tiny_encoder, tmp_path):
    encode_corpus(tiny_encoder, CORPUS, tmp_path, FP, num_shards=2, shards=[1], progress=False)
    assert not shard_path(tmp_path, 0, 2).exists() and shard_path(tmp_path, 1, 2).exists()
    encode_corpus(tiny_encoder, CORPUS, tmp_path, FP, num_shards=2, shards=[0], progress=False)
    assert len(merge_shards(tmp_path).doc_ids) == len(CORPUS)


def test_other_settings_never_mix_with_existing_shards(tiny_encoder, tmp_path):
    encode_corpus(tiny_encoder, CORPUS, tmp_path, FP, num_shards=2, shards=[0], progress=False)
    with pytest.raises(CacheMismatchError, match="checkpoint_hash"):
        encode_corpus(tiny_encoder, CORPUS, tmp_path, {**FP, "checkpoint_hash": "y"}, num_shards=2, progress=False)


def test_float16_dense_and_dense_only(tiny_encoder, tmp_path):
    encode_corpus(tiny_encoder, CORPUS, tmp_path, FP, sparse=False, dense_dtype="float16", progress=False)
    merged = merge_shards(tmp_path)
    assert merged.dense.dtype == np.float16 and merged.sparse is None


def test_empty_corpus_is_an_error(tiny_encoder, tmp_path):
    with pytest.raises(DataError, match="empty"):
        encode_corpus(tiny_encoder, {}, tmp_path, FP)


def test_top_k_terms_at_encoding_time(tiny_encoder, tmp_path):
    encode_corpus(tiny_encoder, CORPUS, tmp_path / "all", FP, dense=False, progress=False)
    encode_corpus(tiny_encoder, CORPUS, tmp_path / "top", FP, dense=False, sparse_top_k=5, progress=False)
    full, top = merge_shards(tmp_path / "all").sparse.toarray(), merge_shards(tmp_path / "top").sparse
    assert (top.getnnz(axis=1) <= 5).all() and top.getnnz() > 0
    for i in range(full.shape[0]):
        kept = np.sort(full[i])[::-1][:5]
        np.testing.assert_allclose(np.sort(top.getrow(i).data)[::-1], kept[kept > 0], rtol=1e-6)


def test_rank_shards_are_disjoint_and_cover_everything():
    from lr_core.retrieval.corpus_encoding import rank_shards

    for num_shards, world in ((8, 2), (5, 3), (2, 4)):
        parts = [rank_shards(num_shards, r, world) for r in range(world)]
        assert sorted(s for p in parts for s in p) == list(range(num_shards))
    assert rank_shards(2, 3, 4) == []  # more ranks than shards: this one only waits
    with pytest.raises(ValueError, match="out of range"):
        rank_shards(4, 2, 2)


def test_two_ranks_encode_disjoint_shards_and_rank_zero_evaluates(shared_data, tmp_path):
    """`lr evaluate` under 2 ranks (torchrun's environment, gloo on the CPU, the untrained tiny Llama):
    each rank encodes its own corpus shards, rank 0 alone merges and scores, and the merged corpus and
    the metrics are those of one process encoding everything."""
    import json
    import os
    import socket
    import subprocess
    import sys

    from lr_core.data.beir import load_beir
    from lr_core.cli import main
    from lr_core.retrieval.evaluate import REPRESENTATIONS

    from tests.helpers import REPO, write_subset

    assert "sparse" in REPRESENTATIONS
    data = write_subset(shared_data, "scifact", tmp_path / "data", n_queries=5, n_extra_docs=40).parent
    common = ["evaluate", "--backbone", "tiny-llama", "--dataset", "scifact", "--data-dir", str(data),
              "--representation", "sparse", "--max-doc-len", "32"]  # sparse: no vocabulary cache to build
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "WORLD_SIZE": "2",
           "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    for var in ("SLURM_PROCID", "SLURM_STEP_NUM_TASKS", "SLURM_LOCALID", "NODE_RANK"):
        env.pop(var, None)
    args = json.dumps({"argv": [*common, "--out", str(tmp_path / "ranks"), "--num-shards", "4"], "out": str(tmp_path)})
    procs = [subprocess.Popen([sys.executable, "-m", "tests.lr_core.ranks_evaluate", args], cwd=REPO,
                              env={**env, "RANK": str(r), "LOCAL_RANK": str(r)}, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for r in (0, 1)]
    outs = []
    for p in procs:
        try:
            outs.append(p.communicate(timeout=600)[0])
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise AssertionError("a rank timed out") from None
    assert [p.returncode for p in procs] == [0, 0], "\n".join(o[-3000:] for o in outs)
    writes = [json.loads((tmp_path / f"rank{r}-writes.json").read_text()) for r in (0, 1)]
    assert writes == [["shard-00000-of-00004.npz", "shard-00002-of-00004.npz"],
                      ["shard-00001-of-00004.npz", "shard-00003-of-00004.npz"]]
    assert "nDCG@10" in outs[0] and "nDCG@10" not in outs[1]  # rank 0 alone scores
    assert (tmp_path / "ranks" / "scifact" / "sparse" / "metrics.json").is_file()

    # one process, one shard: the same corpus, the same metrics
    assert main([*common, "--out", str(tmp_path / "one")]) == 0
    ranks = merge_shards(tmp_path / "ranks" / "work" / "corpus" / "scifact-len32")
    one = merge_shards(tmp_path / "one" / "work" / "corpus" / "scifact-len32")
    assert ranks.doc_ids == one.doc_ids == list(load_beir(data / "scifact", "test").corpus)
    np.testing.assert_allclose(ranks.dense, one.dense, atol=1e-5)
    np.testing.assert_allclose(ranks.sparse.toarray(), one.sparse.toarray(), atol=1e-5)
    a, b = (json.loads((tmp_path / d / "scifact" / "sparse" / "metrics.json").read_text()) for d in ("ranks", "one"))
    assert a["ndcg@10"] == pytest.approx(b["ndcg@10"], abs=1e-6) and a["num_queries"] == b["num_queries"] == 5


def test_cutting_a_full_encoding_equals_encoding_with_the_top_k():
    """csr_top_k (the evaluation's cut of a full encoding) keeps exactly what _to_csr keeps while
    encoding, ties included (equal weights: the lower token id stays)."""
    import torch

    from lr_core.retrieval.corpus_encoding import _to_csr, csr_top_k

    g = torch.Generator().manual_seed(0)
    w = torch.relu(torch.randn(7, 50, generator=g)).round(decimals=1)  # many zeros and many ties
    w[3] = 0.0  # an empty document
    full = _to_csr(w, None)
    for k in (1, 3, 8, 50, 60):
        got, want = csr_top_k(full, k), _to_csr(w, k)
        assert (got != want).nnz == 0 and np.array_equal(got.indptr, want.indptr), k


def test_sparse_doc_stats_counts_terms_and_shared_terms():
    """Terms per document (a stored zero is no term) and sum_t p_t^2, checked against a hand count."""
    import scipy.sparse as sp

    from lr_core.retrieval.corpus_encoding import sparse_doc_stats

    m = sp.csr_matrix(np.array([[1.0, 0, 2.0, 0], [0, 0, 3.0, 0], [0.5, 1.0, 1.0, 4.0]]))
    m.data[m.data == 0.5] = 0.0  # an explicit stored zero: doc 2 then holds 3 terms
    stats = sparse_doc_stats(m)
    assert stats["terms_mean"] == pytest.approx((2 + 1 + 3) / 3) and stats["terms_median"] == 2
    assert stats["terms_max"] == 3
    # term 0 in 1 of 3 docs, term 1 in 1, term 2 in 3, term 3 in 1
    assert stats["flops"] == pytest.approx(3 * (1 / 3) ** 2 + 1.0)
    with pytest.raises(ValueError, match="no documents"):
        sparse_doc_stats(sp.csr_matrix((0, 4)))
