"""Vocabulary cache: metadata checks, atomic save, numpy-only lookup."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from lr_core.cache import CacheMetadata, VocabCache
from lr_core.errors import CacheMismatchError


def small_cache(dtype="float32") -> VocabCache:
    rng = np.random.default_rng(0)
    meta = CacheMetadata("tiny-llama", "abc123", "tok1", "Given a claim", dtype, 10, 4)
    return VocabCache(rng.standard_normal((10, 4)).astype(dtype), meta)


def test_roundtrip_and_lookup(tmp_path):
    cache = small_cache()
    path = cache.save(tmp_path / "c.npz")
    assert [p.name for p in tmp_path.iterdir()] == ["c.npz"]  # no temporary file left behind
    loaded = VocabCache.load(path, expect={"model_id": "tiny-llama", "instruction": "Given a claim"})
    np.testing.assert_array_equal(loaded.vectors, cache.vectors)
    got = loaded.encode([[3, 3, 5], [0]])
    mean = (2 * cache.vectors[3] + cache.vectors[5]) / 3  # duplicates counted
    np.testing.assert_allclose(got[0], mean / np.linalg.norm(mean), rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, rtol=1e-6)
    assert got.dtype == np.float32


@pytest.mark.parametrize("field,value", [("model_id", "other"), ("checkpoint_hash", "zzz"),
                                         ("tokenizer_hash", "tok2"), ("instruction", "Given a question")])
def test_mismatched_metadata_is_a_clear_error(tmp_path, field, value):
    path = small_cache().save(tmp_path / "c.npz")
    with pytest.raises(CacheMismatchError, match=field):
        VocabCache.load(path, expect={field: value})


def test_float16_cache_lookup_is_close_to_float32(tmp_path):
    c32 = small_cache()
    c16 = VocabCache.load(c32.save(tmp_path / "c.npz"), dtype="float16")
    assert c16.vectors.dtype == np.float16
    np.testing.assert_allclose(c16.encode([[1, 2, 2]]), c32.encode([[1, 2, 2]]), atol=2e-3)


def test_bad_token_ids_and_empty_queries():
    cache = small_cache()
    with pytest.raises(ValueError, match="out of range"):
        cache.encode([[10]])
    with pytest.raises(ValueError, match="no tokens"):
        cache.encode([[1], []])


def test_lookup_needs_only_numpy(tmp_path):
    path = small_cache().save(tmp_path / "c.npz")
    code = ("import sys; from lr_core.cache import VocabCache; c = VocabCache.load(sys.argv[1]); c.encode([[1, 2]]); "
            "bad = [m for m in ('torch', 'transformers') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code, str(path)], check=True)
