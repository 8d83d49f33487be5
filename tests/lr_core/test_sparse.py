"""Tests for lr_core.sparse (fast: small tensors, CPU only)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lr_core.sparse import (
    SparseMaxProjection,
    flops_regularizer,
    naive_sparse_doc_vectors,
    quantize_impact,
    query_term_vector,
    sparse_doc_mask,
    sparse_doc_vectors,
    sparse_query_vectors,
    top_k_terms,
)


def _inputs(B=3, L=9, H=6, V=13, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(B, L, H, generator=g, dtype=dtype)
    weight = torch.randn(V, H, generator=g, dtype=dtype)
    mask = torch.rand(B, L, generator=g) > 0.3
    mask[0, :] = True  # one row fully counted
    mask[-1, :] = False  # one row fully masked
    return hidden, weight, mask


def _fwd_bwd(fn, hidden, weight, mask, **kw):
    h = hidden.clone().requires_grad_(True)
    w = weight.clone().requires_grad_(True)
    out = fn(h, w, mask, **kw)
    upstream = torch.linspace(0.5, 1.5, out.numel(), dtype=out.dtype).view_as(out)
    (out * upstream).sum().backward()
    return out.detach(), h.grad, w.grad


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fused_matches_naive_values_and_grads(dtype):
    hidden, weight, mask = _inputs(dtype=dtype)
    out_f, gh_f, gw_f = _fwd_bwd(sparse_doc_vectors, hidden, weight, mask, chunk_size=4)
    out_n, gh_n, gw_n = _fwd_bwd(naive_sparse_doc_vectors, hidden, weight, mask)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-12)
    assert out_f.dtype == dtype
    torch.testing.assert_close(out_f, out_n, **tol)
    torch.testing.assert_close(gh_f, gh_n, **tol)
    torch.testing.assert_close(gw_f, gw_n, **tol)
    # The comparison is meaningful: some terms are active and gradients are non-trivial.
    assert (out_f > 0).any() and gh_f.abs().sum() > 0 and gw_f.abs().sum() > 0


def test_fully_masked_row_is_zero_without_nan():
    hidden, weight, mask = _inputs()
    out, gh, gw = _fwd_bwd(sparse_doc_vectors, hidden, weight, mask, chunk_size=2)
    assert torch.isfinite(out).all() and torch.isfinite(gh).all() and torch.isfinite(gw).all()
    assert torch.equal(out[-1], torch.zeros_like(out[-1]))
    assert torch.equal(gh[-1], torch.zeros_like(gh[-1]))
    raw = SparseMaxProjection.apply(hidden, weight, mask, 3)
    assert torch.isfinite(raw).all()
    assert (raw[-1] == torch.finfo(raw.dtype).min).all()
    # Masked positions of partially masked rows never receive gradient either.
    assert torch.equal(gh[~mask], torch.zeros_like(gh[~mask]))


def test_gradients_only_reach_argmax_positions():
    hidden, weight, mask = _inputs(B=1, L=6, H=4, V=5, seed=3)
    mask[:] = True
    h = hidden.clone().requires_grad_(True)
    SparseMaxProjection.apply(h, weight, mask, 2).sum().backward()
    argmax = (hidden @ weight.T).argmax(dim=1)[0]
    expected = torch.zeros_like(hidden)
    for v, t in enumerate(argmax.tolist()):
        expected[0, t] += weight[v]
    torch.testing.assert_close(h.grad, expected)


def test_gradcheck_float64():
    torch.manual_seed(0)
    B, L, H, V = 2, 5, 4, 7
    hidden = torch.randn(B, L, H, dtype=torch.float64)
    weight = torch.randn(V, H, dtype=torch.float64)
    mask = torch.ones(B, L, dtype=torch.bool)
    mask[1, 0] = mask[1, 3] = False
    # No near-ties among the counted logits of any (b, v), so max is locally smooth.
    logits = (hidden @ weight.T).masked_fill(~mask.unsqueeze(-1), float("-inf"))
    top2 = logits.topk(2, dim=1).values
    assert (top2[:, 0] - top2[:, 1]).min() > 1e-3
    h = hidden.clone().requires_grad_(True)
    w = weight.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda a, b: SparseMaxProjection.apply(a, b, mask, 2), (h, w), eps=1e-6, atol=1e-6
    )
    # Also through log1p(relu(.)); keep positive max logits away from the relu kink.
    assert top2[:, 0].abs().min() > 1e-3
    assert torch.autograd.gradcheck(
        lambda a, b: sparse_doc_vectors(a, b, mask, chunk_size=3), (h, w), eps=1e-6, atol=1e-6
    )


def test_chunk_sizes_give_identical_results():
    hidden, weight, mask = _inputs(B=2, L=7, seed=5)
    results = [
        _fwd_bwd(sparse_doc_vectors, hidden, weight, mask, chunk_size=c) for c in (1, 3, 7, 50)
    ]
    for out, gh, gw in results[1:]:
        # Same max and same routing; only BLAS blocking of the chunked matmul may differ in
        # the last bits, hence the float64 tolerance rather than bit equality.
        torch.testing.assert_close(out, results[0][0], rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(gh, results[0][1], rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(gw, results[0][2], rtol=1e-12, atol=1e-12)
        assert torch.equal(gh != 0, results[0][1] != 0)


def test_frozen_weight_gets_no_grad_and_hidden_grad_matches():
    hidden, weight, mask = _inputs(dtype=torch.float32)
    h = hidden.clone().requires_grad_(True)
    sparse_doc_vectors(h, weight, mask).sum().backward()
    h2 = hidden.clone().requires_grad_(True)
    naive_sparse_doc_vectors(h2, weight, mask).sum().backward()
    assert weight.grad is None
    torch.testing.assert_close(h.grad, h2.grad)


def test_bfloat16_close_to_float32():
    hidden, weight, mask = _inputs(B=2, L=8, H=16, V=32, dtype=torch.float32, seed=7)
    hb, wb = hidden.to(torch.bfloat16), weight.to(torch.bfloat16)
    out_b, gh_b, gw_b = _fwd_bwd(sparse_doc_vectors, hb, wb, mask, chunk_size=3)
    out_n, gh_n, gw_n = _fwd_bwd(naive_sparse_doc_vectors, hb.float(), wb.float(), mask)
    assert out_b.dtype == gh_b.dtype == gw_b.dtype == torch.bfloat16
    torch.testing.assert_close(out_b.float(), out_n, rtol=2e-2, atol=2e-2)
    torch.testing.assert_close(gh_b.float(), gh_n, rtol=2e-2, atol=5e-2)
    torch.testing.assert_close(gw_b.float(), gw_n, rtol=2e-2, atol=5e-2)


def test_bad_arguments_raise():
    hidden, weight, mask = _inputs()
    with pytest.raises(ValueError):
        sparse_doc_vectors(hidden, weight, mask, chunk_size=0)
    with pytest.raises(ValueError):
        sparse_doc_vectors(hidden, weight[:, :3], mask)
    with pytest.raises(ValueError):
        sparse_doc_vectors(hidden, weight, mask[:, :4])


# ---------------------------------------------------------------- document mask


def test_doc_mask_excludes_padding_and_special_tokens():
    BOS, EOS, PAD = 1, 2, 0
    ids = torch.tensor([[BOS, 7, 8, EOS, PAD, PAD], [BOS, 9, 7, 8, 9, EOS]])
    att = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])
    mask = sparse_doc_mask(ids, att, special_ids=[BOS, EOS, PAD, None])
    expected = torch.tensor(
        [[False, True, True, False, False, False], [False, True, True, True, True, False]]
    )
    assert mask.dtype == torch.bool
    assert torch.equal(mask, expected)
    # Padding is excluded through attention_mask even if its id is not listed as special.
    ids2 = torch.tensor([[5, 6, 3]])
    assert torch.equal(
        sparse_doc_mask(ids2, torch.tensor([[1, 1, 0]]), []), torch.tensor([[True, True, False]])
    )


def test_eos_position_cannot_win_the_max():
    BOS, EOS = 1, 2
    ids = torch.tensor([[BOS, 10, 11, EOS]])
    att = torch.ones_like(ids)
    H, V = 3, 4
    weight = torch.eye(V, H, dtype=torch.float64)
    hidden = torch.tensor([[[0.1, 0.0, 0.0], [0.5, 0.2, 0.0], [0.3, 0.4, 0.0], [9.0, 9.0, 9.0]]],
                          dtype=torch.float64)
    mask = sparse_doc_mask(ids, att, [BOS, EOS])
    out = sparse_doc_vectors(hidden, weight, mask, chunk_size=2)
    expected = torch.log1p(torch.tensor([[0.5, 0.4, 0.0, 0.0]], dtype=torch.float64))
    torch.testing.assert_close(out, expected)
    # Without the exclusion the EOS position would dominate every term.
    unmasked = sparse_doc_vectors(hidden, weight, att.bool(), chunk_size=2)
    assert (unmasked[0, :3] == torch.log1p(torch.tensor(9.0, dtype=torch.float64))).all()


# ---------------------------------------------------------------- query side


def test_query_term_vector_counts_and_bow():
    ids = [5, 3, 5, 5, 9]
    assert query_term_vector(ids) == {5: 3.0, 3: 1.0, 9: 1.0}
    assert query_term_vector(ids, mode="counts") == {5: 3.0, 3: 1.0, 9: 1.0}
    assert query_term_vector(ids, mode="bow") == {5: 1.0, 3: 1.0, 9: 1.0}
    assert query_term_vector([]) == {}
    assert all(isinstance(v, float) for v in query_term_vector(ids).values())
    with pytest.raises(ValueError, match="counts.*bow"):
        query_term_vector(ids, mode="tfidf")


def test_sparse_query_vectors_dense():
    q = sparse_query_vectors([[4, 4, 1], [], [0]], vocab_size=6)
    expected = torch.tensor(
        [[0, 1, 0, 0, 2, 0], [0, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0]], dtype=torch.float32
    )
    assert torch.equal(q, expected)
    qb = sparse_query_vectors([[4, 4, 1]], vocab_size=6, mode="bow", dtype=torch.float64)
    assert qb.dtype == torch.float64
    assert qb.tolist() == [[0, 1, 0, 0, 1, 0]]
    with pytest.raises(ValueError, match="vocab_size"):
        sparse_query_vectors([[1, 6]], vocab_size=6)


# ---------------------------------------------------------------- regulariser


def test_flops_regularizer_hand_computed():
    docs = torch.tensor([[1.0, 0.0, -2.0], [3.0, 0.0, 0.0]])
    # column means of |w|: [2, 0, 1] -> 4 + 0 + 1
    assert flops_regularizer(docs).item() == pytest.approx(5.0)
    docs.requires_grad_(True)
    flops_regularizer(docs).backward()
    # d/dw_it = 2 * mean_t * sign(w_it) / N
    torch.testing.assert_close(docs.grad, torch.tensor([[2.0, 0.0, -1.0], [2.0, 0.0, 0.0]]))


# ---------------------------------------------------------------- index helpers


def test_quantize_impact_dict_and_array():
    assert quantize_impact({3: 0.514, 8: 0.004, 9: 1.2, 4: 0.0}) == {3: 51, 9: 120}
    arr = np.array([0.0, 0.25, 0.0078125, 2.0], dtype=np.float32)
    assert quantize_impact(arr) == {1: 25, 3: 200}
    assert quantize_impact(arr, scale=1000.0) == {1: 250, 2: 7, 3: 2000}
    # dict and array paths agree on the same stored values (both computed in float64)
    vals = np.array([0.0, 0.29, 0.57, 1.13])
    assert quantize_impact(vals) == quantize_impact(dict(enumerate(vals.tolist())))
    assert quantize_impact(torch.tensor([0.0, 0.5])) == {1: 50}
    out = quantize_impact({7: 0.5})
    assert all(type(k) is int and type(v) is int for k, v in out.items())
    with pytest.raises(ValueError):
        quantize_impact({1: -0.5})


def test_top_k_terms_with_ties():
    w = {5: 0.3, 2: 0.3, 9: 0.1, 1: 0.7}
    assert top_k_terms(w, 1) == {1: 0.7}
    assert list(top_k_terms(w, 2)) == [1, 2]  # tie 0.3: smaller id 2 beats 5
    assert list(top_k_terms(w, 3)) == [1, 2, 5]
    assert top_k_terms(w, 10) == w
    with pytest.raises(ValueError):
        top_k_terms(w, 0)
