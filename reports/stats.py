"""Paired significance tests on per-query scores, with Holm's correction for several comparisons.

    from reports.stats import paired_t_test, holm
    p = paired_t_test([0.5, 0.7, 0.2], [0.4, 0.6, 0.2])     # two-sided p-value
    holm([0.01, 0.04, 0.03])                                # adjusted p-values, same order

Per-query scores come from ``per_query.json.gz`` beside each metrics.json
(``lr_core.retrieval.metrics.write_per_query``); two results are compared on the queries both scored.
"""
from __future__ import annotations

import math
import os
from collections.abc import Sequence

ALPHA = 0.05  # significance level after correction
TEST_NAME = "paired two-sided t-test on per-query nDCG@10, Holm-corrected"


def paired_t_test(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided p-value of the paired t-test of mean(a - b) = 0. Needs two or more pairs.
    All differences equal: p = 1 when they are zero, else 0 (the t statistic is infinite)."""
    from scipy import stats

    if len(a) != len(b):
        raise ValueError(f"paired test needs equal lengths, got {len(a)} and {len(b)}")
    if len(a) < 2:
        raise ValueError("paired test needs at least two pairs")
    d = [x - y for x, y in zip(a, b)]
    mean = math.fsum(d) / len(d)
    var = math.fsum((x - mean) ** 2 for x in d) / (len(d) - 1)
    if var == 0.0:
        return 1.0 if mean == 0.0 else 0.0
    t = mean / math.sqrt(var / len(d))
    return float(2 * stats.t.sf(abs(t), df=len(d) - 1))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (in the input order): the i-th smallest of m is
    multiplied by (m - i), made monotone, capped at 1."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def paired_scores(a: dict[str, float], b: dict[str, float]) -> tuple[list[float], list[float]]:
    """The two score lists over the queries both sides scored, in one order."""
    common = sorted(set(a) & set(b))
    return [a[q] for q in common], [b[q] for q in common]


_CACHE: dict[tuple, dict] = {}


def cell_scores(rows: list[dict], metric: str = "ndcg@10") -> dict[str, float] | None:
    """Per-query scores of several results of one cell (e.g. seeds), averaged per query over the
    queries all of them scored; None if any result has no per-query file (older results)."""
    from lr_core.retrieval.metrics import read_per_query

    if not rows or any(not r.get("per_query") for r in rows):
        return None
    maps = []
    for r in rows:
        path = r["per_query"]
        st = os.stat(path)
        key = (path, st.st_mtime_ns, st.st_size)  # a file rewritten in place is read again
        if key not in _CACHE:
            _CACHE[key] = read_per_query(path)
        if metric not in _CACHE[key]:
            return None
        maps.append(_CACHE[key][metric])
    common = set.intersection(*(set(m) for m in maps))
    return {q: sum(m[q] for m in maps) / len(maps) for q in common}


def compare(a: dict[str, float] | None, b: dict[str, float] | None, factor: float = 1.0):
    """(mean of a - factor * b, two-sided p) over the queries both scored, or None when either
    side has no per-query scores or fewer than two queries are shared. ``factor`` < 1 turns the
    test into a retention test (is a at least ``factor`` of b?)."""
    if a is None or b is None:
        return None
    x, y = paired_scores(a, b)
    if len(x) < 2:
        return None
    y = [factor * v for v in y]
    return math.fsum(p - q for p, q in zip(x, y)) / len(x), paired_t_test(x, y)
