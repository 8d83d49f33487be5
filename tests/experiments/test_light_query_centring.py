"""Serve-time centring analysis: a planted shared component hides the ranking; centring restores it."""
import numpy as np

from experiments.analysis.light_query_centring import centred_scores, ndcg_at_10


def test_centring_removes_a_shared_document_prior():
    rng = np.random.default_rng(0)
    vocab, dim, n = 50, 16, 10
    signal = rng.normal(size=(vocab, dim))
    common = np.zeros(dim); common[0] = 40.0          # every token vector shares one big component
    cache = signal + common
    docs = rng.normal(size=(n, dim)) * 0.1
    queries = [[i, i + 10] for i in range(n)]
    for i, ids in enumerate(queries):                  # doc i is the answer of query i ...
        docs[i] += signal[ids].mean(axis=0)
    docs[:, 0] = np.linspace(0, 1, n)                  # ... but docs differ a lot along the shared axis
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    qids, dids = [f"q{i}" for i in range(n)], [f"d{i}" for i in range(n)]
    qrels = {f"q{i}": {f"d{i}": 1} for i in range(n)}
    plain = ndcg_at_10(centred_scores(cache, queries, docs, None), qids, dids, qrels)
    centred = ndcg_at_10(centred_scores(cache, queries, docs, cache.mean(axis=0)), qids, dids, qrels)
    assert centred > 0.9 > 0.6 > plain
