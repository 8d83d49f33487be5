"""The one encoder core that every variant shares.

:class:`RetrievalEncoder` wraps a causal LM (optionally with LoRA) and its
:class:`~lr_core.tokenization.RetrievalTokenizer`, and offers the encodings the paper uses:

* documents: dense (EOS pooling, L2) and sparse (LM-head projection, log1p(relu), max-pool)
  from one forward pass;
* full queries (symmetric baseline): ``<bos> prompt query <eos>``, EOS pooling; in training
  the queries' common prefix is computed once (``share_prefix``, same vectors, fewer tokens);
* light queries (LightRetriever training): per-token prompted encoding with a block mask
  (:func:`~lr_core.dense.build_light_batch`), mean of the token vectors; a training batch is
  re-packed so that the prompt is encoded once per row of blocks, not once per query;
* token vectors through the prompt's key/value cache (the vocabulary cache uses this).

The ablations of ``ablations/`` use two narrower query encoders of the same backbone:
:meth:`~RetrievalEncoder.encode_full_query_ids` with ``num_layers=1`` (A3: first transformer
layer + final norm) and :meth:`~RetrievalEncoder.embedding_token_vectors` (A2: the input
embedding layer only).

Attention. Documents and full queries use what the backbone was loaded with
(:func:`lr_core.backbone.pick_attention`: flash-attention 2 on CUDA when installed, else
SDPA). The light-query block mask always runs on PyTorch SDPA: :meth:`light_attention`
switches the implementation for that one call, whatever the backbone was loaded with. The
mask lets each query token's block attend to the shared prompt and to itself only, a
block-diagonal-plus-prefix pattern that flash-attn's causal and varlen kernels cannot express
without copying the prompt once per token. ``flex_attention`` could express it and skip the
masked blocks, but it is fast only compiled (``torch.compile``), needs a ``BlockMask`` rebuilt
for every batch shape, and has never run on this suite's machines; the light sequences are
short (prompt plus two positions per query token), so the dense boolean mask costs little,
and SDPA (on CUDA its memory-efficient kernel takes any mask) computes exactly what training
computes. Not measured: whether flex_attention would be faster on a GPU. The switch sets the
shared config for the duration of one forward, so a model serves one forward at a time (as
with :meth:`first_layers`); a training step under gradient checkpointing would recompute the
light forward outside the switch, so that combination with flash-attn is refused.

>>> model, rt = load_backbone("tiny-llama")            # doctest: +SKIP
>>> enc = RetrievalEncoder(model, rt)                  # doctest: +SKIP
>>> q = enc.encode_light_queries(["what is bm25"], "Given a question, ...")  # doctest: +SKIP
"""
from __future__ import annotations

import contextlib
import copy
from typing import Sequence

import torch

from lr_core.dense import LightBatch, build_light_batch, eos_pool, mean_of_token_states, normalize
from lr_core.sparse import sparse_doc_mask, sparse_doc_vectors
from lr_core.tokenization import RetrievalTokenizer

# The attention the light-query block mask runs on, whatever the backbone was loaded with
# (see the module docstring: flash-attn cannot express the mask).
LIGHT_ATTENTION = "sdpa"
# Implementations that take the 4-D block mask as it is.
_MASK_ATTENTIONS = ("sdpa", "eager", None)


class RetrievalEncoder(torch.nn.Module):
    """Dense + sparse encoder on one backbone; see the module docstring."""

    def __init__(self, lm: torch.nn.Module, tokenizer: RetrievalTokenizer, sparse_chunk_size: int = 16):
        super().__init__()
        self.lm = lm
        self.tokenizer = tokenizer
        self.sparse_chunk_size = sparse_chunk_size

    # -- access to the backbone --------------------------------------------------------
    @property
    def decoder(self) -> torch.nn.Module:
        """The transformer stack without the LM head (LoRA layers, if any, live inside it)."""
        return self.lm.get_decoder()

    @property
    def lm_head_weight(self) -> torch.Tensor:
        return self.lm.get_output_embeddings().weight

    @property
    def device(self) -> torch.device:
        return self.lm_head_weight.device

    @property
    def hidden_size(self) -> int:
        return self.lm_head_weight.shape[1]

    def attention_mask_for(self, block_mask: torch.Tensor) -> torch.Tensor:
        """The 4-D mask in the form the attention implementation takes (bool for SDPA, additive for eager)."""
        impl = getattr(self.lm.config, "_attn_implementation", "sdpa")
        if impl == "eager":
            dtype = self.lm_head_weight.dtype
            return torch.zeros(block_mask.shape, dtype=dtype, device=block_mask.device).masked_fill(
                ~block_mask, torch.finfo(dtype).min)
        if impl not in ("sdpa", None):
            raise RuntimeError(f"the block-mask light encoder needs SDPA or eager attention, not {impl!r}; "
                               "load the backbone with attn='sdpa'")
        return block_mask

    @contextlib.contextmanager
    def light_attention(self):
        """Run the block-mask light encodings on SDPA (see the module docstring), then restore
        the backbone's own attention (flash-attention 2 on CUDA when installed)."""
        config = self.decoder.config  # one object shared by the model and every attention layer
        impl = getattr(config, "_attn_implementation", None)
        if impl in _MASK_ATTENTIONS:
            yield
            return
        if self.training and getattr(self.decoder, "gradient_checkpointing", False):
            raise RuntimeError(f"the light-query block mask needs SDPA, but gradient checkpointing would recompute "
                               f"it with {impl!r} in the backward pass; train with model.attn=sdpa")
        config._attn_implementation = LIGHT_ATTENTION
        try:
            yield
        finally:
            config._attn_implementation = impl

    def last_hidden(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                    position_ids: torch.Tensor | None = None) -> torch.Tensor:
        out = self.decoder(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                           use_cache=False)
        return out.last_hidden_state

    def _tensor(self, rows: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        padded = self.tokenizer.pad(rows)
        return (torch.tensor(padded.input_ids, device=self.device),
                torch.tensor(padded.attention_mask, device=self.device))

    # -- documents -----------------------------------------------------------------
    def encode_document_ids(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, dense: bool = True,
                            sparse: bool = True) -> dict[str, torch.Tensor]:
        """Dense [B,H] (L2-normalised, float32) and/or sparse [B,V] vectors from one forward pass."""
        hidden = self.last_hidden(input_ids, attention_mask)
        out = {}
        if dense:
            out["dense"] = normalize(eos_pool(hidden, attention_mask))
        if sparse:
            mask = sparse_doc_mask(input_ids, attention_mask, self.tokenizer.special_ids)
            out["sparse"] = sparse_doc_vectors(hidden, self.lm_head_weight, mask, self.sparse_chunk_size).float()
        return out

    def encode_documents(self, titles: Sequence[str], texts: Sequence[str], **kw) -> dict[str, torch.Tensor]:
        return self.encode_document_ids(*self._tensor(self.tokenizer.doc_ids(titles, texts)), **kw)

    # -- full (symmetric) queries ---------------------------------------------------
    def encode_full_query_ids(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                              num_layers: int | None = None, share_prefix: bool = False) -> torch.Tensor:
        """EOS-pooled, L2-normalised query vectors; ``num_layers`` runs only the first n layers (A3).

        ``share_prefix`` computes the same vectors through :meth:`shared_prefix_eos_states` (training
        uses it; serving keeps the plain batch, whose latency the speed benchmarks measure)."""
        with self.first_layers(num_layers):
            if share_prefix and self.can_pack:
                return normalize(self.shared_prefix_eos_states(input_ids, attention_mask))
            return normalize(eos_pool(self.last_hidden(input_ids, attention_mask), attention_mask))

    @property
    def can_pack(self) -> bool:
        """Whether the attention implementation takes a custom 4-D mask (flash-attention does not)."""
        return getattr(self.lm.config, "_attn_implementation", "sdpa") in ("sdpa", "eager", None)

    def shared_prefix_eos_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                                 rows_per_pack: int = 32) -> torch.Tensor:
        """EOS states [B, H] of right-padded rows, computing the rows' common prefix once.

        Full queries all start with ``<bos> Instruct: ...\nQuery:``; in the padded batch every row
        recomputes it and pads to the longest query. Here up to ``rows_per_pack`` rows become one
        sequence ``prefix, rest_0, rest_1, ...`` in which each rest sees the prefix and itself
        (causally) at its own positions: causal attention makes the prefix's states the same
        for every row, so each EOS state is what the row alone gives (up to float rounding).
        """
        lengths = attention_mask.long().sum(dim=1).tolist()
        rows = [ids[:n] for ids, n in zip(input_ids.tolist(), lengths)]
        packs = []  # (ids, positions, segment: -1 prefix / k row k, EOS index of each row)
        for i in range(0, len(rows), rows_per_pack):
            group = rows[i:i + rows_per_pack]
            shared = min(len(r) for r in group) - 1  # each row keeps at least its EOS in its own segment
            for r in group[1:]:
                shared = next((j for j in range(shared) if r[j] != group[0][j]), shared)
            ids, pos, seg, eos = list(group[0][:shared]), list(range(shared)), [-1] * shared, []
            for k, r in enumerate(group):
                ids += r[shared:]
                pos += range(shared, len(r))
                seg += [k] * (len(r) - shared)
                eos.append(len(ids) - 1)
            packs.append((ids, pos, seg, eos))
        width = max(len(p[0]) for p in packs)
        pad = lambda xs, v: xs + [v] * (width - len(xs))  # noqa: E731
        dev = self.device
        ids = torch.tensor([pad(p[0], self.tokenizer.pad_id) for p in packs], device=dev)
        pos = torch.tensor([pad(p[1], 0) for p in packs], device=dev)
        seg = torch.tensor([pad(p[2], -2) for p in packs], device=dev)  # -2: padding
        row, col = seg.unsqueeze(2), seg.unsqueeze(1)
        causal = torch.ones(width, width, dtype=torch.bool, device=dev).tril()
        # a real row sees the prefix and its own segment; padding only itself (no all-masked row, no NaN)
        mask = (((col == -1) & (row != -2)) | ((row >= 0) & (row == col))) & causal
        mask |= torch.eye(width, dtype=torch.bool, device=dev)
        hidden = self.last_hidden(ids, self.attention_mask_for(mask.unsqueeze(1)), pos)
        flat = torch.tensor([r * width + e for r, p in enumerate(packs) for e in p[3]], device=dev)
        return hidden.reshape(-1, hidden.size(-1))[flat]

    def encode_full_query_sparse_ids(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                                     prompt_lengths: Sequence[int]) -> torch.Tensor:
        """SPLADE-style sparse vectors [B, V] of full queries: the document sparse head
        max-pooled over the query's own tokens only (not ``<bos>``, the prompt or ``<eos>``)."""
        hidden = self.last_hidden(input_ids, attention_mask)
        pos = torch.arange(input_ids.size(1), device=input_ids.device)
        start = torch.tensor(list(prompt_lengths), device=input_ids.device).unsqueeze(1)
        end = attention_mask.sum(dim=1, keepdim=True) - 1  # the EOS position
        mask = (pos >= start) & (pos < end)
        return sparse_doc_vectors(hidden, self.lm_head_weight, mask, self.sparse_chunk_size).float()

    def encode_full_queries_sparse(self, queries: Sequence[str], instruction: str) -> torch.Tensor:
        ids = self.tokenizer.full_query_ids(queries, instruction)
        prompt = self.tokenizer.full_prompt_length(instruction)
        return self.encode_full_query_sparse_ids(*self._tensor(ids), [prompt] * len(ids))

    @contextlib.contextmanager
    def first_layers(self, n: int | None):
        """Run only the first ``n`` transformer layers (then the final norm) inside the block.

        Hugging Face decoders loop over ``layers[:config.num_hidden_layers]``; the config is
        restored on exit, so the document side always sees the whole stack."""
        config = self.decoder.config
        full = config.num_hidden_layers
        if n is not None and not 0 < n <= full:
            raise ValueError(f"num_layers must be in 1..{full}, got {n}")
        config.num_hidden_layers = full if n is None else n
        try:
            yield
        finally:
            config.num_hidden_layers = full

    # -- the input embedding layer alone (A2) -----------------------------------------
    def embedding_token_vectors(self, token_ids: torch.Tensor) -> torch.Tensor:
        """Rows of the (possibly LoRA-adapted) input embedding for ``token_ids``, float32."""
        return self.lm.get_input_embeddings()(token_ids.to(self.device)).float()

    def encode_full_queries(self, queries: Sequence[str], instruction: str, num_layers: int | None = None) -> torch.Tensor:
        return self.encode_full_query_ids(*self._tensor(self.tokenizer.full_query_ids(queries, instruction)),
                                          num_layers=num_layers)

    # -- light queries ----------------------------------------------------------------
    def light_batch(self, queries: Sequence[str], instruction: str) -> LightBatch:
        prompt = self.tokenizer.prompt_ids(instruction)
        tokens = self.tokenizer.light_query_ids(list(queries))
        return build_light_batch([prompt] * len(tokens), tokens, self.tokenizer.eos_id, self.tokenizer.pad_id)

    def light_token_states(self, batch: LightBatch) -> torch.Tensor:
        """Un-normalised vector of every query token, [B, n, H] (padding blocks hold junk; see token_mask)."""
        batch = batch.to(self.device)
        with self.light_attention():
            hidden = self.last_hidden(batch.input_ids, self.attention_mask_for(batch.block_mask), batch.position_ids)
        index = batch.eos_index.unsqueeze(-1).expand(-1, -1, hidden.size(-1))
        return hidden.gather(1, index)

    def packed_light_token_states(self, batch: LightBatch, blocks_per_row: int = 128) -> torch.Tensor:
        """:meth:`light_token_states` with the prompt computed once per packed row instead of once per query.

        Same [B, n, H] result (padding blocks hold zeros), computed differently: the batch's
        ``(token, eos)`` blocks are regrouped, queries with the same prompt together, into rows of
        at most ``blocks_per_row`` blocks after one copy of the prompt (``build_light_batch``'s
        layout, so every block still sees exactly ``<bos> prompt t <eos>``). The per-query
        layout repeats the prompt for every query and pads every query to the longest one; on
        CPU those tokens cost as much as real ones. Rows are bounded so attention stays
        quadratic in the row, not in the batch.
        """
        batch = batch.to(self.device)
        mask = batch.token_mask
        counts = mask.sum(dim=1).tolist()
        tokens = batch.input_ids.gather(1, (batch.eos_index - 1).clamp_min(0))  # the token before each EOS
        groups: dict[tuple[int, ...], list[tuple[int, int]]] = {}  # prompt -> its (query, block) pairs, in order
        for b, n in enumerate(counts):
            if n:
                prompt = tuple(batch.input_ids[b, :int(batch.eos_index[b, 0]) - 1].tolist())
                groups.setdefault(prompt, []).extend((b, k) for k in range(n))
        out = torch.zeros(*mask.shape, self.hidden_size, dtype=self.lm_head_weight.dtype, device=self.device)
        prompts, rows, owners = [], [], []
        for prompt, pairs in groups.items():
            for i in range(0, len(pairs), blocks_per_row):
                chunk = pairs[i:i + blocks_per_row]
                prompts.append(prompt)
                rows.append([int(tokens[b, k]) for b, k in chunk])
                owners.extend(chunk)
        if not rows:
            return out
        packed = build_light_batch(prompts, rows, self.tokenizer.eos_id, self.tokenizer.pad_id)
        states = self.light_token_states(packed)[packed.token_mask.to(self.device)]  # [N, H], row-major = owners
        where = torch.tensor(owners, device=self.device)
        return out.index_put((where[:, 0], where[:, 1]), states.to(out.dtype))

    def encode_light_query_batch(self, batch: LightBatch) -> torch.Tensor:
        """Training-time light query vectors [B, H] of a collated batch (through the packed layout)."""
        return mean_of_token_states(self.packed_light_token_states(batch), batch.token_mask.to(self.device))

    def encode_light_queries(self, queries: Sequence[str], instruction: str) -> torch.Tensor:
        """Training-time light query vectors [B,H]: mean of per-token prompted encodings, L2-normalised."""
        return self.encode_light_query_batch(self.light_batch(queries, instruction))

    # -- vectors of many single tokens (the vocabulary cache) ---------------------------
    @torch.no_grad()
    def token_vectors_block(self, instruction: str, token_ids: torch.Tensor, blocks_per_row: int = 128) -> torch.Tensor:
        """Vector of each token id as ``<bos> prompt t <eos>``, packed ``blocks_per_row`` per sequence.

        The same block-mask computation as training; on CPU it beats the KV-cache form because
        it never copies the prompt's keys/values per token. Returns un-normalised float32 [N, H].
        """
        prompt = self.tokenizer.prompt_ids(instruction)
        ids = token_ids.tolist()
        rows = [ids[i:i + blocks_per_row] for i in range(0, len(ids), blocks_per_row)]
        batch = build_light_batch([prompt] * len(rows), rows, self.tokenizer.eos_id, self.tokenizer.pad_id)
        states = self.light_token_states(batch)
        return states[batch.token_mask.to(states.device)].float()


    @torch.no_grad()
    def token_vectors_prefix_kv(self, instruction: str, token_ids: torch.Tensor) -> torch.Tensor:
        """Vector of each token id as ``<bos> prompt t <eos>``, reusing the prompt's key/value cache.

        Returns un-normalised float32 [N, H]. Equivalent to the block-mask form; cheaper for
        many tokens (the vocabulary cache) since the prompt is encoded once.
        """
        prompt = torch.tensor([self.tokenizer.prompt_ids(instruction)], device=self.device)
        p = prompt.size(1)
        prefix = self.decoder(input_ids=prompt, use_cache=True).past_key_values
        n = token_ids.numel()
        ids = torch.stack([token_ids.to(self.device), torch.full((n,), self.tokenizer.eos_id, device=self.device)], 1)
        cache = copy.deepcopy(prefix)
        cache.batch_repeat_interleave(n)
        out = self.decoder(input_ids=ids, past_key_values=cache, use_cache=True,
                           attention_mask=torch.ones(n, p + 2, dtype=torch.long, device=self.device),
                           position_ids=torch.tensor([[p, p + 1]], device=self.device).expand(n, 2))
        return out.last_hidden_state[:, 1].float()
