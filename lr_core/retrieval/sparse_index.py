"""Sparse exact search: :class:`SparseIndex`, dot products over a SciPy CSR matrix of document term
weights ``[N, V]``; queries are ``{token_id: weight}`` dicts (for LightRetriever: token counts,
:mod:`lr_core.query_side`). Optional ``top_k_terms`` keeps only the k largest weights of each
document at index time. Ranking and persistence: :mod:`lr_core.retrieval.search`.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from itertools import chain

import numpy as np
import scipy.sparse as sp

from lr_core.errors import DataError
from lr_core.retrieval.search import META_SUFFIX, atomic_write, check_doc_ids, check_k, read_meta, write_json

__all__ = [
    "SparseIndex",
]


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
        self.doc_ids = check_doc_ids(doc_ids, m.shape[0])
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
        k = check_k(k)
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

        atomic_write(path, w)
        meta = {
            "kind": "sparse",
            "doc_ids": self.doc_ids,
            "vocab_size": self.vocab_size,
            "top_k_terms": self.top_k_terms,
            "ntotal": self.ntotal,
            "layout": layout,
        }
        write_json(path + META_SUFFIX, meta)

    @classmethod
    def load(cls, path: str) -> "SparseIndex":
        path = os.fspath(path)
        meta = read_meta(path, "sparse")
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
