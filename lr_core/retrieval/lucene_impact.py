"""The Lucene impact index for LightRetriever's sparse side (METHOD.md section 3), through
Anserini (:mod:`lr_core.retrieval.lucene_jvm`).

Quantised integer document weights go in an Anserini ``JsonVectorCollection``, indexed with
``-impact -pretokenized``; queries are token counts, i.e. the pretokenized query "each term
repeated count times"::

    from lr_core.retrieval.lucene_impact import (LuceneImpactSearcher, build_impact_index,
                                                 write_impact_collection)
    from lr_core.sparse import quantize_impact

    docs = {docid: quantize_impact(w) for docid, w in float_doc_weights.items()}
    write_impact_collection(docs, "work/collection")    # {"id", "contents": "", "vector": {term: int}}
    build_impact_index("work/collection", "indexes/impact", threads=2)
    searcher = LuceneImpactSearcher("indexes/impact")
    run = searcher.search({"q1": {17: 2, 923: 1}}, k=1000, threads=2)   # token id -> count

Conventions:

* Token ids become Lucene terms through :func:`term_for_id` only (``"t" + decimal id``, e.g.
  ``"t42"``), for documents and queries alike. Such a term is one token, unchanged, under
  Lucene's whitespace analyzer (what ``--pretokenized`` uses) and also under Anserini's default
  English analyzer.
* Impact scores are ``sum_t count_q(t) * impact_d(t)``: integers. Anserini rounds every score to
  4 decimals and then subtracts ``1e-6 * i`` from the i-th member of a run of tied scores (its
  ``ScoreTiesAdjusterReranker``); :class:`LuceneImpactSearcher` rounds the scores back to the
  integers Lucene computed (``exact_scores=True``), so they equal an exact dot product over the
  same quantised weights (:class:`lr_core.retrieval.sparse_index.SparseIndex`). Lucene ranks ties by
  document id ascending.
* Queries go to Anserini's ``SearchCollection -impact -pretokenized`` as pretokenized strings,
  each term repeated ``count`` times (:func:`impact_query_string`), which Anserini turns back
  into ``{term: count}``; the same form pyserini's ``LuceneImpactSearcher(index,
  query_encoder=None)`` reads. Unlike the pyserini Python wrapper, no term is dropped for having
  ``idf <= 0`` (pyserini's ``min_idf`` filter removes terms that occur in every document).
"""
from __future__ import annotations

import json
import logging
import math
import numbers
import os
import re
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path

from lr_core.errors import ConfigError, DataError
from lr_core.retrieval.lucene_jvm import (build_index, check_docid, check_existing, check_k, check_qids, check_threads,
                                         ensure_java, fingerprint_collection, require_index, search_collection,
                                         tmp_sibling)

__all__ = [
    "term_for_id",
    "id_for_term",
    "impact_query_string",
    "write_impact_collection",
    "build_impact_index",
    "LuceneImpactSearcher",
]

logger = logging.getLogger(__name__)


_TERM_PREFIX = "t"
_TERM_RE = re.compile(r"t(0|[1-9][0-9]*)")


# --------------------------------------------------------------------------- terms


def _as_token_id(token_id) -> int:
    if isinstance(token_id, bool) or not isinstance(token_id, numbers.Integral):
        raise ValueError(f"token id must be an integer, got {token_id!r}")
    token_id = int(token_id)
    if token_id < 0:
        raise ValueError(f"token id must be >= 0, got {token_id}")
    return token_id


def term_for_id(token_id: int) -> str:
    """The Lucene term for a token id: ``"t" + decimal`` (``7 -> "t7"``).

    Lowercase ASCII letter + digits, no whitespace: a single token that
    Lucene's whitespace analyzer and Anserini's default English analyzer both
    leave unchanged (a trailing digit is never stemmed, never a stopword).
    """
    return f"{_TERM_PREFIX}{_as_token_id(token_id)}"


def id_for_term(term: str) -> int:
    """Inverse of :func:`term_for_id`; ValueError for anything it did not produce."""
    if not isinstance(term, str) or not _TERM_RE.fullmatch(term):
        raise ValueError(f"not a term made by term_for_id: {term!r}")
    return int(term[len(_TERM_PREFIX):])


def _as_count(value, what: str) -> int:
    """A non-negative integer from an int or an integral float (2.0)."""
    if isinstance(value, bool):
        raise ValueError(f"{what}: expected an integer, got {value!r}")
    if isinstance(value, numbers.Integral):
        v = int(value)
    elif isinstance(value, numbers.Real):
        f = float(value)
        if not math.isfinite(f) or not f.is_integer():
            raise ValueError(
                f"{what}: {value!r} is not an integer (quantise document weights with "
                "lr_core.sparse.quantize_impact; query weights must be token counts)"
            )
        v = int(f)
    else:
        raise ValueError(f"{what}: expected an integer, got {type(value).__name__}")
    if v < 0:
        raise ValueError(f"{what}: negative weight {v}")
    return v


def _term_counts(weights: Mapping, what: str) -> dict[str, int]:
    """``{token_id: count}`` -> ``{term: count}``, zeros dropped, terms in id order."""
    out: dict[str, int] = {}
    for t, w in sorted(((_as_token_id(t), w) for t, w in weights.items()), key=lambda kv: kv[0]):
        c = _as_count(w, f"{what}, token {t}")
        if c:
            term = term_for_id(t)
            if term in out:
                raise ValueError(f"{what}: token id {t} given twice")
            out[term] = c
    return out


def impact_query_string(weights: Mapping[int, int | float]) -> str:
    """Pretokenized query text: each term repeated ``count`` times, space-separated
    (``{7: 2, 3: 1} -> "t3 t7 t7"``).  This is the form pyserini's
    ``LuceneImpactSearcher(index, None)`` and Anserini's
    ``SearchCollection -impact -pretokenized`` read from a topics file; both
    turn it back into ``{term: count}``, which is what
    :meth:`LuceneImpactSearcher.search` sends directly."""
    return " ".join(" ".join([term] * c) for term, c in _term_counts(weights, "query").items())


# --------------------------------------------------------------------------- collections


def _iter_doc_items(doc_vectors) -> Iterable[tuple[str, Mapping]]:
    items = doc_vectors.items() if isinstance(doc_vectors, Mapping) else doc_vectors
    for item in items:
        try:
            docid, vec = item
        except (TypeError, ValueError):
            raise ValueError("doc_vectors must be a mapping or an iterable of (docid, {token_id: weight}) pairs") from None
        yield docid, vec


def write_impact_collection(
    doc_vectors,
    out_dir,
    docs_per_file: int = 500_000,
    overwrite: bool = False,
) -> int:
    """Write an Anserini ``JsonVectorCollection`` and return the number of documents.

    ``doc_vectors``: ``{docid: {token_id: int weight}}`` or an iterable of
    ``(docid, {token_id: weight})`` pairs (e.g. a generator, so a large corpus
    never sits in memory).  Weights must already be quantised non-negative
    integers (:func:`lr_core.sparse.quantize_impact`; integral floats such as
    ``3.0`` are accepted); zeros are dropped.  A document with no non-zero
    weight is left out (Anserini would skip it as empty; it can never be
    retrieved) and counted in a log message.

    Files ``docs-00000.jsonl``, ... (``docs_per_file`` lines each, so the
    indexer's threads can work on several files) hold one JSON object a line:
    ``{"id": docid, "contents": "", "vector": {term_for_id(t): w}}``.  The
    directory is written under a temporary name and renamed into place; an
    existing non-empty ``out_dir`` is an error unless ``overwrite``.
    """
    out_dir = Path(out_dir)
    docs_per_file = int(docs_per_file)
    if docs_per_file < 1:
        raise ValueError(f"docs_per_file must be >= 1, got {docs_per_file}")
    if out_dir.exists() and not overwrite:
        if not out_dir.is_dir() or any(out_dir.iterdir()):
            raise ConfigError(f"{out_dir} exists and is not empty (pass overwrite=True to replace it)")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_sibling(out_dir)
    tmp.mkdir()
    seen: set[str] = set()
    n = n_empty = 0
    fh = None
    try:
        for docid, vec in _iter_doc_items(doc_vectors):
            docid = check_docid(docid)
            if docid in seen:
                raise ValueError(f"duplicate document id {docid!r}")
            seen.add(docid)
            if not isinstance(vec, Mapping):
                raise ValueError(f"document {docid!r}: vector must be a mapping token_id -> weight")
            terms = _term_counts(vec, f"document {docid!r}")
            if not terms:
                n_empty += 1
                continue
            if n % docs_per_file == 0:
                if fh is not None:
                    fh.close()
                fh = open(tmp / f"docs-{n // docs_per_file:05d}.jsonl", "w", encoding="utf-8")
            fh.write(json.dumps({"id": docid, "contents": "", "vector": terms}, ensure_ascii=False) + "\n")
            n += 1
        if fh is not None:
            fh.close()
            fh = None
        if n == 0:
            raise DataError("no document has a non-zero weight: nothing to index")
        if out_dir.exists():
            old = tmp_sibling(out_dir)
            os.rename(out_dir, old)
            os.rename(tmp, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, out_dir)
    finally:
        if fh is not None:
            fh.close()
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    if n_empty:
        logger.warning("%d documents without any non-zero weight were left out of %s", n_empty, out_dir)
    return n


def build_impact_index(collection_dir, index_dir, threads: int = 2) -> Path:
    """Index a ``JsonVectorCollection`` (see :func:`write_impact_collection`) as a
    Lucene impact index: Anserini ``IndexCollection -collection
    JsonVectorCollection -generator DefaultLuceneDocumentGenerator -impact
    -pretokenized -optimize``, in a child JVM.

    Built under a temporary name next to ``index_dir`` and renamed into place
    only when the indexer succeeded and indexed every line of the collection;
    a failure leaves no ``index_dir``.  An existing complete index of the same
    collection (same files and bytes) is reused; when ``collection_dir`` no
    longer exists, an existing complete impact index is reused as is.
    """
    collection_dir, index_dir = Path(collection_dir), Path(index_dir)
    threads = check_threads(threads)
    settings = {"collection": "JsonVectorCollection", "impact": True, "pretokenized": True}
    if not collection_dir.is_dir():
        if index_dir.exists() and check_existing(index_dir, "impact", settings, None):
            return index_dir
        raise DataError(f"collection directory {collection_dir} does not exist")
    fingerprint, lines = fingerprint_collection(collection_dir)
    if check_existing(index_dir, "impact", settings, fingerprint):
        return index_dir
    if lines == 0:
        raise DataError(f"collection directory {collection_dir} holds no documents")
    ensure_java()
    return build_index(
        collection_dir, index_dir, "impact", "JsonVectorCollection",
        ["-impact", "-pretokenized"], settings, fingerprint, lines, threads,
    )  # fmt: skip


class LuceneImpactSearcher:
    """Search a Lucene impact index with token-count queries.

    Runs Anserini's ``SearchCollection -impact -pretokenized`` (the paper's
    setting) in a child JVM, queries written as pretokenized strings
    (:func:`impact_query_string`).  ``exact_scores`` (default) rounds scores to
    the integers Lucene computed, undoing Anserini's tie-breaking offsets (see
    the module docstring).
    """

    def __init__(self, index_dir, exact_scores: bool = True):
        self.index_dir = Path(index_dir)
        self._meta = require_index(self.index_dir, "impact")
        self.exact_scores = bool(exact_scores)

    @property
    def num_docs(self) -> int:
        return int(self._meta["num_docs"])

    def search(
        self,
        queries: Mapping[str, Mapping[int, int | float]],
        k: int = 1000,
        threads: int = 2,
    ) -> dict[str, dict[str, float]]:
        """Top-``k`` per query: ``{qid: {docid: score}}`` (rank order).

        ``queries``: ``{qid: {token_id: count}}``; counts are ints or integral
        floats (e.g. :func:`lr_core.sparse.query_term_vector`); zero counts are
        dropped.  A query without terms gets an empty result.
        """
        k, threads = check_k(k), check_threads(threads)
        qids = check_qids(queries)
        topics = []
        for qid, w in zip(qids, queries.values()):
            if not isinstance(w, Mapping):
                raise ValueError(f"query {qid!r}: expected a mapping token_id -> count")
            text = " ".join(" ".join([t] * c) for t, c in _term_counts(w, f"query {qid!r}").items())
            if text:
                topics.append((qid, text))
        found = search_collection(self.index_dir, topics, k, threads, ["-impact", "-pretokenized"])
        rnd = (lambda x: float(round(x))) if self.exact_scores else float
        return {q: {d: rnd(sc) for d, sc in found.get(q, ())} for q in qids}

    def close(self) -> None:
        """Nothing to release (each search runs its own JVM); kept for ``with`` blocks."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
