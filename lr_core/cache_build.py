"""Building the vocabulary cache from a trained encoder (the torch side of :mod:`lr_core.cache`).

>>> cache = build_vocab_cache(encoder, instruction, "smollm2-135m", ckpt_hash)   # doctest: +SKIP
>>> cache.save("runs/x/cache.npz")                                              # doctest: +SKIP
"""
from __future__ import annotations

import datetime as _dt
import time

import numpy as np
import torch

from lr_core.cache import CacheMetadata, VocabCache
from lr_core.progress import progress as progress_bar


def build_vocab_cache(encoder, instruction: str, model_id: str, checkpoint_hash: str, batch_size: int = 256,
                      dtype: str = "float32", progress: bool = True, method: str = "block") -> VocabCache:
    """Encode every vocabulary id as ``<bos> prompt t <eos>`` and keep the EOS states.

    ``encoder`` is a :class:`~lr_core.encoder.RetrievalEncoder` (eval mode is set here);
    ``method`` is ``block`` (block-mask packing, faster on CPU) or ``prefix_kv`` (the prompt's
    key/value cache); both give the training-time vectors to float tolerance.
    """
    if method not in ("block", "prefix_kv"):
        raise ValueError(f"unknown cache build method {method!r}; use block or prefix_kv")
    vocab = encoder.tokenizer.vocab_size
    was_training = encoder.training
    encoder.eval()
    start = time.perf_counter()
    out = np.empty((vocab, encoder.hidden_size), dtype=np.float32)
    with torch.no_grad():
        for lo in progress_bar(range(0, vocab, batch_size), desc="vocabulary cache", unit="batch", enabled=progress):
            ids = torch.arange(lo, min(lo + batch_size, vocab))
            vecs = (encoder.token_vectors_block(instruction, ids) if method == "block"
                    else encoder.token_vectors_prefix_kv(instruction, ids))
            out[lo:lo + len(ids)] = vecs.cpu().numpy()
    encoder.train(was_training)
    return vocab_cache_from_vectors(out, encoder, instruction, model_id, checkpoint_hash, dtype,
                                    build_seconds=time.perf_counter() - start)


def vocab_cache_from_vectors(vectors: np.ndarray, encoder, instruction: str, model_id: str, checkpoint_hash: str,
                             dtype: str = "float32", build_seconds: float = 0.0) -> VocabCache:
    """Wrap ``[V, H]`` token vectors (one row per vocabulary id) with the metadata that guards reuse."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.shape != (encoder.tokenizer.vocab_size, encoder.hidden_size):
        raise ValueError(f"cache vectors must be [{encoder.tokenizer.vocab_size}, {encoder.hidden_size}], "
                         f"got {list(vectors.shape)}")
    meta = CacheMetadata(
        model_id=model_id, checkpoint_hash=checkpoint_hash, tokenizer_hash=encoder.tokenizer.fingerprint(),
        instruction=instruction, dtype=dtype, vocab_size=vectors.shape[0], hidden_size=vectors.shape[1],
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        build_seconds=round(build_seconds, 3),
    )
    return VocabCache(vectors.astype(dtype), meta)
