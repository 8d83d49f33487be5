"""lr_core.query_side: the one query-side rule (counts / bag of words) of training, evaluation and serving."""
from __future__ import annotations

import pytest
import torch

from lr_core.query_side import QUERY_MODES, query_term_vector
from lr_core.sparse import sparse_query_vectors


def test_query_term_vector_counts_and_bow():
    ids = [5, 3, 5, 5, 9]
    assert query_term_vector(ids) == {5: 3.0, 3: 1.0, 9: 1.0}
    assert query_term_vector(ids, mode="counts") == {5: 3.0, 3: 1.0, 9: 1.0}
    assert query_term_vector(ids, mode="bow") == {5: 1.0, 3: 1.0, 9: 1.0}
    assert query_term_vector([]) == {}
    assert all(isinstance(v, float) for v in query_term_vector(ids).values())
    with pytest.raises(ValueError, match="counts.*bow"):
        query_term_vector(ids, mode="tfidf")


def test_negative_ids_are_refused():
    with pytest.raises(ValueError, match="non-negative"):
        query_term_vector([3, -1])


def test_training_side_dense_queries_follow_the_same_rule():
    """sparse_query_vectors (the [B, V] tensors training scores with) is this rule, row by row."""
    rows = [[5, 3, 5], [7]]
    for mode in QUERY_MODES:
        dense = sparse_query_vectors(rows, vocab_size=10, mode=mode)
        for r, ids in enumerate(rows):
            want = torch.zeros(10)
            for t, w in query_term_vector(ids, mode).items():
                want[t] = w
            assert torch.equal(dense[r].float(), want)


def test_the_rule_module_imports_neither_torch_nor_numpy():
    """The server imports it: it must stay pure Python (tests/test_layering.py checks the whole package)."""
    import ast
    from pathlib import Path

    import lr_core.query_side as qs

    tree = ast.parse(Path(qs.__file__).read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert imported <= {"__future__", "collections"}
