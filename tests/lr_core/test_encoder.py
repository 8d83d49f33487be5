"""RetrievalEncoder: the packed light-query layout computes what the per-query layout did.

The per-query layout (:func:`lr_core.dense.build_light_batch`, one row per query) is the
reference; :meth:`RetrievalEncoder.packed_light_token_states` must give the same token states,
light query vectors and LoRA gradients, for mixed prompts, uneven lengths and empty queries.
"""
from __future__ import annotations

import pytest
import torch

from lr_core.backbone import LoraSettings, add_lora, tiny_llama
from lr_core.dense import build_light_batch, mean_of_token_states
from lr_core.encoder import RetrievalEncoder
from lr_core.instructions import instruction_for

QUERIES = ["the cell and the cell and the", "Vitamin D deficiency increases the risk of MS.", "aspirin",
           "", "does smoking cause lung cancer in mice"]


@pytest.fixture(scope="module")
def lora_encoder(tokenizer):
    """A tiny Llama with LoRA adapters whose B matrices are non-zero (so adapters change the output)."""
    with torch.random.fork_rng():  # the same model whichever tests ran before in this process
        torch.manual_seed(0)
        lm = tiny_llama(vocab_size=tokenizer.vocab_size, bos_id=tokenizer.bos_id, eos_id=tokenizer.eos_id)
        lm = add_lora(lm, LoraSettings(r=4, alpha=8, dropout=0.0))
    with torch.no_grad(), torch.random.fork_rng():
        torch.manual_seed(1)
        for name, p in lm.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.02)
    return RetrievalEncoder(lm.train(), tokenizer)


def query_tokens(rt):
    """Light token ids of QUERIES; the empty query (which the tokenizer refuses) gets no blocks."""
    return [rt.light_query_ids(q) if q else [] for q in QUERIES]


def mixed_batch(encoder):
    """Two instructions, one empty query and one longer than the others (padding blocks)."""
    rt = encoder.tokenizer
    instructions = [instruction_for("scifact"), instruction_for("scifact"), instruction_for("nfcorpus"),
                    instruction_for("scifact"), instruction_for("nfcorpus")]
    assert len(set(instructions)) == 2
    prompts = [rt.prompt_ids(i) for i in instructions]
    tokens = query_tokens(rt)
    assert tokens[3] == [] and len({len(t) for t in tokens}) > 2
    return build_light_batch(prompts, tokens, rt.eos_id, rt.pad_id)


def lora_grads(encoder):
    return {n: p.grad.clone() for n, p in encoder.named_parameters() if p.requires_grad and p.grad is not None}


@pytest.mark.parametrize("blocks_per_row", [128, 3])
def test_packed_light_states_match_per_query_layout(lora_encoder, blocks_per_row):
    batch = mixed_batch(lora_encoder)
    with torch.no_grad():
        reference = lora_encoder.light_token_states(batch)
        packed = lora_encoder.packed_light_token_states(batch, blocks_per_row=blocks_per_row)
    assert packed.shape == reference.shape
    mask = batch.token_mask
    torch.testing.assert_close(packed[mask], reference[mask], atol=1e-5, rtol=1e-5)
    assert (packed[~mask] == 0).all()  # padding blocks (and the empty query) hold zeros, not junk


def test_packed_light_queries_give_the_same_vectors_and_lora_gradients(lora_encoder):
    batch = mixed_batch(lora_encoder)
    weights = torch.randn(len(QUERIES), lora_encoder.hidden_size, generator=torch.Generator().manual_seed(0))

    def loss_and_grads(states_fn):
        lora_encoder.zero_grad(set_to_none=True)
        vectors = mean_of_token_states(states_fn(batch), batch.token_mask)
        (vectors * weights).sum().backward()
        return vectors.detach(), lora_grads(lora_encoder)

    ref_vec, ref_grads = loss_and_grads(lora_encoder.light_token_states)
    new_vec, new_grads = loss_and_grads(lambda b: lora_encoder.packed_light_token_states(b, blocks_per_row=4))
    torch.testing.assert_close(new_vec, ref_vec, atol=1e-5, rtol=1e-5)
    assert ref_grads and set(new_grads) == set(ref_grads)
    assert any(g.abs().max() > 0 for g in ref_grads.values())
    for name, g in ref_grads.items():
        torch.testing.assert_close(new_grads[name], g, atol=1e-5 * float(g.abs().max()), rtol=1e-4, msg=name)
    # and the training entry point goes through the packed layout
    torch.testing.assert_close(lora_encoder.encode_light_query_batch(batch).detach(), ref_vec, atol=1e-5, rtol=1e-5)


def test_packing_encodes_each_prompt_once_per_row(lora_encoder):
    """The saving itself: fewer positions go through the transformer than in the per-query layout."""
    batch = mixed_batch(lora_encoder)
    seen = []
    original = lora_encoder.last_hidden

    def counting(input_ids, *args, **kw):
        seen.append(input_ids.numel())
        return original(input_ids, *args, **kw)

    lora_encoder.last_hidden = counting
    try:
        with torch.no_grad():
            lora_encoder.packed_light_token_states(batch)
    finally:
        del lora_encoder.last_hidden
    rt = lora_encoder.tokenizer
    widths = []
    for dataset, members in (("scifact", [0, 1, 3]), ("nfcorpus", [2, 4])):
        n_blocks = sum(len(query_tokens(rt)[i]) for i in members)
        widths.append(len(rt.prompt_ids(instruction_for(dataset))) + 2 * n_blocks)
    # one row per prompt, each prompt once, padded only to the longer of the two rows
    assert seen == [2 * max(widths)]
    assert seen[0] < batch.input_ids.numel()


def test_packed_light_states_of_an_all_empty_batch_are_zeros(lora_encoder):
    rt = lora_encoder.tokenizer
    batch = build_light_batch([rt.prompt_ids(instruction_for("scifact"))] * 2, [[], []], rt.eos_id, rt.pad_id)
    states = lora_encoder.packed_light_token_states(batch)
    assert states.shape == (2, 0, lora_encoder.hidden_size)


FULL_QUERIES = ["what causes the common cold", "what causes migraines in adults", "aspirin",
                "Vitamin D deficiency increases the risk of MS."]


@pytest.mark.parametrize("rows_per_pack", [32, 3])
def test_shared_prefix_full_queries_match_the_padded_batch(lora_encoder, rows_per_pack):
    """Same EOS vectors and LoRA gradients; mixed instructions shorten the shared prefix."""
    rt = lora_encoder.tokenizer
    instructions = [instruction_for("scifact")] * 3 + [instruction_for("nfcorpus")]
    for ins in (instruction_for("scifact"), instructions):
        padded = rt.pad(rt.full_query_ids(FULL_QUERIES, ins))
        ids, mask = torch.tensor(padded.input_ids), torch.tensor(padded.attention_mask)
        weights = torch.randn(len(FULL_QUERIES), lora_encoder.hidden_size, generator=torch.Generator().manual_seed(1))

        def run(**kw):
            lora_encoder.zero_grad(set_to_none=True)
            vectors = lora_encoder.encode_full_query_ids(ids, mask, **kw)
            (vectors * weights).sum().backward()
            return vectors.detach(), lora_grads(lora_encoder)

        ref_vec, ref_grads = run()
        states = lora_encoder.shared_prefix_eos_states
        lora_encoder.shared_prefix_eos_states = lambda i, m: states(i, m, rows_per_pack=rows_per_pack)
        try:
            new_vec, new_grads = run(share_prefix=True)
        finally:
            del lora_encoder.shared_prefix_eos_states
        torch.testing.assert_close(new_vec, ref_vec, atol=1e-5, rtol=1e-5)
        assert set(new_grads) == set(ref_grads) and any(g.abs().max() > 0 for g in ref_grads.values())
        for name, g in ref_grads.items():  # float rounding, relative to the tensor's scale
            torch.testing.assert_close(new_grads[name], g, atol=1e-5 * float(g.abs().max()), rtol=1e-4, msg=name)


def test_shared_prefix_is_computed_once(lora_encoder):
    rt = lora_encoder.tokenizer
    padded = rt.pad(rt.full_query_ids(FULL_QUERIES, instruction_for("scifact")))
    seen = []
    original = lora_encoder.last_hidden
    lora_encoder.last_hidden = lambda ids, *a, **kw: seen.append(ids.shape) or original(ids, *a, **kw)
    try:
        with torch.no_grad():
            lora_encoder.shared_prefix_eos_states(torch.tensor(padded.input_ids), torch.tensor(padded.attention_mask))
    finally:
        del lora_encoder.last_hidden
    lengths = [sum(m) for m in padded.attention_mask]
    prefix = rt.full_prompt_length(instruction_for("scifact"))
    # "what causes" is shared by the first two queries only, so the common prefix is the prompt
    assert seen == [(1, prefix + sum(n - prefix for n in lengths))]


def test_flash_attention_falls_back_to_the_padded_batch(tokenizer):
    lm = tiny_llama(vocab_size=tokenizer.vocab_size, bos_id=tokenizer.bos_id, eos_id=tokenizer.eos_id)
    enc = RetrievalEncoder(lm.eval(), tokenizer)
    assert enc.can_pack
    lm.config._attn_implementation = "flash_attention_2"
    assert not enc.can_pack
