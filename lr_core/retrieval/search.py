"""Exact in-process search (no Lucene here): what the two indexes share, and runs.

* :class:`~lr_core.retrieval.dense_index.DenseIndex` -- Faiss ``IndexFlatIP`` (exact inner
  product) over float32 document vectors, optional Matryoshka truncation;
* :class:`~lr_core.retrieval.sparse_index.SparseIndex` -- exact dot-product search over a SciPy
  CSR matrix of document term weights ``[N, V]``; queries are ``{token_id: weight}`` dicts.

Both return, for ``Q`` queries, ``(scores, ids)`` where ``ids[i]`` is a list of document ids in
rank order: score descending, ties broken by index position (insertion order of the documents)
ascending. :func:`run_from_results` turns that into a ``{qid: {docid: score}}`` run.

Persistence: ``save(path)`` writes the index file at ``path`` and a JSON file
``path + ".ids.json"`` (document ids and settings); each file is written to a temporary name and
moved into place with ``os.replace``, and ``load`` checks that the two agree (helpers here).
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence

import numpy as np

from lr_core.errors import DataError
from lr_core.io import atomic_path

__all__ = [
    "run_from_results",
    "l2_normalize",
    "truncate_and_normalize",
]


META_SUFFIX = ".ids.json"


# --------------------------------------------------------------------------- helpers


def atomic_write(path: str, write: Callable[[str], None]) -> None:
    """Call ``write(tmp)`` and move ``tmp`` onto ``path`` atomically."""
    with atomic_path(path) as tmp:
        write(tmp)


def write_json(path: str, obj) -> None:
    def w(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(obj, f)

    atomic_write(path, w)


def read_meta(path: str, kind: str) -> dict:
    with open(os.fspath(path) + META_SUFFIX, encoding="utf-8") as f:
        meta = json.load(f)
    if meta.get("kind") != kind:
        raise DataError(f"{path}{META_SUFFIX} describes a {meta.get('kind')!r} index, not {kind!r}")
    return meta


def check_doc_ids(doc_ids: Sequence, n: int) -> list[str]:
    ids = [str(d) for d in doc_ids]
    if len(ids) != n:
        raise ValueError(f"{len(ids)} doc ids for {n} documents")
    if len(set(ids)) != len(ids):
        raise ValueError("doc ids are not unique")
    return ids


def check_k(k: int) -> int:
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


def sort_rows(scores: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort each row by score descending, then index ascending."""
    order = np.lexsort((idx, -scores), axis=-1)
    return np.take_along_axis(scores, order, -1), np.take_along_axis(idx, order, -1)


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
