"""Hybrid fusion of a dense and a sparse run: the one place for it (METHOD.md §5).

A *run* is ``{query_id: {doc_id: score}}``.  Every function returns a new run
whose per-query dicts are inserted in rank order.

Ranking order used everywhere in this module: score descending, then doc id
ascending (string comparison).  This makes truncation to ``top_k`` and RRF
ranks deterministic when scores tie.  (trec_eval, and so
:mod:`lr_core.retrieval.metrics`, breaks exact ties the other way, doc id descending; this
only matters for documents with exactly equal fused scores.)

Linear fusion (the paper's hybrid):
    per query, each system's list is cut to its own ``top_k``, min-max
    normalised over that list, ``(s - min) / (max - min + eps)``, and
    ``fused = w_dense * d + w_sparse * s`` over the union of the two lists; a
    document missing from one list scores 0 there.  A query that only one
    system returns (or for which the other system's list is empty) keeps that
    system's normalised, weighted scores.  With all-equal scores in a list,
    every document of it normalises to 0 (the ``eps`` keeps the division
    finite); so does a list of a single document.

Reciprocal rank fusion: ``sum over runs of 1 / (k + rank)``, rank starting at 1
within each run's (truncated) list.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

__all__ = ["minmax_normalize", "rank_items", "fuse_linear", "fuse_linear_arrays", "fuse_rrf", "fuse", "FUSION_METHODS"]

Run = Mapping[str, Mapping[str, float]]

FUSION_METHODS = ("linear", "rrf")


def _check_finite(scores: Mapping[str, float], where: str = "") -> None:
    for did, s in scores.items():
        if not math.isfinite(float(s)):
            raise ValueError(f"non-finite score {s!r} for doc {did!r}{where}")


def rank_items(scores: Mapping[str, float], top_k: int | None = None) -> list[tuple[str, float]]:
    """``(doc_id, score)`` pairs sorted by score descending, then doc id
    ascending, cut to ``top_k`` (``None``: no cut)."""
    items = sorted(((str(d), float(s)) for d, s in scores.items()), key=lambda kv: (-kv[1], kv[0]))
    return items if top_k is None else items[:top_k]


def minmax_normalize(scores: Mapping[str, float], eps: float = 1e-8) -> dict[str, float]:
    """Min-max normalise one query's scores: ``(s - min) / (max - min + eps)``.

    Empty input gives an empty dict; all-equal scores all map to 0."""
    if not scores:
        return {}
    _check_finite(scores)
    vals = [float(s) for s in scores.values()]
    lo, hi = min(vals), max(vals)
    denom = hi - lo + eps
    return {str(d): (float(s) - lo) / denom for d, s in scores.items()}


def _check_top_k(top_k: int) -> int:
    top_k = int(top_k)
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    return top_k


def fuse_linear(
    dense: Run,
    sparse: Run,
    w_dense: float = 0.7,
    w_sparse: float = 0.3,
    top_k: int = 1000,
    eps: float = 1e-8,
) -> dict[str, dict[str, float]]:
    """Linear min-max fusion of a dense and a sparse run (see module docstring)."""
    top_k = _check_top_k(top_k)
    out: dict[str, dict[str, float]] = {}
    qids = list(dict.fromkeys([str(q) for q in dense] + [str(q) for q in sparse]))
    dense_s = {str(q): v for q, v in dense.items()}
    sparse_s = {str(q): v for q, v in sparse.items()}
    for qid in qids:
        fused: dict[str, float] = {}
        for run, w, name in ((dense_s, w_dense, "dense"), (sparse_s, w_sparse, "sparse")):
            lst = run.get(qid) or {}
            if not lst:
                continue
            _check_finite(lst, f" in the {name} run, query {qid!r}")
            kept = dict(rank_items(lst, top_k))
            for did, s in minmax_normalize(kept, eps).items():
                fused[did] = fused.get(did, 0.0) + w * s
        out[qid] = dict(rank_items(fused, top_k))
    return out


def fuse_linear_arrays(dense_pos, dense_scores, sparse_pos, sparse_scores, id_rank, w_dense: float = 0.7,
                       w_sparse: float = 0.3, eps: float = 1e-8, k: int | None = None):
    """:func:`fuse_linear` for one query on arrays (the query server's fast path), same numbers.

    ``*_pos`` are the positions of each list's documents in one shared document list, ``*_scores``
    their scores (each list already cut to its depth, in any order); ``id_rank[p]`` is the rank of
    document ``p``'s id in ascending string order (the tie-break). Returns ``(positions, fused
    scores)`` of the union in rank order (score descending, then doc id ascending), only the first
    ``k`` of them when ``k`` is given (selected before sorting: cheaper, same result).
    """
    import numpy as np

    parts_pos, parts_val = [], []
    for pos, scores, w, name in ((dense_pos, dense_scores, w_dense, "dense"), (sparse_pos, sparse_scores, w_sparse,
                                                                                "sparse")):
        if len(pos) == 0:
            continue
        sc = np.asarray(scores, dtype=np.float64)
        if not np.isfinite(sc).all():
            raise ValueError(f"non-finite score in the {name} list")
        lo, hi = sc.min(), sc.max()
        parts_pos.append(np.asarray(pos, dtype=np.int64))
        parts_val.append(w * ((sc - lo) / (hi - lo + eps)))
    if not parts_pos:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
    pos = np.concatenate(parts_pos)
    uniq, inv = np.unique(pos, return_inverse=True)
    # bincount adds in input order (dense, then sparse) from 0.0, as fuse_linear's dict does
    fused = np.bincount(inv, weights=np.concatenate(parts_val), minlength=len(uniq))
    if k is not None and len(fused) > k:
        keep = fused >= np.partition(fused, len(fused) - k)[len(fused) - k]  # the k best and any ties with them
        uniq, fused = uniq[keep], fused[keep]
    order = np.lexsort((np.asarray(id_rank)[uniq], -fused))[:k]
    return uniq[order], fused[order]


def fuse_rrf(runs: Sequence[Run], k: int = 60, top_k: int = 1000) -> dict[str, dict[str, float]]:
    """Reciprocal rank fusion: ``score(d) = sum_r 1 / (k + rank_r(d))``, ranks
    from 1 within each run's list cut to ``top_k``; output cut to ``top_k``."""
    if isinstance(runs, Mapping):
        raise TypeError("fuse_rrf takes a list of runs, not a single run")
    if len(runs) == 0:
        raise ValueError("fuse_rrf needs at least one run")
    if k < 0:
        raise ValueError(f"RRF constant k must be >= 0, got {k}")
    top_k = _check_top_k(top_k)
    qids = list(dict.fromkeys(str(q) for run in runs for q in run))
    runs_s = [{str(q): v for q, v in run.items()} for run in runs]
    out: dict[str, dict[str, float]] = {}
    for qid in qids:
        fused: dict[str, float] = {}
        for i, run in enumerate(runs_s):
            lst = run.get(qid) or {}
            if not lst:
                continue
            _check_finite(lst, f" in run {i}, query {qid!r}")
            for rank, (did, _) in enumerate(rank_items(lst, top_k), start=1):
                fused[did] = fused.get(did, 0.0) + 1.0 / (k + rank)
        out[qid] = dict(rank_items(fused, top_k))
    return out


def fuse(dense: Run, sparse: Run, method: str = "linear", **kw) -> dict[str, dict[str, float]]:
    """Dispatch to :func:`fuse_linear` (``method="linear"``; keywords ``w_dense``,
    ``w_sparse``, ``top_k``, ``eps``) or :func:`fuse_rrf` (``method="rrf"``;
    keywords ``k``, ``top_k``)."""
    if method == "linear":
        return fuse_linear(dense, sparse, **kw)
    if method == "rrf":
        return fuse_rrf([dense, sparse], **kw)
    raise ValueError(f"unknown fusion method {method!r}; expected one of {FUSION_METHODS}")
