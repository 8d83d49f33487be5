"""Sparse (lexical) side of LightRetriever: the one place for sparse vectors.

Document side (METHOD.md section 3)::

    w_d = max_t log(1 + relu(h_t . P))        # P = the model's own LM head [V, H]

where the max runs over real text positions only (no padding, BOS, EOS).
Because ``log1p`` and ``relu`` are monotone, the max can be taken over the raw
logits first and the non-linearity applied to the [B, V] result, which is what
:func:`sparse_doc_vectors` does through :class:`SparseMaxProjection`, a custom
autograd function that never materialises the [B, L, V] logits.

Query side: no encoder, just token counts (:func:`query_term_vector`).

Example::

    >>> import torch
    >>> from lr_core.sparse import sparse_doc_mask, sparse_doc_vectors, sparse_query_vectors
    >>> ids = torch.tensor([[1, 5, 6, 2, 0]])          # BOS a b EOS PAD
    >>> att = torch.tensor([[1, 1, 1, 1, 0]])
    >>> mask = sparse_doc_mask(ids, att, special_ids=[0, 1, 2])
    >>> hidden, head = torch.randn(1, 5, 4), torch.randn(10, 4)
    >>> docs = sparse_doc_vectors(hidden, head, mask)  # [1, 10], >= 0
    >>> queries = sparse_query_vectors([[5, 5, 7]], vocab_size=10)
    >>> scores = queries @ docs.T                       # tau_sparse = 1.0
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import torch

__all__ = [
    "SparseMaxProjection",
    "sparse_doc_vectors",
    "naive_sparse_doc_vectors",
    "sparse_doc_mask",
    "query_term_vector",
    "sparse_query_vectors",
    "flops_regularizer",
    "quantize_impact",
    "top_k_terms",
    "QUERY_MODES",
]

QUERY_MODES = ("counts", "bow")

# Low-precision dtypes whose gradient sums are accumulated in float32.
_LOW_PRECISION = (torch.float16, torch.bfloat16)


def _check_projection_args(hidden, weight, mask, chunk_size):
    if hidden.dim() != 3:
        raise ValueError(f"hidden must be [B, L, H], got shape {tuple(hidden.shape)}")
    if weight.dim() != 2 or weight.shape[1] != hidden.shape[2]:
        raise ValueError(
            f"weight must be [V, H] with H={hidden.shape[2]}, got shape {tuple(weight.shape)}"
        )
    if tuple(mask.shape) != tuple(hidden.shape[:2]):
        raise ValueError(
            f"mask must be [B, L] = {tuple(hidden.shape[:2])}, got shape {tuple(mask.shape)}"
        )
    if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}")
    if not hidden.is_floating_point() or not weight.is_floating_point():
        raise TypeError("hidden and weight must be floating point tensors")


class SparseMaxProjection(torch.autograd.Function):
    """max_t over counted positions of ``hidden[:, t] @ weight.T``, in O(B*chunk*V) memory.

    ``SparseMaxProjection.apply(hidden [B,L,H], weight [V,H], mask [B,L] bool, chunk_size)``
    returns ``max_logits [B, V]``. Positions where ``mask`` is False never win the max.
    A row with no counted position gets ``finfo(dtype).min`` (finite, so
    ``log1p(relu(.))`` gives 0 and nothing becomes NaN) and receives no gradient.

    The forward pass walks the sequence ``chunk_size`` positions at a time and
    keeps a running max and argmax; backward sends each (b, v) gradient only to
    its argmax position, which is exactly the subgradient of max that
    ``torch.max(dim=...)`` uses.

    Example::

        >>> h = torch.randn(2, 7, 4, requires_grad=True)
        >>> W = torch.randn(11, 4, requires_grad=True)
        >>> m = torch.ones(2, 7, dtype=torch.bool)
        >>> out = SparseMaxProjection.apply(h, W, m, 3)   # [2, 11]
        >>> out.sum().backward()
    """

    @staticmethod
    def forward(ctx, hidden, weight, mask, chunk_size):
        _check_projection_args(hidden, weight, mask, chunk_size)
        dtype = torch.promote_types(hidden.dtype, weight.dtype)
        h = hidden.to(dtype)
        w = weight.to(dtype)
        mask = mask.to(device=hidden.device, dtype=torch.bool)
        B, L, _ = h.shape
        V = w.shape[0]

        # Max is exact in any dtype, so the running max stays in the input dtype.
        run_max = torch.full((B, V), torch.finfo(dtype).min, dtype=dtype, device=h.device)
        run_arg = torch.full((B, V), -1, dtype=torch.long, device=h.device)
        for t0 in range(0, L, chunk_size):
            t1 = min(t0 + chunk_size, L)
            m = mask[:, t0:t1]
            if not bool(m.any()):
                continue
            # 2-D matmul of a contiguous copy: a batched matmul of the strided slice is ~2x slower on CPU.
            logits = (h[:, t0:t1].reshape(-1, h.shape[2]) @ w.T).view(B, t1 - t0, V)  # the only big buffer
            # -inf never beats finfo.min below, so masked positions can't become argmax.
            logits.masked_fill_(~m.unsqueeze(-1), float("-inf"))
            vals, idx = logits.max(dim=1)
            del logits
            # Strict '>' keeps the earliest position on exact ties (deterministic).
            better = vals > run_max
            run_max = torch.where(better, vals, run_max)
            run_arg = torch.where(better, idx + t0, run_arg)

        ctx.save_for_backward(hidden, weight, run_arg)
        ctx.chunk_size = chunk_size
        ctx.compute_dtype = dtype
        return run_max

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        hidden, weight, run_arg = ctx.saved_tensors
        need_h, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        if not (need_h or need_w):
            return None, None, None, None
        dtype = ctx.compute_dtype
        # Sums over many positions/rows lose precision in bf16/fp16: accumulate in fp32.
        acc = torch.float32 if dtype in _LOW_PRECISION else dtype
        h = hidden.to(dtype)
        w = weight.to(dtype)
        g = grad_out.to(dtype)
        B, L, H = h.shape

        grad_h = torch.zeros((B, L, H), dtype=dtype, device=h.device) if need_h else None
        grad_w = torch.zeros(w.shape, dtype=acc, device=w.device) if need_w else None
        for t0 in range(0, L, ctx.chunk_size):
            t1 = min(t0 + ctx.chunk_size, L)
            pos = torch.arange(t0, t1, device=h.device).view(1, -1, 1)
            routed = run_arg.unsqueeze(1) == pos  # [B, c, V]: argmax lies at this position
            if not bool(routed.any()):
                continue
            g_chunk = torch.where(routed, g.unsqueeze(1), torch.zeros((), dtype=dtype, device=g.device))
            if need_h:
                grad_h[:, t0:t1] = torch.matmul(g_chunk, w)  # [B, c, H]
            if need_w:
                c = t1 - t0
                gv = g_chunk.reshape(B * c, -1).T.to(acc)  # [V, B*c]
                grad_w += gv @ h[:, t0:t1].reshape(B * c, H).to(acc)
            del g_chunk, routed

        if grad_h is not None:
            grad_h = grad_h.to(hidden.dtype)
        if grad_w is not None:
            grad_w = grad_w.to(weight.dtype)
        return grad_h, grad_w, None, None


def sparse_doc_vectors(
    hidden: torch.Tensor,
    lm_head_weight: torch.Tensor,
    mask: torch.Tensor,
    chunk_size: int = 16,
) -> torch.Tensor:
    """Document sparse vectors ``[B, V] = log1p(relu(max_t hidden_t @ W.T))`` without [B, L, V].

    ``mask`` [B, L] bool marks the positions that count (see :func:`sparse_doc_mask`).
    Taking the max before ``log1p(relu(.))`` is exact because both are monotone.

    Example::

        vecs = sparse_doc_vectors(last_hidden, model.lm_head.weight, mask, chunk_size=16)
    """
    max_logits = SparseMaxProjection.apply(hidden, lm_head_weight, mask, chunk_size)
    return torch.log1p(torch.relu(max_logits))


def naive_sparse_doc_vectors(
    hidden: torch.Tensor, lm_head_weight: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """Reference implementation: materialises [B, L, V]. Tests and benchmarks only.

    Example::

        ref = naive_sparse_doc_vectors(hidden, head, mask)   # same values as sparse_doc_vectors
    """
    _check_projection_args(hidden, lm_head_weight, mask, 1)
    dtype = torch.promote_types(hidden.dtype, lm_head_weight.dtype)
    logits = torch.matmul(hidden.to(dtype), lm_head_weight.to(dtype).T)  # [B, L, V]
    w = torch.log1p(torch.relu(logits))
    # w >= 0, so filling excluded positions with 0 never changes a max (and empty rows give 0).
    w = w.masked_fill(~mask.to(torch.bool).unsqueeze(-1), 0.0)
    return w.max(dim=1).values


def sparse_doc_mask(
    input_ids: torch.Tensor, attention_mask: torch.Tensor, special_ids: Iterable[int]
) -> torch.Tensor:
    """Positions that count for the document max-pool: real text tokens only.

    Excludes padding (``attention_mask == 0``) and every token whose id is in
    ``special_ids`` (pass BOS, EOS and pad ids; ``None`` entries are ignored so
    ``tokenizer.bos_token_id`` can be passed as-is).

    Example::

        specials = [tok.bos_token_id, tok.eos_token_id, tok.pad_token_id]
        mask = sparse_doc_mask(batch["input_ids"], batch["attention_mask"], specials)
    """
    if input_ids.shape != attention_mask.shape:
        raise ValueError(
            f"input_ids {tuple(input_ids.shape)} and attention_mask "
            f"{tuple(attention_mask.shape)} must have the same shape"
        )
    keep = attention_mask.to(torch.bool)
    specials = sorted({int(i) for i in special_ids if i is not None})
    if specials:
        special = torch.tensor(specials, dtype=input_ids.dtype, device=input_ids.device)
        keep = keep & ~torch.isin(input_ids, special)
    return keep


def query_term_vector(token_ids: Sequence[int], mode: str = "counts") -> dict[int, float]:
    """Query sparse vector as ``{token_id: weight}``; pure Python, used at serving time.

    ``mode="counts"``: weight = number of occurrences; ``mode="bow"``: 1.0 presence.
    Keys appear in first-occurrence order.

    Example::

        >>> query_term_vector([7, 3, 7])
        {7: 2.0, 3: 1.0}
        >>> query_term_vector([7, 3, 7], mode="bow")
        {7: 1.0, 3: 1.0}
    """
    if mode not in QUERY_MODES:
        raise ValueError(f"unknown query mode {mode!r}; allowed modes: {', '.join(QUERY_MODES)}")
    vec: dict[int, float] = {}
    for tok in token_ids:
        tok = int(tok)
        if tok < 0:
            raise ValueError(f"token ids must be non-negative, got {tok}")
        if mode == "counts":
            vec[tok] = vec.get(tok, 0.0) + 1.0
        else:
            vec[tok] = 1.0
    return vec


def sparse_query_vectors(
    batch_token_ids: Sequence[Sequence[int]],
    vocab_size: int,
    mode: str = "counts",
    dtype: torch.dtype = torch.float32,
    device=None,
) -> torch.Tensor:
    """Dense ``[B, V]`` query vectors built with :func:`query_term_vector` (for training/scoring).

    Example::

        >>> sparse_query_vectors([[4, 4, 1], []], vocab_size=6)
        tensor([[0., 1., 0., 0., 2., 0.],
                [0., 0., 0., 0., 0., 0.]])
    """
    out = torch.zeros((len(batch_token_ids), vocab_size), dtype=dtype, device=device)
    for row, ids in enumerate(batch_token_ids):
        vec = query_term_vector(ids, mode=mode)
        if not vec:
            continue
        too_big = [t for t in vec if t >= vocab_size]
        if too_big:
            raise ValueError(
                f"query {row} has token ids {too_big} >= vocab_size {vocab_size}"
            )
        out[row, list(vec.keys())] = torch.tensor(list(vec.values()), dtype=dtype, device=device)
    return out


def flops_regularizer(doc_vectors: torch.Tensor) -> torch.Tensor:
    """FLOPs regulariser ``sum_t (mean_i |w_t^(i)|)^2`` over a batch of doc vectors [N, V].

    Example::

        loss = loss + lambda_t * flops_regularizer(doc_vecs)   # lambda_t: lr_core.schedules.flops_weight
    """
    if doc_vectors.dim() != 2 or doc_vectors.shape[0] == 0:
        raise ValueError(f"doc_vectors must be a non-empty [N, V] tensor, got {tuple(doc_vectors.shape)}")
    return doc_vectors.abs().mean(dim=0).pow(2).sum()


def quantize_impact(weights, scale: float = 100.0) -> dict[int, int]:
    """Integer impacts ``floor(scale * w)`` for a Lucene impact index, zeros dropped.

    ``weights`` is ``{token_id: weight}`` or a 1-D array indexed by token id
    (numpy, or anything ``np.asarray`` accepts, e.g. a CPU tensor). Both paths
    compute in float64 so they agree on the same stored values. Negative or
    non-finite weights raise ValueError (impacts must be >= 0).

    Example::

        >>> quantize_impact({3: 0.514, 8: 0.004, 9: 1.2})
        {3: 51, 9: 120}
    """
    if isinstance(weights, Mapping):
        ids = np.fromiter((int(k) for k in weights.keys()), dtype=np.int64, count=len(weights))
        vals = np.fromiter((float(v) for v in weights.values()), dtype=np.float64, count=len(weights))
    else:
        if isinstance(weights, torch.Tensor):
            weights = weights.detach().to("cpu", torch.float64).numpy()
        vals = np.asarray(weights, dtype=np.float64)
        if vals.ndim != 1:
            raise ValueError(f"array weights must be 1-D, got shape {vals.shape}")
        ids = np.arange(vals.shape[0], dtype=np.int64)
    if not np.all(np.isfinite(vals)):
        raise ValueError("weights must be finite")
    if np.any(vals < 0):
        raise ValueError("impact weights must be non-negative")
    q = np.floor(vals * float(scale)).astype(np.int64)
    keep = q != 0
    return {int(i): int(v) for i, v in zip(ids[keep], q[keep])}


def top_k_terms(weights: dict[int, float], k: int) -> dict[int, float]:
    """Keep the ``k`` largest terms; ties broken by the smaller token id.

    The result is ordered by decreasing weight (then increasing id).

    Example::

        >>> top_k_terms({5: 0.3, 2: 0.3, 9: 0.1}, k=1)
        {2: 0.3}
    """
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    best = heapq.nsmallest(k, weights.items(), key=lambda kv: (-kv[1], kv[0]))
    return {int(t): w for t, w in best}
