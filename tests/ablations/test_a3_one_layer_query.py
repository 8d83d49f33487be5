"""A3: exactly the first transformer layer runs for the query; documents keep the whole stack."""
import torch

from tests.ablations.conftest import INSTRUCTION, QUERIES
from tests.ablations.test_a2_embedding_query import layer_calls


def test_query_runs_exactly_one_layer_and_documents_all(make_module):
    m = make_module("a3_one_layer_query")
    ids, mask = m.encoder._tensor(m.tokenizer.full_query_ids(QUERIES, INSTRUCTION))
    calls, hooks = layer_calls(m)
    q = m.light_dense_queries(type("B", (), {"full_query_ids": ids, "full_query_mask": mask})())
    assert calls == [0]
    calls.clear()
    served = m.serve_dense_queries(QUERIES, INSTRUCTION)
    assert calls == [0]
    calls.clear()
    m.encoder.encode_documents(["t"], ["some document text"])
    assert calls == list(range(len(m.encoder.decoder.layers)))  # config restored after the query
    for h in hooks:
        h.remove()
    assert torch.allclose(served, q, atol=1e-6)
    full = m.encoder.encode_full_query_ids(ids, mask)
    assert not torch.allclose(full, q, atol=1e-3)  # one layer is not the whole model
