"""Listwise contrastive loss with in-batch negatives, correct under data parallelism.

Each query is scored against its own group (1 positive + hard negatives) and every other
passage of the *global* batch. Under DDP both queries and passages are gathered from all
ranks; only the local slice keeps its autograd graph. Every rank then computes the loss of
the whole global batch, and :func:`contrastive_loss` returns it multiplied by the world
size for backward, because DDP *averages* gradients across ranks: the average of
world_size x (gradient through the local slice) is exactly the single-process gradient of
the concatenated batch.

>>> q = torch.nn.functional.normalize(torch.randn(2, 8), dim=-1)
>>> p = torch.nn.functional.normalize(torch.randn(6, 8), dim=-1)   # 2 queries x (1 pos + 2 neg)
>>> out = contrastive_loss(q, p, group_size=3, temperature=0.02)
>>> sorted(out)
['backward', 'loss']
"""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` from all ranks in rank order; only this rank's slice carries gradient."""
    if world_size() == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(world_size())]
    dist.all_gather(parts, x.detach().contiguous())
    parts[dist.get_rank()] = x
    return torch.cat(parts, dim=0)


def score_matrix(queries: torch.Tensor, passages: torch.Tensor) -> torch.Tensor:
    """Inner products [Q, P] (cosine for L2-normalised dense vectors, dot for sparse)."""
    return queries @ passages.T


def contrastive_loss(queries: torch.Tensor, passages: torch.Tensor, group_size: int, temperature: float,
                     gather: bool = True) -> dict[str, torch.Tensor]:
    """Cross-entropy of each query over all passages; passage ``i * group_size`` is query i's positive.

    ``queries`` [B, D] and ``passages`` [B * group_size, D] are this rank's. Returns ``loss``
    (the global-batch loss, for logging) and ``backward`` (what to call backward on).
    """
    if passages.size(0) != queries.size(0) * group_size:
        raise ValueError(f"expected {queries.size(0)} x {group_size} passages, got {passages.size(0)}")
    if gather:
        queries, passages = gather_with_grad(queries), gather_with_grad(passages)
    logits = score_matrix(queries, passages).float() / temperature
    target = torch.arange(queries.size(0), device=logits.device) * group_size
    loss = F.cross_entropy(logits, target)
    return {"loss": loss, "backward": loss * (world_size() if gather else 1)}
