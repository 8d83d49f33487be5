"""Symmetric sparse: query sparse vectors pool only the query's own tokens, through the full LLM."""
import torch

from lr_core.sparse import sparse_doc_vectors

from tests.ablations.conftest import INSTRUCTION, QUERIES


def test_query_sparse_pools_only_query_tokens(make_module):
    m = make_module("symmetric_sparse")
    enc = m.encoder
    with torch.no_grad():
        got = enc.encode_full_queries_sparse(QUERIES, INSTRUCTION)
        ids, mask = enc._tensor(enc.tokenizer.full_query_ids(QUERIES, INSTRUCTION))
        hidden = enc.last_hidden(ids, mask)
        p = enc.tokenizer.full_prompt_length(INSTRUCTION)
        for r, q in enumerate(QUERIES):
            n = len(enc.tokenizer.sparse_query_ids(q))  # the joined string gives the first word its space
            keep = torch.zeros_like(mask, dtype=torch.bool)[r:r + 1]
            keep[0, p:p + n] = True
            expect = sparse_doc_vectors(hidden[r:r + 1], enc.lm_head_weight, keep)
            assert torch.allclose(got[r], expect[0], atol=1e-5)
            everything = sparse_doc_vectors(hidden[r:r + 1], enc.lm_head_weight, mask[r:r + 1].bool())
            assert not torch.allclose(got[r], everything[0])  # the prompt would otherwise leak in
    assert (got >= 0).all() and got.shape == (len(QUERIES), enc.tokenizer.vocab_size)
