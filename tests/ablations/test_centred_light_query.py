"""Centred light query: a learned centre is subtracted from token vectors, and serving stays exact."""
import torch

from lr_core.dense import mean_of_token_states

from tests.ablations.conftest import INSTRUCTION, QUERIES


def _batch(m, queries=QUERIES):
    return type("B", (), {"light": m.encoder.light_batch(queries, INSTRUCTION)})()


def test_centre_is_set_from_the_first_batch_and_subtracted(make_module):
    m = make_module("centred_light_query")
    m.train()
    batch = _batch(m)
    with torch.no_grad():
        q = m.light_dense_queries(batch)
        states = m.encoder.light_token_states(batch.light).float()
    mask = batch.light.token_mask
    torch.testing.assert_close(m.light_centre.detach(), states[mask].mean(dim=0))
    torch.testing.assert_close(q, mean_of_token_states(states - m.light_centre.detach(), mask))
    plain = mean_of_token_states(states, mask)
    # the point of it: centred queries are far less alike than the plain ones
    sim = lambda v: (v @ v.T)[~torch.eye(len(v), dtype=torch.bool)].mean()
    assert sim(q) < sim(plain)
    assert "light_centre" in m.trainable_names()  # saved with the adapters


def test_serving_cache_equals_training_vectors(make_module):
    m = make_module("centred_light_query")
    m.eval()
    with torch.no_grad():
        m.light_centre.normal_()
        cache = m.build_query_cache(INSTRUCTION, "tiny", "h", batch_size=4096)
        train = m.light_dense_queries(_batch(m))
    served = cache.encode(m.tokenizer.light_query_ids(QUERIES))
    assert torch.allclose(torch.from_numpy(served), train, atol=1e-4)
