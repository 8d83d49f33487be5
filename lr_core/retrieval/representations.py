"""How each representation retrieves: one small function per representation, in one table.

:func:`lr_core.retrieval.evaluate.evaluate` builds a :class:`Retrieval` for one (model, data set)
and asks it for the run of every representation it reports. A representation's function takes
that context and returns its run ``{qid: {docid: score}}``; what several of them share (the
Faiss index of the corpus, the sparse index, the vocabulary cache, the light dense run that
hybrid fuses) is built once, on first use, and each step's seconds go to the timings of the
representation that ran it (``cache_s``, ``tokenize_s``, ``encode_s``, ``search_s``, ...).

========================  ================================================================
``dense``                 light dense queries (vocabulary-cache lookup; a ``query_side =
                          "network"`` variant's own encoder, A3) against the dense corpus
``sparse``                token counts (or bag of words) against the sparse corpus (exact, or
                          a Lucene impact index with ``sparse_backend="lucene"``)
``hybrid``                min-max linear (or RRF) fusion of ``dense`` and ``sparse``
``symmetric``             the full LLM on the query side, dense
``light_both``            A1: documents as light (cache-lookup) vectors too
``symmetric_sparse``      the full LLM's sparse query vector
========================  ================================================================
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path

import numpy as np

from lr_core.query_side import query_term_vector
from lr_core.retrieval.dense_index import DenseIndex
from lr_core.retrieval.search import run_from_results
from lr_core.retrieval.sparse_index import SparseIndex

# representations whose corpus encoding needs the sparse document vectors
SPARSE_CORPUS = frozenset({"sparse", "hybrid", "symmetric_sparse"})


def timed(timings: dict, key: str):
    """Context manager adding the seconds of its block to ``timings[key]``."""
    class _T:
        def __enter__(self):
            self.t = time.perf_counter()

        def __exit__(self, *exc):
            timings[key] = round(timings.get(key, 0.0) + time.perf_counter() - self.t, 3)

    return _T()


def batched(fn, texts: list[str], batch_size: int) -> np.ndarray | None:
    """``fn`` over ``texts`` in batches, as one float32 array; ``None`` if ``fn`` answers ``None``."""
    import torch

    from lr_core.progress import progress

    parts = []
    with torch.no_grad(), progress(total=len(texts), desc="encoding queries", unit="query") as bar:
        for b in range(0, len(texts), batch_size):
            out = fn(texts[b:b + batch_size])
            if out is None:
                return None
            parts.append(np.asarray(out.float().cpu().numpy(), dtype=np.float32))
            bar.update(len(texts[b:b + batch_size]))
    return np.concatenate(parts)


def light_doc_ids(tok, data) -> list[list[int]]:
    """A1's documents as token ids for the cache lookup (an empty document looks up EOS)."""
    rows = tok.doc_body_ids([p.title for p in data.corpus.values()], [p.text for p in data.corpus.values()])
    return [row or [tok.eos_id] for row in rows]


def quantized_doc_vectors(sparse_index) -> Iterator[tuple[str, dict[int, int]]]:
    """(doc id, {token id: floor(100 w)}) for every document of a SparseIndex (after its top-k)."""
    from lr_core.sparse import quantize_impact

    m = sparse_index.matrix
    for i, doc_id in enumerate(sparse_index.doc_ids):
        lo, hi = m.indptr[i], m.indptr[i + 1]
        yield doc_id, quantize_impact(dict(zip(m.indices[lo:hi].tolist(), m.data[lo:hi].tolist())))


def lucene_sparse_run(sparse_index, queries: dict[str, dict[int, float]], index_dir: Path, top_k: int,
                      threads: int = 2) -> dict[str, dict[str, float]]:
    """Sparse retrieval through a Lucene impact index built (once, atomically) from ``sparse_index``."""
    from lr_core.retrieval.lucene_impact import LuceneImpactSearcher, build_impact_index, write_impact_collection

    if not (index_dir / "lr_index.json").exists():
        collection = index_dir.with_name(index_dir.name + "-collection")
        if not collection.exists():
            write_impact_collection(quantized_doc_vectors(sparse_index), collection)
        build_impact_index(collection, index_dir, threads=threads)
    return LuceneImpactSearcher(index_dir).search(queries, k=top_k, threads=threads)


class Retrieval:
    """One (model, data set) evaluation: the queries, the encoded corpus and what representations
    share, each built once; :meth:`run` gives a representation's run (memoised)."""

    def __init__(self, model, data, instruction: str, settings, corpus, load_cache, lucene_dir: Path):
        self.model, self.data, self.instruction, self.settings, self.corpus = model, data, instruction, settings, corpus
        self.tok = model.encoder.tokenizer
        self.qids = list(data.queries)
        self.texts = [data.queries[q] for q in self.qids]
        self._load_cache, self.lucene_dir = load_cache, lucene_dir
        self.timings: dict[str, dict] = {}  # representation -> {step: seconds}
        self.runs: dict[str, dict] = {}

    def timing(self, rep: str) -> dict:
        return self.timings.setdefault(rep, {})

    def run(self, rep: str) -> dict[str, dict[str, float]]:
        if rep not in self.runs:
            self.runs[rep] = REPRESENTERS[rep](self)
        return self.runs[rep]

    def search(self, index, queries) -> dict[str, dict[str, float]]:
        scores, hits = index.search(queries, self.settings.top_k)
        return run_from_results(self.qids, scores, hits)

    @cached_property
    def dense_index(self) -> DenseIndex:
        return DenseIndex(self.corpus.dense.astype(np.float32), self.corpus.doc_ids, dim=self.settings.mrl_dim,
                          gpu_mode=self.settings.faiss_gpu, gpu_fp16=self.settings.faiss_fp16)

    @cached_property
    def sparse_index(self) -> SparseIndex:
        with timed(self.timing("sparse"), "index_s"):
            return SparseIndex.from_csr(self.corpus.sparse, self.corpus.doc_ids)  # top-k applied when encoding

    @cached_property
    def cache(self):
        with timed(self.timing("dense"), "cache_s"):
            return self._load_cache()

    def full_query_batches(self, encode) -> np.ndarray:
        return batched(lambda b: encode(b, self.instruction), self.texts, self.settings.query_batch_size)


def dense(r: Retrieval) -> dict:
    t = r.timing("dense")
    module = r.model.module
    if module is not None and module.query_side == "network":  # the variant's own query encoder (A3)
        with timed(t, "encode_s"):
            qv = r.full_query_batches(module.serve_dense_queries)
    else:
        cache = r.cache
        with timed(t, "tokenize_s"):
            ids = r.tok.light_query_ids(r.texts)
        with timed(t, "encode_s"):
            qv = cache.encode(ids)
    index = r.dense_index
    with timed(t, "search_s"):
        return r.search(index, qv)


def sparse(r: Retrieval) -> dict:
    t = r.timing("sparse")
    index = r.sparse_index
    with timed(t, "tokenize_s"):
        sids = r.tok.sparse_query_ids(r.texts)
    with timed(t, "encode_s"):
        qs = [query_term_vector(s, r.settings.sparse_query_mode) for s in sids]
    with timed(t, "search_s"):
        if r.settings.sparse_backend == "lucene":
            return lucene_sparse_run(index, dict(zip(r.qids, qs)), r.lucene_dir, r.settings.top_k)
        return r.search(index, qs)


def hybrid(r: Retrieval) -> dict:
    from lr_core.retrieval.fusion import fuse

    dense_run, sparse_run = r.run("dense"), r.run("sparse")
    s = r.settings
    with timed(r.timing("hybrid"), "fuse_s"):
        kw = {"w_dense": s.w_dense, "w_sparse": s.w_sparse} if s.fusion == "linear" else {"k": s.rrf_k}
        return fuse(dense_run, sparse_run, method=s.fusion, top_k=s.top_k, **kw)


def symmetric(r: Retrieval) -> dict:
    t = r.timing("symmetric")
    with timed(t, "encode_s"):
        qv = r.full_query_batches(r.model.encoder.encode_full_queries)
    index = r.dense_index
    with timed(t, "search_s"):
        return r.search(index, qv)


def symmetric_sparse(r: Retrieval) -> dict:
    import torch

    t, size = r.timing("symmetric_sparse"), r.settings.query_batch_size
    with timed(t, "encode_s"), torch.no_grad():
        qs = []
        for b in range(0, len(r.texts), size):
            m = r.model.encoder.encode_full_queries_sparse(r.texts[b:b + size], r.instruction).cpu()
            qs += [{int(i): float(m[row, i]) for i in torch.nonzero(m[row]).flatten()} for row in range(m.size(0))]
    with timed(t, "search_s"):
        return r.search(r.sparse_index, qs)


def light_both(r: Retrieval) -> dict:
    t, cache = r.timing("light_both"), r.cache
    with timed(t, "doc_encode_s"):
        doc_vectors = cache.encode(light_doc_ids(r.tok, r.data))
    with timed(t, "encode_s"):
        qv = cache.encode(r.tok.light_query_ids(r.texts))
    with timed(t, "search_s"):
        index = DenseIndex(doc_vectors, list(r.data.corpus), dim=r.settings.mrl_dim)
        scores, hits = index.search(qv, r.settings.top_k)
    return run_from_results(r.qids, scores, hits)


# representation -> how it retrieves (the order is REPRESENTATIONS', what `lr evaluate` lists)
REPRESENTERS = {"dense": dense, "sparse": sparse, "hybrid": hybrid, "symmetric": symmetric,
                "light_both": light_both, "symmetric_sparse": symmetric_sparse}
