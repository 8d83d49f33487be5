"""The BM25 baseline through Anserini (:mod:`lr_core.retrieval.lucene_jvm`): defaults ``k1=0.9,
b=0.4``, the default English analyzer with Porter stemming and stopwords, over a BEIR corpus as
Anserini's BEIR regressions index it: ``variant="multifield"`` (default; title and text in
separate fields, queried over both: BEIR's official BM25, SciFact nDCG@10 0.6647, the paper's
66.5) or ``variant="flat"`` (``contents = title + " " + text``: SciFact 0.6789)::

    from lr_core.data.beir import load_beir
    from lr_core.retrieval.lucene_bm25 import bm25_search

    ds = load_beir("scifact", "test")                   # data dir from LR_DATA_DIR
    run = bm25_search(ds, "indexes/scifact-bm25")       # {qid: {docid: score}}

Scores are returned as Anserini gives them; Lucene ranks ties by document id ascending.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Mapping
from pathlib import Path

from lr_core.data.beir import BeirDataset, Passage
from lr_core.errors import ConfigError, DataError
from lr_core.retrieval.lucene_jvm import (build_index, check_docid, check_existing, check_k, check_qids, check_threads,
                                         ensure_java, require_index, search_collection, tmp_sibling)

__all__ = [
    "BM25_VARIANTS",
    "build_bm25_index",
    "LuceneBM25Searcher",
    "bm25_search",
]


BM25_VARIANTS = ("multifield", "flat")


def _flat_contents(p: Passage) -> str:
    return f"{p.title} {p.text}" if p.title else p.text


def _bm25_doc(docid: str, p: Passage, variant: str) -> dict:
    if variant == "flat":
        return {"id": docid, "contents": _flat_contents(p)}
    return {"id": docid, "contents": p.text, "title": p.title}


def _check_variant(variant: str) -> str:
    if variant not in BM25_VARIANTS:
        raise ConfigError(f"BM25 variant must be one of {BM25_VARIANTS}, got {variant!r}")
    return variant


def build_bm25_index(
    corpus: BeirDataset | Mapping[str, Passage], index_dir, threads: int = 2, variant: str = "multifield"
) -> Path:
    """Index a BEIR corpus for BM25 (Anserini ``JsonCollection``, default
    English analyzer), atomically and reused like :func:`build_impact_index`
    (the reuse check hashes the corpus).

    ``variant``:

    * ``"multifield"`` (default): ``contents = text`` plus a separate
      ``title`` field (``-fields title``), searched over both fields with
      weight 1.0 each: Anserini's ``beir-v1.0.0-*.multifield`` regressions,
      whose numbers are BEIR's official BM25 figures (SciFact nDCG@10 0.6647,
      the 66.5 of the LightRetriever paper's Table 10);
    * ``"flat"``: one field ``contents = title + " " + text``: Anserini's
      ``beir-v1.0.0-*.flat`` regressions (SciFact nDCG@10 0.6789).
    """
    corpus = corpus.corpus if isinstance(corpus, BeirDataset) else corpus
    if not corpus:
        raise DataError("empty corpus: nothing to index (load_beir(..., load_corpus=True))")
    variant = _check_variant(variant)
    index_dir = Path(index_dir)
    threads = check_threads(threads)
    settings = {"collection": "JsonCollection", "variant": variant, "analyzer": "default"}
    h = hashlib.sha256()
    for docid, p in corpus.items():
        check_docid(docid)
        h.update(json.dumps(_bm25_doc(str(docid), p, variant), ensure_ascii=False).encode("utf-8") + b"\n")
    fingerprint = h.hexdigest()
    if check_existing(index_dir, "bm25", settings, fingerprint):
        return index_dir
    ensure_java()
    index_dir.parent.mkdir(parents=True, exist_ok=True)
    coll = tmp_sibling(index_dir.with_name(index_dir.name + "-collection"))
    coll.mkdir()
    try:
        n = 0
        with open(coll / "docs.jsonl", "w", encoding="utf-8") as f:
            for docid, p in corpus.items():
                f.write(json.dumps(_bm25_doc(str(docid), p, variant), ensure_ascii=False) + "\n")
                n += 1
        extra = ["-fields", "title"] if variant == "multifield" else []
        return build_index(coll, index_dir, "bm25", "JsonCollection", extra, settings, fingerprint, n, threads)
    finally:
        shutil.rmtree(coll, ignore_errors=True)


class LuceneBM25Searcher:
    """BM25 over an index from :func:`build_bm25_index`: Anserini's
    ``SearchCollection -bm25`` (default English analyzer, bag-of-words
    queries) in a child JVM; a ``multifield`` index is searched over
    ``contents`` and ``title`` with ``-fields contents=1.0 title=1.0`` as in
    Anserini's BEIR regressions."""

    def __init__(self, index_dir, k1: float = 0.9, b: float = 0.4):
        self.index_dir = Path(index_dir)
        self._meta = require_index(self.index_dir, "bm25")
        self.variant = _check_variant(self._meta.get("settings", {}).get("variant", "flat"))
        self.k1, self.b = float(k1), float(b)

    @property
    def num_docs(self) -> int:
        return int(self._meta["num_docs"])

    def search(self, queries: Mapping[str, str], k: int = 1000, threads: int = 2) -> dict[str, dict[str, float]]:
        """``{qid: text}`` -> ``{qid: {docid: score}}`` (rank order)."""
        k, threads = check_k(k), check_threads(threads)
        qids = check_qids(queries)
        topics = []
        for qid, text in zip(qids, queries.values()):
            if not isinstance(text, str):
                raise ValueError(f"query {qid!r}: text must be a string")
            text = " ".join(text.split())  # tabs and newlines would break the TSV topics file
            if text:
                topics.append((qid, text))
        model = ["-bm25", "-bm25.k1", repr(self.k1), "-bm25.b", repr(self.b)]
        if self.variant == "multifield":
            model += ["-fields", "contents=1.0", "title=1.0"]
        found = search_collection(self.index_dir, topics, k, threads, model)
        return {q: dict(found.get(q, ())) for q in qids}

    def close(self) -> None:
        """Nothing to release (each search runs its own JVM); kept for ``with`` blocks."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def bm25_search(
    dataset: BeirDataset,
    index_dir,
    k: int = 1000,
    k1: float = 0.9,
    b: float = 0.4,
    threads: int = 2,
    variant: str = "multifield",
) -> dict[str, dict[str, float]]:
    """BM25 baseline run over ``dataset.queries`` (Anserini defaults k1=0.9,
    b=0.4); the index (``variant``, see :func:`build_bm25_index`) is built at
    ``index_dir`` unless already there."""
    build_bm25_index(dataset, index_dir, threads=threads, variant=variant)
    with LuceneBM25Searcher(index_dir, k1=k1, b=b) as s:
        return s.search(dataset.queries, k=k, threads=threads)
