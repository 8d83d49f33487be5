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
