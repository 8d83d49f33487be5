"""Exact in-process search back ends (no Lucene here).

* :class:`DenseIndex` -- Faiss ``IndexFlatIP`` (exact inner product) over float32
  document vectors, on the GPU automatically when Faiss sees one.  Optional
  Matryoshka truncation ``dim``: documents and queries are cut to their first
  ``dim`` coordinates and L2-re-normalised.
* :class:`SparseIndex` -- exact dot-product search over a SciPy CSR matrix of
  document term weights ``[N, V]``; queries are ``{token_id: weight}`` dicts
  (for LightRetriever: token counts).  Optional ``top_k_terms`` keeps only the
  k largest weights of each document at index time.

Both return, for ``Q`` queries, ``(scores, ids)`` where ``ids[i]`` is a list of
document ids in rank order: score descending, ties broken by index position
(insertion order of the documents) ascending.

Persistence: ``save(path)`` writes the index file at ``path`` and a JSON file
``path + ".ids.json"`` (document ids and settings); each file is written to a
temporary name and moved into place with ``os.replace``, and ``load`` checks
that the two agree.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from itertools import chain

import faiss
import numpy as np
import scipy.sparse as sp

from lr_core.errors import DataError
from lr_core.io import atomic_path

__all__ = ["DenseIndex", "SparseIndex", "run_from_results", "l2_normalize", "truncate_and_normalize"]

_META_SUFFIX = ".ids.json"



# --------------------------------------------------------------------------- helpers


def _atomic_write(path: str, write: Callable[[str], None]) -> None:
    """Call ``write(tmp)`` and move ``tmp`` onto ``path`` atomically."""
    with atomic_path(path) as tmp:
        write(tmp)


def _write_json(path: str, obj) -> None:
    def w(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(obj, f)

    _atomic_write(path, w)


def _read_meta(path: str, kind: str) -> dict:
    with open(os.fspath(path) + _META_SUFFIX, encoding="utf-8") as f:
        meta = json.load(f)
    if meta.get("kind") != kind:
        raise DataError(f"{path}{_META_SUFFIX} describes a {meta.get('kind')!r} index, not {kind!r}")
    return meta


def _check_doc_ids(doc_ids: Sequence, n: int) -> list[str]:
    ids = [str(d) for d in doc_ids]
    if len(ids) != n:
        raise ValueError(f"{len(ids)} doc ids for {n} documents")
    if len(set(ids)) != len(ids):
        raise ValueError("doc ids are not unique")
    return ids


def _check_k(k: int) -> int:
    k = int(k)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return k


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Row-wise L2 normalisation (float32); zero rows stay zero."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x / np.maximum(norms, eps), dtype=np.float32)


def truncate_and_normalize(x: np.ndarray, dim: int) -> np.ndarray:
    """Matryoshka truncation: first ``dim`` coordinates, then L2-normalised."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"expected a 2-D array, got shape {x.shape}")
    if not 1 <= dim <= x.shape[1]:
        raise ValueError(f"truncation dim {dim} is outside 1..{x.shape[1]}")
    return l2_normalize(x[:, :dim])


def _sort_rows(scores: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort each row by score descending, then index ascending."""
    order = np.lexsort((idx, -scores), axis=-1)
    return np.take_along_axis(scores, order, -1), np.take_along_axis(idx, order, -1)


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
        self.doc_ids = _check_doc_ids(doc_ids, x.shape[0])
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
        k = _check_k(k)
        q = self._prepare_queries(queries)
        kk = min(k, self.ntotal)
        if kk == 0 or q.shape[0] == 0:
            return np.zeros((q.shape[0], 0), dtype=np.float32), np.zeros((q.shape[0], 0), dtype=np.int64)
        scores, idx = self._index.search(q, kk)
        if (idx < 0).any():  # cannot happen for a flat index with k <= ntotal
            raise RuntimeError("faiss returned missing results")
        if sort:
            scores, idx = _sort_rows(scores, idx)
        return scores.astype(np.float32, copy=False), idx.astype(np.int64, copy=False)

    def save(self, path: str) -> None:
        """Write the Faiss index at ``path`` and the ids at ``path + '.ids.json'``."""
        path = os.fspath(path)
        cpu = faiss.index_gpu_to_cpu(self._index) if self.on_gpu else self._index
        _atomic_write(path, lambda tmp: faiss.write_index(cpu, tmp))
        meta = {
            "kind": "dense",
            "doc_ids": self.doc_ids,
            "dim": self.dim,
            "source_dim": self.source_dim,
            "ntotal": self.ntotal,
        }
        _write_json(path + _META_SUFFIX, meta)

    @classmethod
    def load(cls, path: str, use_gpu: bool | None = None, gpu_mode: str = "replicate",
             gpu_fp16: bool = False) -> "DenseIndex":
        path = os.fspath(path)
        meta = _read_meta(path, "dense")
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


# --------------------------------------------------------------------------- sparse


def _dicts_to_csr(vectors: Sequence[Mapping[int, float]], vocab_size: int, what: str) -> sp.csr_matrix:
    """``list[{token_id: weight}]`` -> float32 CSR ``[len, vocab_size]``; zero
    weights dropped, column indices sorted."""
    n = len(vectors)
    lengths = np.fromiter((len(v) for v in vectors), dtype=np.int64, count=n)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    total = int(indptr[-1])
    indices = np.fromiter(chain.from_iterable(v.keys() for v in vectors), dtype=np.int64, count=total)
    data = np.fromiter(chain.from_iterable(v.values() for v in vectors), dtype=np.float64, count=total)
    if total:
        if indices.min() < 0 or indices.max() >= vocab_size:
            bad = indices[(indices < 0) | (indices >= vocab_size)][0]
            raise ValueError(f"{what}: token id {bad} outside [0, {vocab_size})")
        if not np.isfinite(data).all():
            raise ValueError(f"{what}: NaN or inf weight")
    m = sp.csr_matrix((data.astype(np.float32), indices, indptr), shape=(n, vocab_size))
    m.eliminate_zeros()
    m.sort_indices()
    return m


def _descending_key(x: np.ndarray) -> np.ndarray:
    """uint64 whose ascending order is the descending order of float32 ``x``."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    asc = np.where(u & np.uint32(0x80000000), ~u, u | np.uint32(0x80000000))  # order-preserving map
    return (np.uint32(0xFFFFFFFF) - asc).astype(np.uint64)


def _keep_top_terms(m: sp.csr_matrix, k: int, chunk_rows: int = 65536) -> sp.csr_matrix:
    """Keep the ``k`` largest weights of every row (ties: smaller token id)."""
    m = m.tocsr()
    m.sort_indices()
    if (np.diff(m.indptr) <= k).all():
        return m.copy()
    out = []
    for start in range(0, m.shape[0], chunk_rows):
        part = m[start : start + chunk_rows]
        counts = np.diff(part.indptr)
        rows = np.repeat(np.arange(part.shape[0], dtype=np.uint64), counts)
        # one stable sort on (row, weight descending); token ids are already
        # ascending within a row, so stability breaks weight ties by smaller id
        order = np.argsort((rows << np.uint64(32)) | _descending_key(part.data), kind="stable")
        rank = np.arange(order.size) - part.indptr[rows[order].astype(np.int64)]
        keep = np.sort(order[rank < k])  # back to row-major, sorted-id order
        out.append(
            sp.csr_matrix(
                (part.data[keep], part.indices[keep], np.concatenate([[0], np.cumsum(np.minimum(counts, k))])),
                shape=part.shape,
            )
        )
    res = sp.vstack(out, format="csr")
    res.sort_indices()
    return res


class SparseIndex:
    """Exact sparse dot-product search.

    Args:
        doc_vectors: one ``{token_id: weight}`` dict per document.
        doc_ids: ``N`` unique document ids.
        vocab_size: ``V``; token ids must lie in ``[0, V)``.
        top_k_terms: keep only the k largest weights of each document (ties:
            smaller token id); ``None`` keeps all.

    Zero weights are dropped.  Search returns at most ``k`` documents with a
    non-zero score (documents sharing no term with the query are not returned,
    as in an inverted index); a query with no terms returns empty lists.
    """

    def __init__(
        self,
        doc_vectors: Sequence[Mapping[int, float]],
        doc_ids: Sequence,
        vocab_size: int,
        top_k_terms: int | None = None,
    ):
        m = _dicts_to_csr(doc_vectors, int(vocab_size), "document vectors")
        self._init_from_matrix(m, doc_ids, top_k_terms)

    @classmethod
    def from_csr(cls, matrix, doc_ids: Sequence, top_k_terms: int | None = None) -> "SparseIndex":
        """Build from an existing ``[N, V]`` SciPy sparse matrix."""
        m = sp.csr_matrix(matrix, dtype=np.float32)
        if m.nnz and not np.isfinite(m.data).all():
            raise ValueError("document matrix contains NaN or inf")
        m.sum_duplicates()
        m.eliminate_zeros()
        m.sort_indices()
        self = cls.__new__(cls)
        self._init_from_matrix(m, doc_ids, top_k_terms)
        return self

    def _init_from_matrix(self, m: sp.csr_matrix, doc_ids, top_k_terms) -> None:
        self.doc_ids = _check_doc_ids(doc_ids, m.shape[0])
        if top_k_terms is not None:
            top_k_terms = int(top_k_terms)
            if top_k_terms < 1:
                raise ValueError(f"top_k_terms must be >= 1, got {top_k_terms}")
            m = _keep_top_terms(m, top_k_terms)
        self.top_k_terms = top_k_terms
        self._rows: sp.csr_matrix | None = m
        self.vocab_size = int(m.shape[1])
        self._ids_arr = np.asarray(self.doc_ids, dtype=object)
        self._postings = None  # CSC copy (inverted index), built at first search

    @property
    def matrix(self) -> sp.csr_matrix:
        """The ``[N, V]`` document-term matrix (CSR; rebuilt from the posting lists for an index
        loaded in the ``postings`` layout, which keeps only those)."""
        if self._rows is None:
            self._rows = self._postings.tocsr()
        return self._rows

    @property
    def postings(self) -> sp.csc_matrix:
        """The same matrix column-major: term -> its documents (the inverted index searches read)."""
        if self._postings is None:
            self._postings = self._rows.tocsc()
        return self._postings

    @property
    def ntotal(self) -> int:
        return len(self.doc_ids)

    def __len__(self) -> int:
        return self.ntotal

    def search(
        self, query_vectors: Sequence[Mapping[int, float]], k: int, batch_size: int = 512
    ) -> tuple[list[np.ndarray], list[list[str]]]:
        """Top-``k`` by dot product.  Returns ``(scores, ids)``: for each query a
        float32 array and a list of doc ids of the same length (<= k)."""
        all_scores, positions = self.search_positions(query_vectors, k, batch_size)
        return all_scores, [list(self._ids_arr[p]) for p in positions]

    def search_positions(
        self, query_vectors: Sequence[Mapping[int, float]], k: int, batch_size: int = 512, sort: bool = True
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Like :meth:`search`, with row positions into ``doc_ids`` (int64 arrays) instead of ids;
        ``sort=False``: the same documents, unordered (for fusion)."""
        k = _check_k(k)
        inv_t = self.postings.T  # CSR [V, N] without a copy: term -> posting list
        all_scores: list[np.ndarray] = []
        all_pos: list[np.ndarray] = []
        for start in range(0, len(query_vectors), batch_size):
            q = _dicts_to_csr(query_vectors[start : start + batch_size], self.vocab_size, "query vectors")
            prod = (q @ inv_t).tocsr()  # [B, N]; scipy stores no exact-zero sums
            for r in range(prod.shape[0]):
                lo, hi = prod.indptr[r], prod.indptr[r + 1]
                data = prod.data[lo:hi]
                idx = prod.indices[lo:hi]
                if data.size > k:
                    thr = np.partition(data, data.size - k)[data.size - k]  # k-th largest
                    sel = data >= thr
                    data, idx = data[sel], idx[sel]
                if not sort and data.size <= k:  # no ties to break at the cut: order is not needed
                    all_scores.append(data.astype(np.float32, copy=False))
                    all_pos.append(idx.astype(np.int64, copy=False))
                    continue
                order = np.lexsort((idx, -data))[:k]
                all_scores.append(data[order].astype(np.float32, copy=False))
                all_pos.append(idx[order].astype(np.int64, copy=False))
        return all_scores, all_pos

    def save(self, path: str, layout: str = "rows") -> None:
        """Write the matrix (``.npz``) at ``path`` and the ids at ``path + '.ids.json'``.

        ``layout="postings"`` stores the column-major copy that searches read, so a loaded index
        (the query server's) holds one copy of the matrix and never converts it."""
        if layout not in ("rows", "postings"):
            raise ValueError(f"layout must be rows or postings, got {layout!r}")
        path = os.fspath(path)
        matrix = self.postings if layout == "postings" else self.matrix

        def w(tmp):
            with open(tmp, "wb") as f:  # a file object: save_npz would append .npz to a name
                sp.save_npz(f, matrix, compressed=False)

        _atomic_write(path, w)
        meta = {
            "kind": "sparse",
            "doc_ids": self.doc_ids,
            "vocab_size": self.vocab_size,
            "top_k_terms": self.top_k_terms,
            "ntotal": self.ntotal,
            "layout": layout,
        }
        _write_json(path + _META_SUFFIX, meta)

    @classmethod
    def load(cls, path: str) -> "SparseIndex":
        path = os.fspath(path)
        meta = _read_meta(path, "sparse")
        layout = meta.get("layout", "rows")
        m = sp.load_npz(path)
        if layout not in ("rows", "postings") or m.format != ("csc" if layout == "postings" else "csr"):
            raise DataError(f"{path}: a {m.format} matrix does not match the layout {layout!r} of its id file")
        if m.shape != (meta["ntotal"], meta["vocab_size"]) or m.shape[0] != len(meta["doc_ids"]):
            raise DataError(f"{path}: matrix shape {m.shape} does not match its id file")
        self = cls.__new__(cls)
        self.doc_ids = [str(d) for d in meta["doc_ids"]]
        self.top_k_terms = meta["top_k_terms"]
        m = m.astype(np.float32, copy=False)
        self._rows, self._postings = (None, m) if layout == "postings" else (m, None)
        self.vocab_size = int(m.shape[1])
        self._ids_arr = np.asarray(self.doc_ids, dtype=object)
        return self


# --------------------------------------------------------------------------- runs


def run_from_results(query_ids: Sequence, scores, ids: Sequence[Sequence[str]]) -> dict[str, dict[str, float]]:
    """``(query_ids, scores, ids)`` from a ``search`` call -> run
    ``{qid: {doc_id: score}}`` (per-query dicts in rank order).  ``None`` or
    ``-1`` ids (Faiss padding) are skipped."""
    if not (len(query_ids) == len(scores) == len(ids)):
        raise ValueError(f"length mismatch: {len(query_ids)} query ids, {len(scores)} score rows, {len(ids)} id rows")
    run: dict[str, dict[str, float]] = {}
    for qid, srow, irow in zip(query_ids, scores, ids):
        qid = str(qid)
        if qid in run:
            raise ValueError(f"duplicate query id {qid!r}")
        if len(srow) != len(irow):
            raise ValueError(f"query {qid!r}: {len(srow)} scores for {len(irow)} ids")
        row: dict[str, float] = {}
        for s, d in zip(srow, irow):
            if d is None or (isinstance(d, (int, np.integer)) and d == -1):
                continue
            row[str(d)] = float(s)
        run[qid] = row
    return run
