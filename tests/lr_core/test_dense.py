"""The four ways of computing a light query vector agree (METHOD.md section 2).

(a) one separate forward pass per token, (b) the block-mask sequence, (c) the prompt's
key/value cache, (d) the vocabulary cache lookup.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lr_core.cache import CacheMetadata, VocabCache
from lr_core.cache_build import build_vocab_cache
from lr_core.dense import build_light_batch, eos_pool, normalize
from lr_core.instructions import instruction_for

INSTRUCTION = instruction_for("scifact")
# Repeated tokens ("the ... the"), very different lengths (padding in the batch), a one-token query.
QUERIES = ["the cell and the cell and the", "Vitamin D deficiency increases the risk of MS.", "aspirin"]


def separate_passes(encoder, query: str) -> torch.Tensor:
    rt = encoder.tokenizer
    prompt = rt.prompt_ids(INSTRUCTION)
    states = []
    for t in rt.light_query_ids(query):
        ids = torch.tensor([prompt + [t, rt.eos_id]])
        states.append(encoder.last_hidden(ids, torch.ones_like(ids))[0, -1])
    return normalize(torch.stack(states).mean(0))


def prefix_kv(encoder, query: str) -> torch.Tensor:
    ids = torch.tensor(encoder.tokenizer.light_query_ids(query))
    return normalize(encoder.token_vectors_prefix_kv(INSTRUCTION, ids).mean(0))


def partial_cache(encoder, queries) -> VocabCache:
    """A cache whose rows for the queries' tokens are real (others zero): lookup reads only those."""
    rt = encoder.tokenizer
    needed = sorted({t for q in queries for t in rt.light_query_ids(q)})
    vectors = np.zeros((rt.vocab_size, encoder.hidden_size), dtype=np.float32)
    vectors[needed] = encoder.token_vectors_prefix_kv(INSTRUCTION, torch.tensor(needed)).numpy()
    meta = CacheMetadata("m", "c", rt.fingerprint(), INSTRUCTION, "float32", rt.vocab_size, encoder.hidden_size)
    return VocabCache(vectors, meta)


def check_all_forms_agree(encoder, atol: float):
    rt = encoder.tokenizer
    ids = rt.light_query_ids(QUERIES)
    assert len(ids[0]) > len(set(ids[0])), "first query must contain repeated tokens"
    with torch.no_grad():
        block = encoder.encode_light_queries(QUERIES, INSTRUCTION)
        separate = torch.stack([separate_passes(encoder, q) for q in QUERIES])
        kv = torch.stack([prefix_kv(encoder, q) for q in QUERIES])
    looked_up = torch.from_numpy(partial_cache(encoder, QUERIES).encode(ids))
    assert not torch.isnan(block).any()
    torch.testing.assert_close(block, separate, atol=atol, rtol=0)
    torch.testing.assert_close(kv, separate, atol=atol, rtol=0)
    torch.testing.assert_close(looked_up, separate, atol=atol, rtol=0)
    # duplicates are counted: the mean over the distinct tokens differs
    with torch.no_grad():
        distinct = normalize(encoder.token_vectors_prefix_kv(INSTRUCTION, torch.tensor(sorted(set(ids[0])))).mean(0))
    assert (distinct - separate[0]).abs().max() > 10 * atol


def test_light_query_forms_agree_tiny(tiny_encoder):
    check_all_forms_agree(tiny_encoder, atol=1e-5)


@pytest.mark.slow
def test_light_query_forms_agree_smollm2(smollm2_encoder):
    check_all_forms_agree(smollm2_encoder, atol=1e-4)


def test_light_vector_does_not_depend_on_batch_neighbours(tiny_encoder):
    with torch.no_grad():
        alone = tiny_encoder.encode_light_queries([QUERIES[2]], INSTRUCTION)
        batched = tiny_encoder.encode_light_queries(QUERIES, INSTRUCTION)[2:3]
    torch.testing.assert_close(alone, batched, atol=1e-5, rtol=0)


def test_block_mask_layout():
    lb = build_light_batch([[1, 9, 9], [1, 9]], [[5, 6], [7]], eos_id=2, pad_id=0)
    m = lb.block_mask[0, 0]
    # the EOS of block 1 (position 6) sees the prompt (0-2) and its own block (5-6), never block 0 (3-4)
    assert m[6].tolist() == [True, True, True, False, False, True, True]
    # a prompt row is causal
    assert m[1].tolist() == [True, True, False, False, False, False, False]
    # second row: padding positions (5, 6) see only themselves, so attention has no empty row (no NaN)
    assert lb.block_mask[1, 0, 5].tolist() == [False] * 5 + [True, False]
    assert lb.position_ids[1].tolist() == [0, 1, 2, 3, 0, 0, 0]
    assert lb.token_mask.tolist() == [[True, True], [True, False]]


def test_eager_attention_uses_additive_mask(tokenizer):
    from lr_core.backbone import tiny_llama
    from lr_core.encoder import RetrievalEncoder

    sdpa = RetrievalEncoder(tiny_llama(vocab_size=tokenizer.vocab_size).eval(), tokenizer)
    eager_model = tiny_llama(vocab_size=tokenizer.vocab_size).eval()
    eager_model.config._attn_implementation = "eager"
    eager = RetrievalEncoder(eager_model, tokenizer)
    with torch.no_grad():
        a = sdpa.encode_light_queries(QUERIES, INSTRUCTION)
        b = eager.encode_light_queries(QUERIES, INSTRUCTION)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_full_vocabulary_cache_matches_training_form(tiny_encoder):
    cache = build_vocab_cache(tiny_encoder, INSTRUCTION, model_id="tiny", checkpoint_hash="h", batch_size=4096,
                              progress=False)
    assert cache.vectors.shape == (tiny_encoder.tokenizer.vocab_size, tiny_encoder.hidden_size)
    with torch.no_grad():
        expected = tiny_encoder.encode_light_queries(QUERIES, INSTRUCTION).numpy()
    got = cache.encode(tiny_encoder.tokenizer.light_query_ids(QUERIES))
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_eos_pool_reads_last_real_position():
    hidden = torch.arange(2 * 4 * 1, dtype=torch.float32).reshape(2, 4, 1)
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])
    assert eos_pool(hidden, mask).flatten().tolist() == [2.0, 7.0]
