"""Paired significance tests on per-query scores, with Holm's correction for several comparisons.

    from reports.stats import paired_t_test, holm
    p = paired_t_test([0.5, 0.7, 0.2], [0.4, 0.6, 0.2])     # two-sided p-value
    holm([0.01, 0.04, 0.03])                                # adjusted p-values, same order

Per-query scores come from ``per_query.json.gz`` beside each metrics.json
(``lr_core.metrics.write_per_query``); two results are compared on the queries both scored.
"""
from __future__ import annotations

import math
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
