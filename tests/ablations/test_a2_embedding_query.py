"""A2: the query side is the embedding layer (plus a query-side delta) and a mean; no transformer layer."""
import torch

from tests.ablations.conftest import INSTRUCTION, QUERIES


def layer_calls(module):
    calls = []
    hooks = [layer.register_forward_hook(lambda *a, i=i: calls.append(i))
             for i, layer in enumerate(module.encoder.decoder.layers)]
    return calls, hooks


def test_query_encoder_never_runs_a_transformer_layer(make_module):
    m = make_module("a2_embedding_query")
    light = m.encoder.light_batch(QUERIES, INSTRUCTION)
    calls, hooks = layer_calls(m)
    q = m.light_dense_queries(type("B", (), {"light": light})())
    for h in hooks:
        h.remove()
    assert calls == []
    assert torch.allclose(q.norm(dim=-1), torch.ones(len(QUERIES)))
    # the vector is the mean of the token rows (duplicates counted)
    toks = m.tokenizer.light_query_ids(QUERIES[2])
    rows = m.token_vectors(torch.tensor(toks))
    assert torch.allclose(q[2], torch.nn.functional.normalize(rows.mean(0), dim=-1), atol=1e-6)
    # gradients reach the query-side delta and no transformer weight
    m.zero_grad()
    q.sum().backward()
    assert m.query_delta.b.weight.grad is not None and m.query_delta.b.weight.grad.abs().sum() > 0
    assert all(p.grad is None for n, p in m.encoder.named_parameters() if "layers." in n)


def test_serving_cache_equals_training_vectors(make_module):
    m = make_module("a2_embedding_query")
    with torch.no_grad():
        m.query_delta.b.weight.normal_()  # a trained-looking delta
        cache = m.build_query_cache(INSTRUCTION, "tiny", "h", batch_size=10000)
        train = m.light_dense_queries(type("B", (), {"light": m.encoder.light_batch(QUERIES, INSTRUCTION)})())
    served = cache.encode(m.tokenizer.light_query_ids(QUERIES))
    assert torch.allclose(torch.from_numpy(served), train, atol=1e-5)


def test_cache_records_its_build_time(make_module, monkeypatch):
    import ablations.a2_embedding_query as a2

    m = make_module("a2_embedding_query")
    clock = iter([10.0, 12.5])
    monkeypatch.setattr(a2, "perf_counter", lambda: next(clock))
    assert m.build_query_cache(INSTRUCTION, "tiny", "h", batch_size=10000).metadata.build_seconds == 2.5
