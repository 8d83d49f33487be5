"""reports.stats: the paired t-test against a hand computation, Holm's correction by hand."""
from __future__ import annotations

import math

import pytest

from reports import stats


def test_paired_t_test_matches_a_hand_computation():
    a, b = [0.5, 0.7, 0.2, 0.9], [0.4, 0.6, 0.3, 0.5]
    # differences 0.1, 0.1, -0.1, 0.4: mean 0.125, sample variance 0.1275 / 3 = 0.0425, t = 0.125 / sqrt(0.0425 / 4)
    t = 0.125 / math.sqrt(0.0425 / 4)
    assert t == pytest.approx(1.21268, abs=1e-5)
    # Student's t with 3 degrees of freedom has a closed-form CDF:
    # F(t) = 1/2 + (1/pi) (u / (1 + u^2) + atan(u)), u = t / sqrt(3)
    u = t / math.sqrt(3)
    p = 2 * (1 - (0.5 + (u / (1 + u * u) + math.atan(u)) / math.pi))
    assert p == pytest.approx(0.3120, abs=1e-4)
    assert stats.paired_t_test(a, b) == pytest.approx(p, rel=1e-9)


def test_paired_t_test_edge_cases():
    assert stats.paired_t_test([0.3, 0.4], [0.3, 0.4]) == 1.0  # no difference at all
    assert stats.paired_t_test([0.5, 0.6, 0.7], [0.4, 0.5, 0.6]) == 0.0  # the same difference everywhere
    with pytest.raises(ValueError, match="at least two"):
        stats.paired_t_test([0.1], [0.2])
    with pytest.raises(ValueError, match="equal lengths"):
        stats.paired_t_test([0.1, 0.2], [0.2])


def test_holm_by_hand():
    # sorted 0.01, 0.03, 0.04 times 3, 2, 1 -> 0.03, 0.06, 0.04 -> made monotone: 0.03, 0.06, 0.06
    assert stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert stats.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert stats.holm([]) == []


def test_compare_uses_the_shared_queries_and_a_retention_factor():
    a = {"q1": 0.5, "q2": 0.7, "q3": 0.2, "q4": 0.9, "only_a": 1.0}
    b = {"q1": 0.4, "q2": 0.6, "q3": 0.3, "q4": 0.5, "only_b": 0.0}
    diff, p = stats.compare(a, b)
    assert diff == pytest.approx(0.125) and p == pytest.approx(stats.paired_t_test([.5, .7, .2, .9], [.4, .6, .3, .5]))
    diff, _ = stats.compare(a, b, factor=0.5)  # a - 0.5 b: 2.3 / 4 - 0.5 * 1.8 / 4
    assert diff == pytest.approx(0.575 - 0.225)
    assert stats.compare(a, None) is None and stats.compare({"q1": 1.0}, {"q1": 0.0}) is None
