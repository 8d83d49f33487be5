"""Sparse top-k at index time keeps exactly k terms; bow vs counts for the sparse query."""
from lr_core.retrieval.corpus_encoding import encode_corpus, merge_shards
from lr_core.query_side import query_term_vector

CORPUS = {f"d{i}": ("", "alpha beta gamma delta epsilon zeta eta theta " * (i + 1)) for i in range(6)}


def test_top_k_keeps_exactly_k_terms(tiny_encoder, tmp_path):
    from lr_core.data.beir import Passage

    corpus = {d: Passage(d, t, x) for d, (t, x) in CORPUS.items()}
    fp = {"model_id": "tiny"}
    encode_corpus(tiny_encoder, corpus, tmp_path / "all", fp, dense=False, progress=False)
    full = merge_shards(tmp_path / "all").sparse
    for k in (1, 3, 7):
        encode_corpus(tiny_encoder, corpus, tmp_path / f"top{k}", fp, dense=False, sparse_top_k=k, progress=False)
        top = merge_shards(tmp_path / f"top{k}").sparse
        for i in range(full.shape[0]):
            row, kept = full.getrow(i), top.getrow(i)
            assert kept.nnz == min(k, row.nnz)
            # the kept weights are the k largest of the full row
            assert sorted(kept.data, reverse=True) == sorted(row.data, reverse=True)[:kept.nnz]


def test_bow_versus_counts():
    assert query_term_vector([5, 7, 5, 5], "counts") == {5: 3.0, 7: 1.0}
    assert query_term_vector([5, 7, 5, 5], "bow") == {5: 1.0, 7: 1.0}
