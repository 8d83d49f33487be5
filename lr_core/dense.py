"""Dense side: EOS pooling, and the light (per-token, prompted) query encoder's batch layout.

Training-time light query (METHOD.md section 2): every query token t_i is encoded as
``<bos> prompt t_i <eos>`` and the EOS state is its vector. To do that in one sequence per
query, the tokens are laid out as ``<bos> prompt t_0 <eos> t_1 <eos> ...`` with

* a block attention mask: prompt rows are causal; each 2-token block sees the whole prompt
  and itself (causally), never another block; padding rows see only themselves (no NaN);
* position ids ``0..P-1`` for the prompt and ``(P, P+1)`` for every block,

so every block computes exactly what the separate encoding would.

>>> lb = build_light_batch([[1, 5, 6]], [[7, 8, 7]], eos_id=2, pad_id=2)
>>> lb.input_ids.tolist()
[[1, 5, 6, 7, 2, 8, 2, 7, 2]]
>>> lb.position_ids.tolist()
[[0, 1, 2, 3, 4, 3, 4, 3, 4]]
>>> lb.eos_index.tolist()
[[4, 6, 8]]
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F


def eos_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """State at the last real position of each right-padded row (the EOS token)."""
    last = attention_mask.long().sum(dim=1) - 1
    return hidden[torch.arange(hidden.size(0), device=hidden.device), last]


def normalize(x: torch.Tensor) -> torch.Tensor:
    """L2 normalisation in float32 (bf16 norms are too coarse for cosine scores)."""
    return F.normalize(x.float(), p=2, dim=-1)


@dataclass
class LightBatch:
    """One sequence per query: prompt followed by (token, eos) blocks."""

    input_ids: torch.Tensor  # [B, S]
    position_ids: torch.Tensor  # [B, S]
    block_mask: torch.Tensor  # [B, 1, S, S] bool, True = may attend
    eos_index: torch.Tensor  # [B, n] position of each block's EOS
    token_mask: torch.Tensor  # [B, n] bool, False for padding blocks

    def to(self, device) -> "LightBatch":
        return LightBatch(*(t.to(device) for t in (self.input_ids, self.position_ids, self.block_mask,
                                                    self.eos_index, self.token_mask)))


def build_light_batch(prompts: Sequence[Sequence[int]], tokens: Sequence[Sequence[int]], eos_id: int,
                      pad_id: int) -> LightBatch:
    """Lay out queries for :meth:`RetrievalEncoder.encode_light_queries` (see module docstring).

    ``prompts[b]`` is ``<bos> + prompt`` ids of query b (usually all equal), ``tokens[b]`` its
    light token ids. Rows may have different prompt and token counts.
    """
    if len(prompts) != len(tokens):
        raise ValueError("one prompt per query is required")
    lengths = [len(p) + 2 * len(t) for p, t in zip(prompts, tokens)]
    width = max(lengths)
    n_max = max(len(t) for t in tokens)
    bsz = len(tokens)
    input_ids = torch.full((bsz, width), pad_id, dtype=torch.long)
    position_ids = torch.zeros((bsz, width), dtype=torch.long)
    segment = torch.full((bsz, width), -2, dtype=torch.long)  # -1 prompt, k >= 0 block k, -2 padding
    eos_index = torch.zeros((bsz, n_max), dtype=torch.long)
    token_mask = torch.zeros((bsz, n_max), dtype=torch.bool)
    for b, (prompt, toks) in enumerate(zip(prompts, tokens)):
        p, n = len(prompt), len(toks)
        input_ids[b, :p] = torch.tensor(list(prompt), dtype=torch.long)
        position_ids[b, :p] = torch.arange(p)
        segment[b, :p] = -1
        if n:
            blocks = torch.stack([torch.tensor(list(toks), dtype=torch.long), torch.full((n,), eos_id)], dim=1)
            input_ids[b, p:p + 2 * n] = blocks.reshape(-1)
            position_ids[b, p:p + 2 * n] = torch.tensor([p, p + 1]).repeat(n)
            segment[b, p:p + 2 * n] = torch.arange(n).repeat_interleave(2)
            eos_index[b, :n] = p + 1 + 2 * torch.arange(n)
            token_mask[b, :n] = True
    row, col = segment.unsqueeze(2), segment.unsqueeze(1)  # [B,S,1], [B,1,S]
    causal = torch.ones(width, width, dtype=torch.bool).tril()
    prompt_cols = (col == -1) & (row != -2)  # every real row sees the prompt (rows after it, so causal holds)
    same_block = (row >= 0) & (row == col)
    mask = ((prompt_cols | same_block) & causal) | torch.eye(width, dtype=torch.bool)
    return LightBatch(input_ids, position_ids, mask.unsqueeze(1), eos_index, token_mask)


def mean_of_token_states(states: torch.Tensor, token_mask: torch.Tensor) -> torch.Tensor:
    """Mean over a query's valid token vectors (duplicates counted), then L2-normalised."""
    weights = token_mask.to(states.dtype).unsqueeze(-1)
    summed = (states * weights).sum(dim=1)
    count = weights.sum(dim=1).clamp_min(1.0)
    return normalize(summed / count)
