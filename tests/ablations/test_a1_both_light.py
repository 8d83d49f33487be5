"""A1: a document's light vector is the (normalised) mean of the cached rows of its tokens."""
import numpy as np

from lr_core.data.beir import BeirDataset, Passage
from lr_core.cache import CacheMetadata, VocabCache
from lr_core.retrieval.representations import light_doc_ids


def test_document_vector_is_mean_of_cached_rows(tokenizer):
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(tokenizer.vocab_size, 8)).astype(np.float32)
    cache = VocabCache(vectors, CacheMetadata("m", "c", tokenizer.fingerprint(), "i", "float32", tokenizer.vocab_size, 8))
    corpus = {"d1": Passage("d1", "Cats", "The cat sat on the mat; the cat slept."),
              "d2": Passage("d2", "", "word " * 500)}  # longer than max_doc_len: truncated like the document encoder
    data = BeirDataset(name="toy", corpus=corpus, queries={}, qrels={}, split="test")
    ids = light_doc_ids(tokenizer, data)
    assert ids[0] == tokenizer.doc_ids(["Cats"], ["The cat sat on the mat; the cat slept."])[0][1:-1]
    assert len(ids[1]) == tokenizer.max_doc_len - 2
    got = cache.encode(ids)
    for row, toks in zip(got, ids):
        mean = vectors[toks].mean(axis=0)  # duplicates ("the", "cat") counted
        np.testing.assert_allclose(row, mean / np.linalg.norm(mean), rtol=1e-5, atol=1e-6)
