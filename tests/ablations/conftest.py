"""Fixtures for the per-variant tests: a freshly built (untrained) module of a variant."""
from __future__ import annotations

import pytest

from lr_core.variants import get_variant

from tests.helpers import REPO, fast_config


@pytest.fixture
def make_module(tmp_path):
    """``make_module("a3_one_layer_query", "loss.kl_sparse=true")`` -> the variant's module on the tiny Llama."""

    def make(variant: str, *overrides: str):
        cfg = fast_config(REPO / "experiments" / "tiny.yaml", tmp_path, [f"variant={variant}", "model.lora.dropout=0.0",
                                                                          *overrides])
        return get_variant(variant).cls(cfg)

    return make


INSTRUCTION = "Given a scientific claim, retrieve documents that support or refute the claim"
QUERIES = ["the cat sat on the mat", "rna polymerase binds promoters", "cat cat dog"]
