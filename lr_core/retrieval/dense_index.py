"""Dense exact search: :class:`DenseIndex`, Faiss ``IndexFlatIP`` (exact inner product) over float32
document vectors, on the GPU automatically when Faiss sees one (``replicate`` or ``shard``).
Optional Matryoshka truncation ``dim``: documents and queries are cut to their first ``dim``
coordinates and L2-re-normalised. Ranking and persistence: :mod:`lr_core.retrieval.search`.
"""
from __future__ import annotations

import os
from collections.abc import Sequence

import faiss
import numpy as np

from lr_core.errors import DataError
from lr_core.retrieval.search import (META_SUFFIX, atomic_write, check_doc_ids, check_k, read_meta, sort_rows,
                                      truncate_and_normalize, write_json)

__all__ = [
    "DenseIndex",
    "GPU_MODES",
    "check_gpu_mode",
]


def _gpu_available() -> bool:
    get = getattr(faiss, "get_num_gpus", None)
    try:
        return bool(get is not None and get() > 0)
    except Exception:  # pragma: no cover - broken GPU runtime
        return False


GPU_MODES = ("replicate", "shard")


def check_gpu_mode(mode: str) -> str:
    if mode not in GPU_MODES:
        raise ValueError(f"Faiss GPU mode must be one of {GPU_MODES}, got {mode!r}")
    return mode


def gpu_cloner_options(mode: str = "replicate", fp16: bool = False):
    """Faiss options for :func:`faiss.index_cpu_to_all_gpus`: ``replicate`` puts the whole index on
    every GPU (queries split over them); ``shard`` splits the vectors over the GPUs (an index larger
    than one GPU's memory); ``fp16`` stores the vectors as float16 (half the memory, scores to ~1e-3)."""
    check_gpu_mode(mode)
    co = faiss.GpuMultipleClonerOptions()
    co.shard = mode == "shard"
    co.useFloat16 = bool(fp16)
    return co


# --------------------------------------------------------------------------- dense


class DenseIndex:
    """Exact inner-product search (Faiss ``IndexFlatIP``).

    Args:
        vectors: float32 ``[N, D]`` document vectors (L2-normalised upstream for
            cosine; this class does not normalise unless ``dim`` is given).
        doc_ids: ``N`` unique document ids.
        dim: Matryoshka truncation; ``None`` keeps all ``D`` dims.  When set,
            documents and every query are cut to ``dim`` and re-normalised.
            ``dim > D`` raises ``ValueError``.
        use_gpu: ``None`` (default) = use the GPU iff ``faiss.get_num_gpus() > 0``
            (never with the ``faiss-cpu`` build; ``make setup-gpu`` installs ``faiss-gpu``).
        gpu_mode: ``replicate`` (a copy per GPU) or ``shard`` (vectors split over the GPUs).
        gpu_fp16: store the GPU copies as float16.
    """

    def __init__(self, vectors: np.ndarray, doc_ids: Sequence, dim: int | None = None, use_gpu: bool | None = None,
                 gpu_mode: str = "replicate", gpu_fp16: bool = False):
        check_gpu_mode(gpu_mode)  # checked even where no GPU is used: a typo must not wait for a GPU machine
        self.gpu_mode, self.gpu_fp16 = gpu_mode, bool(gpu_fp16)
        x = np.asarray(vectors, dtype=np.float32)
        if x.ndim != 2:
            raise ValueError(f"document vectors must be [N, D], got shape {x.shape}")
        if not np.isfinite(x).all():
            raise ValueError("document vectors contain NaN or inf")
        self.doc_ids = check_doc_ids(doc_ids, x.shape[0])
        self.source_dim = int(x.shape[1])
        if dim is not None:
            dim = int(dim)
            x = truncate_and_normalize(x, dim)
        self.dim = dim
        index = faiss.IndexFlatIP(int(x.shape[1]))
        if x.shape[0]:
            index.add(np.ascontiguousarray(x))
        self._set_index(index, use_gpu)

    # internal: (re)place the faiss index, moving it to the GPU when asked
    def _set_index(self, cpu_index, use_gpu: bool | None) -> None:
        self.on_gpu = _gpu_available() if use_gpu is None else bool(use_gpu)
        if self.on_gpu:
            if not _gpu_available():
                raise RuntimeError("use_gpu=True but faiss sees no GPU")
            self._index = faiss.index_cpu_to_all_gpus(cpu_index, co=gpu_cloner_options(self.gpu_mode, self.gpu_fp16))
        else:
            self._index = cpu_index
        self._ids_arr = np.asarray(self.doc_ids, dtype=object)

    @property
    def ntotal(self) -> int:
        return int(self._index.ntotal)

    @property
    def index_dim(self) -> int:
        """Dimension of the stored vectors (``dim`` if truncated, else ``D``)."""
        return int(self._index.d)

    def __len__(self) -> int:
        return self.ntotal

    def _prepare_queries(self, queries: np.ndarray) -> np.ndarray:
        q = np.asarray(queries, dtype=np.float32)
        if q.ndim == 1:
            q = q[None, :]
        if q.ndim != 2:
            raise ValueError(f"queries must be [Q, D], got shape {q.shape}")
        if not np.isfinite(q).all():
            raise ValueError("query vectors contain NaN or inf")
        if self.dim is not None:
            if q.shape[1] < self.dim:
                raise ValueError(f"queries have {q.shape[1]} dims, fewer than the truncation dim {self.dim}")
            return truncate_and_normalize(q, self.dim)
        if q.shape[1] != self.index_dim:
            raise ValueError(f"queries have {q.shape[1]} dims, the index has {self.index_dim}")
        return np.ascontiguousarray(q)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, list[list[str]]]:
        """Top-``k`` documents per query: ``(scores float32 [Q, k'], ids)`` with
        ``k' = min(k, N)``."""
        scores, idx = self.search_positions(queries, k)
        return scores, [list(row) for row in self._ids_arr[idx]]

    def search_positions(self, queries: np.ndarray, k: int, sort: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Like :meth:`search`, with row positions into ``doc_ids`` (int64 [Q, k']) instead of ids;
        ``sort=False`` leaves each row in Faiss's order (same documents: for fusion, which needs no order)."""
        k = check_k(k)
        q = self._prepare_queries(queries)
        kk = min(k, self.ntotal)
        if kk == 0 or q.shape[0] == 0:
            return np.zeros((q.shape[0], 0), dtype=np.float32), np.zeros((q.shape[0], 0), dtype=np.int64)
        scores, idx = self._index.search(q, kk)
        if (idx < 0).any():  # cannot happen for a flat index with k <= ntotal
            raise RuntimeError("faiss returned missing results")
        if sort:
            scores, idx = sort_rows(scores, idx)
        return scores.astype(np.float32, copy=False), idx.astype(np.int64, copy=False)

    def save(self, path: str) -> None:
        """Write the Faiss index at ``path`` and the ids at ``path + '.ids.json'``."""
        path = os.fspath(path)
        cpu = faiss.index_gpu_to_cpu(self._index) if self.on_gpu else self._index
        atomic_write(path, lambda tmp: faiss.write_index(cpu, tmp))
        meta = {
            "kind": "dense",
            "doc_ids": self.doc_ids,
            "dim": self.dim,
            "source_dim": self.source_dim,
            "ntotal": self.ntotal,
        }
        write_json(path + META_SUFFIX, meta)

    @classmethod
    def load(cls, path: str, use_gpu: bool | None = None, gpu_mode: str = "replicate",
             gpu_fp16: bool = False) -> "DenseIndex":
        path = os.fspath(path)
        meta = read_meta(path, "dense")
        cpu = faiss.read_index(path)
        if cpu.ntotal != len(meta["doc_ids"]) or cpu.ntotal != meta["ntotal"]:
            raise DataError(f"{path}: index holds {cpu.ntotal} vectors but its id file lists {len(meta['doc_ids'])}")
        self = cls.__new__(cls)
        self.doc_ids = [str(d) for d in meta["doc_ids"]]
        self.dim = meta["dim"]
        self.source_dim = meta["source_dim"]
        check_gpu_mode(gpu_mode)
        self.gpu_mode, self.gpu_fp16 = gpu_mode, bool(gpu_fp16)
        self._set_index(cpu, use_gpu)
        return self
