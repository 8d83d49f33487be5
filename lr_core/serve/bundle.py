"""Serving bundles: everything an LLM-free query server needs, in one checked directory.

At serve time LightRetriever runs no transformer: a dense query is the L2-normalised mean of
cached token vectors, a sparse query is its token counts, hybrid is min-max fusion of the two.
A bundle holds exactly what that needs (written by :func:`lr_core.serve.bundle_write.write_bundle`,
which :func:`lr_core.pipeline.export.export_bundle` calls with a trained model's cache and encoded
corpus; read and verified here by :func:`load_bundle`, with tokenizers + numpy + faiss + scipy
only, never torch)::

    OUT/
      manifest.json          format, version, summary, and the sha256 + size of every other file
      config.json            tokenizer rules (special ids, max_query_tokens, lowercasing), the
                             instruction and dataset it was built for, fusion settings, modes
      tokenizer.json         the backend ``tokenizers.Tokenizer`` (its Lowercase normalizer included)
      vocab_cache.npz        the vocabulary cache (:class:`~lr_core.cache.VocabCache`, float32/float16)
      dense.faiss            Faiss IndexFlatIP of the encoded corpus (+ dense.faiss.ids.json: doc ids)
      sparse.npz             document term weights, column-major (CSC: term -> documents; + sparse.npz.ids.json)

The bundle is written into a temporary directory beside ``OUT`` and renamed into place, so a
crash never leaves a half-written bundle; loading re-hashes every file and names the first one
whose checksum differs.

Library (``lr export-serving`` writes a bundle, :mod:`lr_core.pipeline.export`)::

    >>> bundle = load_bundle("bundles/scifact")                            # doctest: +SKIP
    >>> bundle.search(["what causes scurvy?"], k=10, mode="hybrid")        # doctest: +SKIP
    [[('doc17', 0.93), ...]]
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lr_core.errors import CacheMismatchError, ConfigError, DataError
from lr_core.query_side import QUERY_MODES, query_term_vector


log = logging.getLogger(__name__)

BUNDLE_FORMAT = "lightretriever-serving"
BUNDLE_VERSION = 1
MANIFEST = "manifest.json"
CONFIG = "config.json"
TOKENIZER = "tokenizer.json"
VOCAB_CACHE = "vocab_cache.npz"
DENSE_INDEX = "dense.faiss"
SPARSE_INDEX = "sparse.npz"
IDS_SUFFIX = ".ids.json"  # lr_core.retrieval.search writes each index's doc ids beside it under this suffix
MODES = ("dense", "sparse", "hybrid")
CACHE_DTYPES = ("float32", "float16")
SPARSE_QUERY_MODES = QUERY_MODES


class BundleError(DataError):
    """A serving bundle is missing, incomplete, corrupt or inconsistent (the message names the file)."""


# --------------------------------------------------------------------------- checksums


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def read_manifest(bundle_dir: str | os.PathLike) -> dict:
    bundle_dir = Path(bundle_dir)
    path = bundle_dir / MANIFEST
    if not bundle_dir.is_dir():
        raise BundleError(f"serving bundle not found: {bundle_dir} is not a directory")
    if not path.is_file():
        raise BundleError(f"{bundle_dir} is not a serving bundle (no {MANIFEST}); create one with `lr export-serving`")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{path}: not a {BUNDLE_FORMAT} manifest")
    if manifest.get("version") != BUNDLE_VERSION:
        raise BundleError(f"{path}: bundle version {manifest.get('version')!r}, this code reads version {BUNDLE_VERSION}; "
                          "re-export it with `lr export-serving`")
    if not isinstance(manifest.get("files"), dict) or not manifest["files"]:
        raise BundleError(f"{path}: lists no files")
    return manifest


def verify_bundle(bundle_dir: str | os.PathLike) -> dict:
    """Check every file listed in the manifest (present, same size, same sha256); returns the manifest.

    Raises :class:`BundleError` naming the first file that is missing or differs.
    """
    bundle_dir = Path(bundle_dir)
    manifest = read_manifest(bundle_dir)
    for name, entry in sorted(manifest["files"].items()):
        # names are plain file names written by export_bundle; anything else is a forged manifest
        if Path(name).name != name or name in (".", "..", MANIFEST):
            raise BundleError(f"{bundle_dir / MANIFEST}: invalid file name {name!r}")
        path = bundle_dir / name
        if not path.is_file():
            raise BundleError(f"bundle file {name} is missing from {bundle_dir}")
        size = path.stat().st_size
        if size != entry.get("bytes"):
            raise BundleError(f"bundle file {name} has {size} bytes, the manifest says {entry.get('bytes')}: "
                              f"the bundle {bundle_dir} is corrupt or was modified; re-export it")
        digest = sha256_file(path)
        if digest != entry.get("sha256"):
            raise BundleError(f"bundle file {name}: sha256 {digest[:16]}... does not match the manifest "
                              f"({str(entry.get('sha256'))[:16]}...): the bundle {bundle_dir} is corrupt or was "
                              "modified; re-export it")
    return manifest


# --------------------------------------------------------------------------- the loaded bundle


@dataclass
class ServingBundle:
    """A verified, loaded bundle: tokenizer, vocabulary cache, indexes and settings."""

    path: Path
    manifest: dict
    config: dict
    tokenizer: object  # RetrievalTokenizer
    cache: object  # VocabCache
    dense: object | None  # DenseIndex
    sparse: object | None  # SparseIndex
    _fast: dict | None = None  # arrays of the hybrid fast path, made at the first hybrid search

    @property
    def modes(self) -> tuple[str, ...]:
        return tuple(self.config["modes"])

    @property
    def default_mode(self) -> str:
        return "hybrid" if "hybrid" in self.modes else self.modes[0]

    @property
    def num_documents(self) -> int:
        return len(self.dense.doc_ids) if self.dense is not None else len(self.sparse.doc_ids)

    # -- query encoding (no transformer) --------------------------------------------
    def encode_dense(self, texts: Sequence[str]) -> np.ndarray:
        """Light dense vectors [B, H] float32: cached token vectors, averaged, L2-normalised."""
        return self.cache.encode(self.tokenizer.light_query_ids(list(texts)))

    def encode_sparse(self, texts: Sequence[str]) -> list[dict[int, float]]:
        mode = self.config["sparse_query_mode"]
        return [query_term_vector(ids, mode) for ids in self.tokenizer.sparse_query_ids(list(texts))]

    # -- search -----------------------------------------------------------------------
    def search(self, texts: Sequence[str], k: int = 10, mode: str | None = None) -> list[list[tuple[str, float]]]:
        """Top-``k`` ``(doc id, score)`` lists, one per query text, best first.

        Hybrid searches both sides ``max(k, fusion_depth)`` deep and fuses those lists, exactly
        as ``lr evaluate`` does with its ``top_k``, then cuts to ``k``: the min-max normalisation
        depends on how deep the lists are, so the depth is part of the bundle's settings.
        """
        mode = mode or self.default_mode
        if mode not in self.modes:
            raise ConfigError(f"mode {mode!r} is not served by this bundle; available: {', '.join(self.modes)}")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ConfigError(f"k must be a positive integer, got {k!r}")
        texts = list(texts)
        for t in texts:
            if not isinstance(t, str) or not t.strip():
                raise DataError(f"query {t!r} is empty")
        if not texts:
            return []
        k = int(k)
        depth = max(k, int(self.config["fusion"]["depth"])) if mode == "hybrid" else k
        if mode == "hybrid" and self.config["fusion"]["method"] == "linear":
            return self._hybrid_linear(texts, k, depth)
        dense_lists = sparse_lists = None
        if mode in ("dense", "hybrid"):
            scores, ids = self.dense.search(self.encode_dense(texts), depth)
            dense_lists = [list(zip(i, map(float, s))) for s, i in zip(scores, ids)]
        if mode in ("sparse", "hybrid"):
            scores, ids = self.sparse.search(self.encode_sparse(texts), depth)
            sparse_lists = [list(zip(i, map(float, s))) for s, i in zip(scores, ids)]
        if mode == "dense":
            return dense_lists
        if mode == "sparse":
            return sparse_lists
        return [self._fuse(d, s, depth)[:k] for d, s in zip(dense_lists, sparse_lists)]

    def _hybrid_linear(self, texts: list[str], k: int, depth: int) -> list[list[tuple[str, float]]]:
        """Linear fusion on arrays (:func:`lr_core.retrieval.fusion.fuse_linear_arrays`): the same lists as
        :meth:`_fuse`, without building a dict per document of the ``depth``-deep lists."""
        from lr_core.retrieval.fusion import fuse_linear_arrays

        fast = self._fast_arrays()
        f = self.config["fusion"]
        d_scores, d_pos = self.dense.search_positions(self.encode_dense(texts), depth, sort=False)
        s_scores, s_pos = self.sparse.search_positions(self.encode_sparse(texts), depth, sort=False)
        out = []
        for i in range(len(texts)):  # load_bundle checked that both indexes list the documents alike
            pos, fused = fuse_linear_arrays(d_pos[i], d_scores[i], s_pos[i], s_scores[i], fast["id_rank"],
                                            f["w_dense"], f["w_sparse"], k=k)
            out.append(list(zip(fast["ids"][pos].tolist(), fused.tolist())))
        return out

    def _fast_arrays(self) -> dict:
        """The doc ids as an array and their ranks in string order (fusion's tie-break)."""
        if self._fast is None:
            ids = np.asarray(self.dense.doc_ids, dtype=object)
            rank = np.empty(len(ids), dtype=np.int64)
            rank[np.argsort(np.asarray(self.dense.doc_ids, dtype=str), kind="stable")] = np.arange(len(ids))
            self._fast = {"ids": ids, "id_rank": rank}
        return self._fast

    def _fuse(self, dense: list[tuple[str, float]], sparse: list[tuple[str, float]], depth: int):
        from lr_core.retrieval.fusion import fuse

        f = self.config["fusion"]
        kw = ({"w_dense": f["w_dense"], "w_sparse": f["w_sparse"]} if f["method"] == "linear" else {"k": f["rrf_k"]})
        run = fuse({"q": dict(dense)}, {"q": dict(sparse)}, method=f["method"], top_k=depth, **kw)
        return list(run["q"].items())


def load_bundle(bundle_dir: str | os.PathLike, verify: bool = True, use_gpu: bool | None = False) -> ServingBundle:
    """Verify (sha256 of every file) and load a bundle; torch and transformers are never imported.

    ``use_gpu``: Faiss on the GPU (``None``: when Faiss sees one); the default keeps the
    server on the CPU, where a flat index of a BEIR corpus answers in milliseconds.
    """
    from tokenizers import Tokenizer

    from lr_core.cache import VocabCache
    from lr_core.retrieval.dense_index import DenseIndex
    from lr_core.retrieval.sparse_index import SparseIndex
    from lr_core.tokenization import RetrievalTokenizer

    bundle_dir = Path(bundle_dir)
    manifest = verify_bundle(bundle_dir) if verify else read_manifest(bundle_dir)
    try:
        config = json.loads((bundle_dir / CONFIG).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(f"bundle file {CONFIG} is missing from {bundle_dir}") from None
    tcfg = config["tokenizer"]
    try:
        backend = Tokenizer.from_file(str(bundle_dir / TOKENIZER))
    except Exception as exc:  # the Rust side raises a bare Exception for a malformed file
        raise BundleError(f"bundle file {TOKENIZER}: cannot be read as a tokenizers.Tokenizer ({exc})") from None
    tok = RetrievalTokenizer(backend, tcfg["bos_id"], tcfg["eos_id"], tcfg["pad_id"],
                             max_doc_len=tcfg["max_doc_len"], max_query_tokens=tcfg["max_query_tokens"])
    if tok.fingerprint() != tcfg["fingerprint"]:
        # RetrievalTokenizer always lowercases; a tokenizer saved without the rule hashes differently
        raise BundleError(f"bundle file {TOKENIZER}: tokenizer fingerprint {tok.fingerprint()} differs from "
                          f"{tcfg['fingerprint']} recorded at export (lowercasing rule or vocabulary changed)")
    try:
        cache = VocabCache.load(bundle_dir / VOCAB_CACHE, expect={"tokenizer_hash": tok.fingerprint(),
                                                                    "instruction": config["instruction"]})
    except CacheMismatchError as exc:
        raise BundleError(f"bundle file {VOCAB_CACHE}: {exc}") from None
    if cache.vectors.shape[0] != tok.vocab_size:
        raise BundleError(f"bundle file {VOCAB_CACHE}: {cache.vectors.shape[0]} rows for a vocabulary of {tok.vocab_size}")
    modes = tuple(config["modes"])
    dense = DenseIndex.load(str(bundle_dir / DENSE_INDEX), use_gpu=use_gpu) if "dense" in modes else None
    sparse = SparseIndex.load(str(bundle_dir / SPARSE_INDEX)) if "sparse" in modes else None
    if dense is not None and dense.source_dim != cache.vectors.shape[1]:
        raise BundleError(f"bundle file {DENSE_INDEX}: documents have {dense.source_dim} dims, the cache "
                          f"{cache.vectors.shape[1]}")
    if sparse is not None and sparse.vocab_size != tok.vocab_size:
        raise BundleError(f"bundle file {SPARSE_INDEX}: {sparse.vocab_size} term columns for a vocabulary of "
                          f"{tok.vocab_size}")
    if dense is not None and sparse is not None and dense.doc_ids != sparse.doc_ids:
        raise BundleError(f"bundle {bundle_dir}: the dense and sparse indexes list different documents")
    bundle = ServingBundle(bundle_dir, manifest, config, tok, cache, dense, sparse)
    # One search per mode now: faiss threads start and the sparse index builds its posting lists
    # (lazily, on first search) before the first request, not during it.
    for mode in modes:
        bundle.search(["warm up"], k=1, mode=mode)
    return bundle
