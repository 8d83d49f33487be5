"""Encode a corpus into dense and sparse document vectors, in independent resumable shards.

Documents are split into ``num_shards`` contiguous ranges (in corpus order). Each shard is
written atomically as ``shard-00003-of-00008.npz`` (doc ids, dense [n, H], sparse CSR
[n, V]); a finished shard is never redone, so a killed job resumes where it stopped, and
separate processes, GPUs or Slurm array tasks can each encode their own ``--shards``.
``manifest.json`` records what the shards were encoded with (model, checkpoint, tokenizer,
lengths, corpus): shards of another model are never mixed in. :func:`merge_shards` joins
them. Under several ranks (torchrun, ``srun``) each rank encodes :func:`rank_shards` of them
(:func:`lr_core.retrieval.evaluate.encode_corpus_shards_on_ranks`) and rank 0 merges.

>>> paths = encode_corpus(encoder, dataset.corpus, "runs/x/corpus/scifact", fingerprint=fp)   # doctest: +SKIP
>>> corpus = merge_shards("runs/x/corpus/scifact")                                           # doctest: +SKIP
>>> corpus.dense.shape, corpus.sparse.shape                                                  # doctest: +SKIP
"""
from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import scipy.sparse as sp

from lr_core.data.beir import Passage
from lr_core.errors import CacheMismatchError, DataError
from lr_core.io import atomic_write_bytes

MANIFEST = "manifest.json"


@dataclass
class EncodedCorpus:
    doc_ids: list[str]
    dense: np.ndarray | None  # [N, H] float32 or float16, L2-normalised
    sparse: sp.csr_matrix | None  # [N, V] float32 term weights


def shard_ranges(n_docs: int, num_shards: int) -> list[tuple[int, int]]:
    """Contiguous, nearly equal ``[lo, hi)`` ranges covering ``n_docs``."""
    if num_shards < 1:
        raise ValueError("num_shards must be >= 1")
    bounds = np.linspace(0, n_docs, num_shards + 1).round().astype(int)
    return [(int(bounds[i]), int(bounds[i + 1])) for i in range(num_shards)]


def rank_shards(num_shards: int, rank: int, world_size: int) -> list[int]:
    """The shards rank ``rank`` of ``world_size`` encodes: every ``world_size``-th one from ``rank``
    (disjoint across ranks, together all of them; with fewer shards than ranks some ranks get none).

    >>> rank_shards(8, 1, 3)
    [1, 4, 7]
    """
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} out of range for {world_size} ranks")
    return list(range(rank, num_shards, world_size))


def shard_path(out_dir: Path, index: int, num_shards: int) -> Path:
    return Path(out_dir) / f"shard-{index:05d}-of-{num_shards:05d}.npz"


def corpus_hash(doc_ids: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(doc_ids).encode()).hexdigest()[:16]


def _check_manifest(out_dir: Path, manifest: dict) -> None:
    path = out_dir / MANIFEST
    if path.exists():
        old = json.loads(path.read_text())
        if old != manifest:
            diff = sorted(k for k in set(old) | set(manifest) if old.get(k) != manifest.get(k))
            raise CacheMismatchError(f"{out_dir} holds shards encoded with different settings ({', '.join(diff)}); "
                                     "use another directory or delete it")
    else:
        atomic_write_bytes(path, json.dumps(manifest, indent=2, sort_keys=True).encode())


def encode_corpus(encoder, corpus: Mapping[str, Passage], out_dir: str | os.PathLike, fingerprint: dict,
                  num_shards: int = 1, shards: Sequence[int] | None = None, batch_size: int = 16,
                  dense: bool = True, sparse: bool = True, dense_dtype: str = "float32",
                  sparse_top_k: int | None = None, progress: bool = True) -> list[Path]:
    """Encode the given shards (default: all) of ``corpus``; returns the shard paths written or found.

    ``fingerprint`` identifies the encoder (model id, checkpoint hash, ...); it is stored in
    the manifest together with the corpus hash, lengths and output options. ``sparse_top_k``
    keeps only each document's k largest term weights (the paper's index-size knob); applied
    here, it also keeps untrained models' nearly dense vectors from filling memory and disk.
    """
    import torch
    from lr_core.progress import progress as progress_bar

    if not corpus:
        raise DataError("the corpus is empty")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    doc_ids = list(corpus)
    tok = encoder.tokenizer
    manifest = {**fingerprint, "corpus_hash": corpus_hash(doc_ids), "num_docs": len(doc_ids),
                "num_shards": num_shards, "max_doc_len": tok.max_doc_len, "tokenizer_hash": tok.fingerprint(),
                "dense": dense, "sparse": sparse, "dense_dtype": dense_dtype, "sparse_top_k": sparse_top_k}
    _check_manifest(out_dir, manifest)
    ranges = shard_ranges(len(doc_ids), num_shards)
    wanted = list(range(num_shards)) if shards is None else list(shards)
    for s in wanted:
        if not 0 <= s < num_shards:
            raise ValueError(f"shard {s} out of range for {num_shards} shards")
    todo = [s for s in wanted if not shard_path(out_dir, s, num_shards).exists()]
    total_docs = sum(ranges[s][1] - ranges[s][0] for s in todo)
    was_training = encoder.training
    encoder.eval()
    bar = progress_bar(total=total_docs, desc=f"encoding corpus {out_dir.name}", unit="doc", enabled=progress)
    try:
        for s in todo:
            lo, hi = ranges[s]
            ids = doc_ids[lo:hi]
            passages = [corpus[i] for i in ids]
            token_rows = tok.doc_ids([p.title for p in passages], [p.text for p in passages])
            order = sorted(range(len(ids)), key=lambda i: -len(token_rows[i]))  # longest first: less padding
            dense_out = np.zeros((len(ids), encoder.hidden_size), dtype=np.float32) if dense else None
            sparse_parts: list[tuple[np.ndarray, sp.csr_matrix]] = []
            with torch.no_grad():
                for b in range(0, len(order), batch_size):
                    idx = order[b:b + batch_size]
                    padded = tok.pad([token_rows[i] for i in idx])
                    out = encoder.encode_document_ids(
                        torch.tensor(padded.input_ids, device=encoder.device),
                        torch.tensor(padded.attention_mask, device=encoder.device), dense=dense, sparse=sparse)
                    if dense:
                        dense_out[idx] = out["dense"].cpu().numpy()
                    if sparse:
                        sparse_parts.append((np.asarray(idx), _to_csr(out["sparse"], sparse_top_k)))
                    bar.update(len(idx))
            arrays = {"doc_ids": np.array(ids)}
            if dense:
                arrays["dense"] = dense_out.astype(dense_dtype)
            if sparse:
                rows = np.concatenate([i for i, _ in sparse_parts])
                mat = sp.vstack([m for _, m in sparse_parts]).tocsr()
                inverse = np.empty_like(rows)
                inverse[rows] = np.arange(len(rows))
                mat = mat[inverse].tocsr()  # back to corpus order
                arrays.update(sparse_data=mat.data.astype(np.float32), sparse_indices=mat.indices,
                              sparse_indptr=mat.indptr, sparse_shape=np.array(mat.shape))
            buf = io.BytesIO()
            np.savez(buf, **arrays)
            atomic_write_bytes(shard_path(out_dir, s, num_shards), buf.getvalue())
    finally:
        bar.close()
        encoder.train(was_training)
    return [shard_path(out_dir, s, num_shards) for s in wanted]


def _to_csr(weights, top_k: int | None) -> sp.csr_matrix:
    """[B, V] tensor -> CSR, keeping the ``top_k`` largest weights per row (ties: lower token id)."""
    import torch

    w = weights.detach().float().cpu()
    if top_k is not None and top_k < w.shape[1]:
        # stable sort on -w keeps the lower id first among equal weights
        idx = torch.sort(-w, dim=1, stable=True).indices[:, :top_k]
        kept = torch.zeros_like(w).scatter_(1, idx, w.gather(1, idx))
        w = kept
    return sp.csr_matrix(w.numpy())


def csr_top_k(mat: sp.csr_matrix, top_k: int) -> sp.csr_matrix:
    """Each row's ``top_k`` largest weights (ties: lower token id), the same cut :func:`_to_csr` makes
    while encoding: a top-k corpus is the full encoding cut, not a second pass over the corpus."""
    mat = sp.csr_matrix(mat, copy=True)
    mat.sort_indices()
    indptr, indices, data = [0], [], []
    for i in range(mat.shape[0]):
        lo, hi = mat.indptr[i], mat.indptr[i + 1]
        cols, vals = mat.indices[lo:hi], mat.data[lo:hi]
        if hi - lo > top_k:
            keep = np.sort(np.lexsort((cols, -vals))[:top_k])  # by weight, then by id; kept in id order
            cols, vals = cols[keep], vals[keep]
        indices.append(cols)
        data.append(vals)
        indptr.append(indptr[-1] + len(cols))
    return sp.csr_matrix((np.concatenate(data) if data else np.zeros(0, mat.dtype),
                          np.concatenate(indices) if indices else np.zeros(0, np.int32), np.asarray(indptr)),
                         shape=mat.shape)


def sparse_doc_stats(mat: sp.csr_matrix) -> dict:
    """How sparse the documents' vectors are (recorded beside every sparse metric, so a FLOPs
    weight or a top-k cut can be judged on size as well as quality):

    - ``terms_mean`` / ``terms_median`` / ``terms_max``: non-zero terms per document;
    - ``flops``: sum over terms of p_t^2, p_t the fraction of documents holding term t, which is
      the expected number of terms two documents share (SPLADE's FLOPS estimate).

    >>> sparse_doc_stats(sp.csr_matrix(np.array([[1.0, 0, 2.0], [0, 0, 3.0]])))["terms_mean"]
    1.5
    """
    n_docs = mat.shape[0]
    if n_docs == 0:
        raise ValueError("sparse_doc_stats: the corpus has no documents")
    if (mat.data == 0).any():  # a stored zero is no term; encodings store none, so no copy as a rule
        mat = sp.csr_matrix(mat, copy=True)
        mat.eliminate_zeros()
    terms = np.diff(mat.indptr)
    p = np.bincount(mat.indices, minlength=mat.shape[1]) / n_docs
    return {"terms_mean": float(terms.mean()), "terms_median": float(np.median(terms)),
            "terms_max": int(terms.max()), "flops": float((p ** 2).sum())}


def _load_shard(path: Path) -> EncodedCorpus:
    with np.load(path, allow_pickle=False) as z:
        ids = [str(x) for x in z["doc_ids"]]
        dense = z["dense"] if "dense" in z else None
        sparse = (sp.csr_matrix((z["sparse_data"], z["sparse_indices"], z["sparse_indptr"]),
                                shape=tuple(z["sparse_shape"])) if "sparse_data" in z else None)
    return EncodedCorpus(ids, dense, sparse)


def merge_shards(out_dir: str | os.PathLike) -> EncodedCorpus:
    """Join all shards of ``out_dir`` in corpus order; a missing shard is a clear error."""
    out_dir = Path(out_dir)
    mpath = out_dir / MANIFEST
    if not mpath.is_file():
        raise DataError(f"{out_dir} holds no encoded corpus (no {MANIFEST}); run the encoding first")
    n = json.loads(mpath.read_text())["num_shards"]
    missing = [s for s in range(n) if not shard_path(out_dir, s, n).exists()]
    if missing:
        raise DataError(f"{out_dir}: shard(s) {missing} of {n} are not encoded yet")
    parts = [_load_shard(shard_path(out_dir, s, n)) for s in range(n)]
    ids = [i for p in parts for i in p.doc_ids]
    dense = np.concatenate([p.dense for p in parts]) if parts[0].dense is not None else None
    sparse = sp.vstack([p.sparse for p in parts]).tocsr() if parts[0].sparse is not None else None
    return EncodedCorpus(ids, dense, sparse)
