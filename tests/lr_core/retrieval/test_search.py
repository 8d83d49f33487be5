"""lr_core.retrieval.search: what the exact indexes share (runs from ranked results).
"""
from __future__ import annotations

import numpy as np
import pytest

from lr_core.retrieval.search import run_from_results


def test_run_from_results():
    run = run_from_results(["q1", "q2"], [np.array([2.0, 1.0]), np.array([])], [["a", "b"], []])
    assert run == {"q1": {"a": 2.0, "b": 1.0}, "q2": {}}
    assert list(run["q1"]) == ["a", "b"]
    with pytest.raises(ValueError):
        run_from_results(["q1"], [[1.0]], [["a"], ["b"]])
    with pytest.raises(ValueError):
        run_from_results(["q", "q"], [[1.0], [1.0]], [["a"], ["b"]])
