"""MRL: the summed prefix loss with d = H alone is the plain loss; serving truncates and re-normalises."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lr_core.losses import contrastive_loss, mrl_contrastive_loss
from lr_core.retrieval.dense_index import DenseIndex


def test_full_width_equals_plain_loss():
    q, p = F.normalize(torch.randn(2, 16), dim=-1), F.normalize(torch.randn(6, 16), dim=-1)
    plain = contrastive_loss(q, p, 3, 0.02, gather=False)["loss"]
    assert torch.allclose(mrl_contrastive_loss(q, p, 3, 0.02, [16], gather=False)["loss"], plain)
    two = mrl_contrastive_loss(q, p, 3, 0.02, [4, 16], gather=False)["loss"]
    prefix = contrastive_loss(F.normalize(q[:, :4], dim=-1), F.normalize(p[:, :4], dim=-1), 3, 0.02, gather=False)
    assert torch.allclose(two, plain + prefix["loss"])
    with pytest.raises(ValueError):
        mrl_contrastive_loss(q, p, 3, 0.02, [32], gather=False)


def test_module_always_includes_full_width(make_module):
    m = make_module("mrl", "loss.mrl_dims=[8,16,1000]")
    assert m.mrl_dims() == [8, 16, m.encoder.hidden_size]


def test_search_at_prefix_dimension():
    rng = np.random.default_rng(0)
    docs = rng.normal(size=(20, 16)).astype(np.float32)
    index = DenseIndex(docs, [f"d{i}" for i in range(20)], dim=4)
    q = rng.normal(size=(1, 16)).astype(np.float32)
    scores, hits = index.search(q, 20)
    cut = docs[:, :4] / np.linalg.norm(docs[:, :4], axis=1, keepdims=True)
    qc = q[:, :4] / np.linalg.norm(q[:, :4])
    np.testing.assert_allclose(np.sort(scores[0])[::-1], np.sort(cut @ qc[0])[::-1], rtol=1e-5)
