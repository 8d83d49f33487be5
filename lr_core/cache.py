"""The vocabulary cache: one [V, H] matrix of light token vectors per instruction.

After training, every token id of the vocabulary is encoded as ``<bos> prompt t <eos>``; a
light dense query is then the mean of its tokens' rows, L2-normalised. This module (reading and
the lookup) needs only numpy and scipy, so the serving package uses it; *building* a cache runs
the model and lives in :mod:`lr_core.cache_build`.

File format: one ``.npz`` with ``vectors`` [V, H] (float32 or float16) and ``metadata``
(a JSON string: model id, checkpoint hash, tokenizer hash, instruction, dtype, ...).
It is written to a temporary file and renamed, so a crash never leaves a partial cache.

>>> cache = VocabCache.load("runs/x/cache.npz", expect={"instruction": inst})   # doctest: +SKIP
>>> q = cache.encode([[523, 88, 523]])        # [1, H] float32, L2-normalised  # doctest: +SKIP
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from lr_core.errors import CacheMismatchError
from lr_core.io import atomic_path

# The fields that must match between a cache and the model/tokenizer/instruction using it.
MATCH_FIELDS = ("model_id", "checkpoint_hash", "tokenizer_hash", "instruction")


@dataclass
class CacheMetadata:
    model_id: str
    checkpoint_hash: str
    tokenizer_hash: str
    instruction: str
    dtype: str
    vocab_size: int
    hidden_size: int
    created: str = ""
    build_seconds: float = 0.0


class VocabCache:
    """A loaded cache: ``vectors`` [V, H] plus its :class:`CacheMetadata`."""

    def __init__(self, vectors: np.ndarray, metadata: CacheMetadata):
        if vectors.ndim != 2 or vectors.shape != (metadata.vocab_size, metadata.hidden_size):
            raise CacheMismatchError(f"cache vectors have shape {vectors.shape}, metadata says "
                                     f"({metadata.vocab_size}, {metadata.hidden_size})")
        self.vectors = vectors
        self.metadata = metadata

    # -- persistence -----------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, vectors=self.vectors, metadata=np.array(json.dumps(asdict(self.metadata))))
        return Path(path)

    @classmethod
    def load(cls, path: str | Path, expect: dict | None = None, dtype: str | None = None) -> "VocabCache":
        """Load a cache; every key of ``expect`` (from MATCH_FIELDS) must equal the stored value.

        ``dtype`` ("float32"/"float16") converts the vectors after loading.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"vocabulary cache not found: {path}")
        with np.load(path, allow_pickle=False) as z:
            meta = CacheMetadata(**json.loads(str(z["metadata"])))
            vectors = z["vectors"]
        for key, want in (expect or {}).items():
            if key not in MATCH_FIELDS:
                raise ValueError(f"cannot check cache field {key!r}; checkable: {', '.join(MATCH_FIELDS)}")
            have = getattr(meta, key)
            if have != want:
                raise CacheMismatchError(
                    f"cache {path} was built for {key}={have!r} but the current setting is {want!r}; "
                    "rebuild it with `lr cache`")
        if dtype is not None:
            vectors = vectors.astype(dtype)
        return cls(vectors, meta)

    # -- lookup ---------------------------------------------------------------------
    def encode(self, token_ids: Sequence[Sequence[int]]) -> np.ndarray:
        """Light dense query vectors [B, H] float32: mean of cached rows (duplicates counted), L2-normalised.

        A float32 cache is read through a sparse [B, V] matrix of 1/len weights times the cache
        (no [tokens, H] gather is materialised: ~10x faster on CPU); a float16 cache gathers its
        rows and sums them in float32 (a float32 copy of the whole cache would undo its saving).
        """
        import scipy.sparse as sp

        lengths = np.fromiter((len(t) for t in token_ids), dtype=np.int64, count=len(token_ids))
        if len(lengths) == 0:
            return np.zeros((0, self.vectors.shape[1]), dtype=np.float32)
        if (lengths == 0).any():
            raise ValueError(f"query {int(np.argmin(lengths))} of the batch has no tokens")
        flat = np.fromiter((t for ids in token_ids for t in ids), dtype=np.int64, count=int(lengths.sum()))
        if flat.min() < 0 or flat.max() >= self.vectors.shape[0]:
            raise ValueError(f"token id out of range for a cache of {self.vectors.shape[0]} rows")
        if self.vectors.dtype == np.float32:
            indptr = np.zeros(len(lengths) + 1, dtype=np.int64)
            np.cumsum(lengths, out=indptr[1:])
            weights = np.repeat((1.0 / lengths).astype(np.float32), lengths)
            means = np.asarray(sp.csr_matrix((weights, flat, indptr), shape=(len(lengths), self.vectors.shape[0]))
                               @ self.vectors, dtype=np.float32)
        else:
            starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
            sums = np.add.reduceat(self.vectors[flat].astype(np.float32, copy=False), starts, axis=0)
            means = sums / lengths[:, None].astype(np.float32)
        norms = np.linalg.norm(means, axis=1, keepdims=True)
        return (means / np.maximum(norms, np.float32(1e-12))).astype(np.float32, copy=False)
