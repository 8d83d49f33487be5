"""Listwise contrastive loss with in-batch negatives, correct under data parallelism.

Each query is scored against its own group (1 positive + hard negatives) and every other
passage of the *global* batch. Under DDP both queries and passages are gathered from all
ranks; only the local slice keeps its autograd graph. Every rank then computes the loss of
the whole global batch, and :func:`contrastive_loss` returns it multiplied by the world
size for backward, because DDP *averages* gradients across ranks: the average of
world_size x (gradient through the local slice) is exactly the single-process gradient of
the concatenated batch. :func:`flops_loss` does the same for the FLOPs regulariser (its
per-term means are all-reduced over the global batch), so with ``loss.gathered_loss_scale:
world_size`` (the default) N devices train exactly like one device on the global batch.

Parity with the authors' code (``loss.gathered_loss_scale: none``): their multi-GPU
training gathers the CE the same way but does *not* multiply it by the world size, and
computes the FLOPs term on each rank's own documents. After DDP's averaging their CE
gradient is 1/world_size of the single-device one while the FLOPs gradient keeps its size,
so relative to CE their FLOPs term is effectively world_size times stronger (and the
learning rate acts on a world_size times smaller CE gradient). ``none`` reproduces that
exactly: every term is back-propagated unscaled and FLOPs is per rank. On one device both
settings are identical.

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


GATHERED_LOSS_SCALES = ("world_size", "none")


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


def mrl_contrastive_loss(queries: torch.Tensor, passages: torch.Tensor, group_size: int, temperature: float,
                         dims: list[int], gather: bool = True) -> dict[str, torch.Tensor]:
    """Matryoshka loss: :func:`contrastive_loss` summed over prefixes ``[:d]`` (each re-normalised).

    With ``dims == [H]`` (the full width of L2-normalised inputs) it equals the plain loss.
    """
    width = queries.size(-1)
    bad = [d for d in dims if not 0 < d <= width]
    if bad or not dims:
        raise ValueError(f"MRL dims must be in 1..{width}, got {dims}")
    loss = backward = 0
    for d in dims:
        out = contrastive_loss(F.normalize(queries[:, :d], dim=-1), F.normalize(passages[:, :d], dim=-1),
                               group_size, temperature, gather)
        loss, backward = loss + out["loss"], backward + out["backward"]
    return {"loss": loss, "backward": backward}


def kl_alignment_loss(student_queries: torch.Tensor, teacher_queries: torch.Tensor, passages: torch.Tensor,
                      temperature: float, teacher_passages: torch.Tensor | None = None,
                      teacher_temperature: float | None = None, gather: bool = True) -> dict[str, torch.Tensor]:
    """KL(teacher || student) between softmaxed score rows over the global batch's passages.

    Student rows: ``student_queries @ passages.T / temperature``; teacher rows:
    ``teacher_queries @ teacher_passages.T / teacher_temperature`` (default: the same passages
    and temperature), detached, so the teacher is never pulled towards the student. Row i of
    both is about passage i, which lets a sparse student learn from dense teacher scores.
    """
    teacher_passages = passages if teacher_passages is None else teacher_passages
    teacher_temperature = temperature if teacher_temperature is None else teacher_temperature
    if teacher_passages.size(0) != passages.size(0) or teacher_queries.size(0) != student_queries.size(0):
        raise ValueError("student and teacher must score the same queries and passages")
    if gather:
        student_queries, passages = gather_with_grad(student_queries), gather_with_grad(passages)
        teacher_queries, teacher_passages = gather_with_grad(teacher_queries), gather_with_grad(teacher_passages)
    with torch.no_grad():
        teacher = F.log_softmax(score_matrix(teacher_queries, teacher_passages).float() / teacher_temperature, dim=-1)
    student = F.log_softmax(score_matrix(student_queries, passages).float() / temperature, dim=-1)
    loss = F.kl_div(student, teacher, log_target=True, reduction="batchmean")
    return {"loss": loss, "backward": loss * (world_size() if gather else 1)}


def flops_loss(doc_sparse: torch.Tensor, gather: bool = True) -> dict[str, torch.Tensor]:
    """FLOPs regulariser ``sum_t (mean_i |w_t^(i)|)^2`` over the *global* batch of documents.

    Under DDP the per-term sums of ``|w|`` are all-reduced (a [V] vector, not the [N, V]
    matrix), only this rank's part carrying gradient; ``backward`` is world-size scaled like
    :func:`contrastive_loss`, so DDP's average equals the single-process gradient. With
    ``gather=False`` (or one process) it is the plain per-batch regulariser of this rank.
    """
    if doc_sparse.dim() != 2 or doc_sparse.shape[0] == 0:
        raise ValueError(f"doc_sparse must be a non-empty [N, V] tensor, got {tuple(doc_sparse.shape)}")
    w = world_size() if gather else 1
    if w == 1:
        loss = doc_sparse.abs().mean(dim=0).pow(2).sum()
        return {"loss": loss, "backward": loss}
    local = doc_sparse.abs().sum(dim=0)
    total = local.detach().clone()
    dist.all_reduce(total)
    count = torch.tensor([doc_sparse.shape[0]], device=doc_sparse.device)
    dist.all_reduce(count)
    # the other ranks' sums enter as constants: gradient flows through this rank's documents only
    mean = (local + (total - local.detach())) / count.item()
    loss = mean.pow(2).sum()
    return {"loss": loss, "backward": loss * w}
