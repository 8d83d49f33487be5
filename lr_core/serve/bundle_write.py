"""Writing a serving bundle (the format is :mod:`lr_core.serve.bundle`'s): the files, their
checksums in ``manifest.json``, into a temporary directory beside ``OUT`` renamed into place, so
a crash never leaves a half-written bundle. Torch-free: it takes a tokenizer, a vocabulary cache
and encoded document vectors; :mod:`lr_core.pipeline.export` makes those from a trained run.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from lr_core.errors import ConfigError
from lr_core.serve.bundle import (BUNDLE_FORMAT, BUNDLE_VERSION, CACHE_DTYPES, CONFIG, DENSE_INDEX, MANIFEST,
                                  SPARSE_INDEX, SPARSE_QUERY_MODES, TOKENIZER, VOCAB_CACHE, sha256_file)


# --------------------------------------------------------------------------- export


def check_out_dir(out: str | os.PathLike, force: bool) -> None:
    """A bundle may be written to ``out``: it does not exist, or ``force`` and it is a bundle (or empty)."""
    out = Path(out)
    if out.exists():
        if not force:
            raise ConfigError(f"{out} already exists; pass --force to replace it")
        if not (out / MANIFEST).is_file() and not (out.is_dir() and not any(out.iterdir())):
            raise ConfigError(f"{out} exists and is not a serving bundle; refusing to replace it")


@contextmanager
def _atomic_dir(out: Path, force: bool) -> Iterator[Path]:
    """A temporary directory beside ``out`` that replaces it on success (and is removed on failure).

    ``force`` replaces an existing bundle (or an empty directory), never any other directory.
    """
    check_out_dir(out, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o755)  # mkdtemp makes 0700; bundles are meant to be shared
        if out.exists():  # a directory cannot be os.replace'd onto a non-empty one: swap via a side name
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _library_versions(names: Sequence[str]) -> dict[str, str | None]:
    import importlib.metadata

    out = {}
    for n in names:
        try:
            out[n] = importlib.metadata.version(n)
        except importlib.metadata.PackageNotFoundError:
            out[n] = None
    return out


@dataclass
class BundleSettings:
    """How a bundle answers queries (stored in config.json)."""

    fusion: str = "linear"  # or "rrf"
    w_dense: float = 0.7
    w_sparse: float = 0.3
    rrf_k: int = 60
    fusion_depth: int = 1000  # list depth fused per side: `lr evaluate`'s top_k
    sparse_query_mode: str = "counts"
    sparse_top_k: int | None = None  # applied when the corpus was encoded; recorded for provenance
    mrl_dim: int | None = None

    def check(self) -> None:
        if self.fusion not in ("linear", "rrf"):
            raise ConfigError(f"unknown fusion method {self.fusion!r}; use linear or rrf")
        if self.sparse_query_mode not in SPARSE_QUERY_MODES:
            raise ConfigError(f"sparse query mode must be one of {', '.join(SPARSE_QUERY_MODES)}, "
                              f"got {self.sparse_query_mode!r}")
        if int(self.fusion_depth) < 1:
            raise ConfigError(f"fusion depth must be >= 1, got {self.fusion_depth}")


def write_bundle(out: str | os.PathLike, tokenizer, cache, doc_ids: Sequence[str], dense_vectors: np.ndarray,
                 sparse_matrix=None, *, dataset: str, instruction: str, settings: BundleSettings | None = None,
                 model_info: dict | None = None, force: bool = False) -> Path:
    """Write a bundle from its parts (no model needed): a :class:`~lr_core.tokenization.RetrievalTokenizer`,
    a :class:`~lr_core.cache.VocabCache` (its dtype is kept), document ids, dense document vectors
    ``[N, H]`` and, for the sparse and hybrid modes, a ``[N, V]`` SciPy sparse matrix of term weights.

    Written into a temporary directory beside ``out`` and renamed into place.
    """
    from lr_core.retrieval.dense_index import DenseIndex
    from lr_core.retrieval.sparse_index import SparseIndex

    settings = settings or BundleSettings()
    settings.check()
    start = time.perf_counter()
    doc_ids = [str(d) for d in doc_ids]
    cache_dtype = str(cache.vectors.dtype)
    if cache_dtype not in CACHE_DTYPES:
        raise ConfigError(f"cache dtype must be one of {', '.join(CACHE_DTYPES)}, got {cache_dtype}")
    if cache.vectors.shape[0] != tokenizer.vocab_size:
        raise ConfigError(f"the cache has {cache.vectors.shape[0]} rows, the tokenizer {tokenizer.vocab_size} ids")
    if cache.metadata.tokenizer_hash != tokenizer.fingerprint() or cache.metadata.instruction != instruction:
        raise ConfigError("the cache was built for another tokenizer or instruction than the bundle's")
    modes = ("dense", "sparse", "hybrid") if sparse_matrix is not None else ("dense",)
    cache = type(cache)(cache.vectors, replace(cache.metadata, dtype=cache_dtype))  # the stored dtype
    out = Path(out)
    with _atomic_dir(out, force) as tmp:
        (tmp / TOKENIZER).write_text(tokenizer.backend.to_str(), encoding="utf-8")
        cache.save(tmp / VOCAB_CACHE)
        DenseIndex(np.asarray(dense_vectors, dtype=np.float32), doc_ids, dim=settings.mrl_dim,
                   use_gpu=False).save(str(tmp / DENSE_INDEX))
        if sparse_matrix is not None:
            if sparse_matrix.shape[1] != tokenizer.vocab_size:
                raise ConfigError(f"sparse document matrix has {sparse_matrix.shape[1]} columns, the tokenizer "
                                  f"{tokenizer.vocab_size} ids")
            # column-major on disk: the server loads exactly what it searches (one copy, no conversion)
            SparseIndex.from_csr(sparse_matrix, doc_ids).save(str(tmp / SPARSE_INDEX), layout="postings")
        tok = tokenizer
        config = {
            "dataset": dataset,
            "instruction": instruction,
            "modes": list(modes),
            "default_mode": "hybrid" if "hybrid" in modes else "dense",
            "tokenizer": {"bos_id": tok.bos_id, "eos_id": tok.eos_id, "pad_id": tok.pad_id,
                          "special_ids": list(tok.special_ids), "max_query_tokens": tok.max_query_tokens,
                          "max_doc_len": tok.max_doc_len, "lowercase": True, "fingerprint": tok.fingerprint(),
                          "vocab_size": tok.vocab_size},
            "fusion": {"method": settings.fusion, "w_dense": settings.w_dense, "w_sparse": settings.w_sparse,
                       "rrf_k": settings.rrf_k, "depth": int(settings.fusion_depth)},
            "sparse_query_mode": settings.sparse_query_mode,
            "sparse_top_k": settings.sparse_top_k,
            "mrl_dim": settings.mrl_dim,
            "cache_dtype": cache_dtype,
            "model": {"hidden_size": int(cache.vectors.shape[1]), **(model_info or {})},
        }
        (tmp / CONFIG).write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        files = {p.name: {"sha256": sha256_file(p), "bytes": p.stat().st_size}
                 for p in sorted(tmp.iterdir()) if p.is_file()}
        manifest = {"format": BUNDLE_FORMAT, "version": BUNDLE_VERSION,
                    "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                    "dataset": dataset, "num_documents": len(doc_ids), "modes": list(modes),
                    "cache_dtype": cache_dtype, "write_seconds": round(time.perf_counter() - start, 3),
                    "libraries": _library_versions(["numpy", "scipy", "faiss-cpu", "tokenizers"]),
                    "files": files}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return out
