"""The query pipelines ``lr bench speed`` times (:mod:`experiments.benchmarks.speed`), one function
each: the full LLM (or its first layers, A3), light dense (cache lookup), light sparse (token
counts), light hybrid (both, fused). Each runs every query in batches and returns its stage
seconds (tokenize, encode, search) from :class:`Stages`.
"""
from __future__ import annotations

import time


STAGES = ("tokenize_s", "encode_s", "search_s")


# --------------------------------------------------------------------------- timing


class Stages:
    """Accumulates wall seconds per stage over batches."""

    def __init__(self, *extra: str):
        self.t = {s: 0.0 for s in (*STAGES, *extra)}

    def timed(self, stage: str, fn, *args):
        start = time.perf_counter()
        out = fn(*args)
        self.t[stage] += time.perf_counter() - start
        return out

    def report(self, n: int) -> dict:
        total = sum(self.t[s] for s in STAGES)  # fuse_s is already inside search_s
        out = {k: round(v, 6) for k, v in self.t.items()}
        out.update(total_s=round(total, 6), qps=round(n / total, 2) if total > 0 else None,
                   encode_us_per_query=round(1e6 * self.t["encode_s"] / n, 3))
        return out


def batches(texts: list[str], size: int):
    for lo in range(0, len(texts), size):
        yield texts[lo:lo + size]


def time_full(encoder, texts: list[str], instruction: str, index, k: int, batch_size: int,
              num_layers: int | None = None) -> dict:
    """The symmetric baseline: every query through the whole LLM (or its first ``num_layers``, A3)."""
    import torch

    tok = encoder.tokenizer
    st = Stages()

    def to_tensors(rows):
        padded = tok.pad(rows)
        return (torch.tensor(padded.input_ids, device=encoder.device),
                torch.tensor(padded.attention_mask, device=encoder.device))

    def encode(ids, mask):
        return encoder.encode_full_query_ids(ids, mask, num_layers=num_layers).float().cpu().numpy()  # .cpu() waits

    with torch.inference_mode():
        for b in batches(texts, batch_size):
            ids, mask = st.timed("tokenize_s", lambda qs: to_tensors(tok.full_query_ids(qs, instruction)), b)
            vecs = st.timed("encode_s", encode, ids, mask)
            st.timed("search_s", index.search, vecs, k)
    return st.report(len(texts))


def time_light_dense(tok, cache, texts: list[str], index, k: int, batch_size: int) -> dict:
    st = Stages()
    for b in batches(texts, batch_size):
        ids = st.timed("tokenize_s", tok.light_query_ids, b)
        vecs = st.timed("encode_s", cache.encode, ids)
        st.timed("search_s", index.search, vecs, k)
    return st.report(len(texts))


def _counts(rows, mode="counts"):
    from lr_core.query_side import query_term_vector

    return [query_term_vector(r, mode) for r in rows]


def time_light_sparse(tok, texts: list[str], index, k: int, batch_size: int) -> dict:
    st = Stages()
    for b in batches(texts, batch_size):
        ids = st.timed("tokenize_s", tok.sparse_query_ids, b)
        qs = st.timed("encode_s", _counts, ids)
        st.timed("search_s", index.search, qs, k)
    return st.report(len(texts))


def _fuse_batch(dense_res, sparse_res, k: int, w_dense: float, w_sparse: float):
    from lr_core.retrieval.fusion import fuse_linear

    (ds, di), (ss, si) = dense_res, sparse_res
    dense_run = {str(q): dict(zip(ids, map(float, sc))) for q, (sc, ids) in enumerate(zip(ds, di))}
    sparse_run = {str(q): dict(zip(ids, map(float, sc))) for q, (sc, ids) in enumerate(zip(ss, si))}
    return fuse_linear(dense_run, sparse_run, w_dense=w_dense, w_sparse=w_sparse, top_k=k)


def time_light_hybrid(tok, cache, texts: list[str], dense_index, sparse_index, k: int, batch_size: int,
                      w_dense: float = 0.7, w_sparse: float = 0.3) -> dict:
    """Both light sides and the fusion, run again (not summed from the other pipelines)."""
    st = Stages("fuse_s")

    def both_ids(b):
        return tok.light_query_ids(b), tok.sparse_query_ids(b)

    def both_vectors(light, sparse):
        return cache.encode(light), _counts(sparse)

    for b in batches(texts, batch_size):
        light, sparse = st.timed("tokenize_s", both_ids, b)
        dv, sv = st.timed("encode_s", both_vectors, light, sparse)
        start = time.perf_counter()
        dres = dense_index.search(dv, k)
        sres = sparse_index.search(sv, k)
        fuse_start = time.perf_counter()
        _fuse_batch(dres, sres, k, w_dense, w_sparse)
        end = time.perf_counter()
        st.t["search_s"] += end - start
        st.t["fuse_s"] += end - fuse_start
    return st.report(len(texts))
