"""Lucene back ends through pyserini 0.25 (Anserini 0.25, the version the paper's authors used).

Two things live here:

* the **impact index** for LightRetriever's sparse side (METHOD.md section 3):
  quantised integer document weights in an Anserini ``JsonVectorCollection``,
  indexed with ``-impact -pretokenized``; queries are token counts, i.e. the
  pretokenized query "each term repeated count times";
* the **BM25 baseline** (Anserini defaults ``k1=0.9, b=0.4``, default English
  analyzer with Porter stemming and stopwords) over a BEIR corpus, as
  Anserini's BEIR regressions index it: ``variant="multifield"`` (default;
  title and text in separate fields, queried over both: BEIR's official BM25,
  SciFact nDCG@10 0.6647, the paper's 66.5) or ``variant="flat"`` (``contents
  = title + " " + text``: SciFact 0.6789).

Usage::

    from lr_core.data.beir import load_beir
    from lr_core.retrieval.lucene import (bm25_search, write_impact_collection,
                                build_impact_index, LuceneImpactSearcher)
    from lr_core.sparse import quantize_impact

    ds = load_beir("scifact", "test")                   # data dir from LR_DATA_DIR
    run = bm25_search(ds, "indexes/scifact-bm25")       # {qid: {docid: score}}

    docs = {docid: quantize_impact(w) for docid, w in float_doc_weights.items()}
    write_impact_collection(docs, "work/collection")    # {"id", "contents": "", "vector": {term: int}}
    build_impact_index("work/collection", "indexes/impact", threads=2)
    searcher = LuceneImpactSearcher("indexes/impact")
    run = searcher.search({"q1": {17: 2, 923: 1}}, k=1000, threads=2)   # token id -> count

Conventions:

* Token ids become Lucene terms through :func:`term_for_id` only (``"t" +
  decimal id``, e.g. ``"t42"``), for documents and queries alike.  Such a term
  is one token, unchanged, under Lucene's whitespace analyzer (what
  ``--pretokenized`` uses) and also under Anserini's default English analyzer.
* Impact scores are ``sum_t count_q(t) * impact_d(t)``: integers.  Anserini
  rounds every score to 4 decimals and then subtracts ``1e-6 * i`` from the
  i-th member of a run of tied scores (its ``ScoreTiesAdjusterReranker``);
  :class:`LuceneImpactSearcher` rounds the scores back to the integers Lucene
  computed (``exact_scores=True``), so they equal an exact dot product over the
  same quantised weights (:class:`lr_core.retrieval.search.SparseIndex`).  BM25 scores
  are returned as Anserini gives them.  Lucene ranks ties by document id
  ascending.
* Queries go to Anserini's ``SearchCollection -impact -pretokenized`` as
  pretokenized strings, each term repeated ``count`` times
  (:func:`impact_query_string`), which Anserini turns back into
  ``{term: count}``; the same form pyserini's
  ``LuceneImpactSearcher(index, query_encoder=None)`` reads.  Unlike the
  pyserini Python wrapper, no term is dropped for having ``idf <= 0``
  (pyserini's ``min_idf`` filter removes terms that occur in every document).
* Anserini always runs in a child process (``java -cp <fat jar>
  io.anserini.index.IndexCollection`` / ``io.anserini.search.SearchCollection``),
  never in this process: a JVM started through pyjnius shares signal handlers
  and threads with torch, and crashed a test run with a bare segmentation
  fault.  The jar is the one bundled in the pyserini 0.25.0 wheel (nothing is
  downloaded; ``LR_ANSERINI_JAR`` overrides it).
* Indexes are built into a temporary sibling directory, checked (exit
  status, error lines, document counts) and renamed into place; a marker file
  ``lr_index.json`` inside the index records what was indexed.  An existing
  index with a matching marker is reused; one whose marker disagrees raises
  :class:`lr_core.errors.CacheMismatchError`; a directory without a marker
  raises :class:`lr_core.errors.ConfigError` (it is not ours: remove it).
* Java >= 11 must be on ``PATH`` (:func:`ensure_java`); JVM options (e.g.
  ``-Xmx16g`` for large indexes) go in the standard ``JAVA_TOOL_OPTIONS``
  environment variable.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
import logging
import math
import numbers
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path

from lr_core.data.beir import BeirDataset, Passage
from lr_core.errors import CacheMismatchError, ConfigError, DataError

__all__ = [
    "ensure_java",
    "term_for_id",
    "id_for_term",
    "impact_query_string",
    "write_impact_collection",
    "build_impact_index",
    "build_bm25_index",
    "LuceneImpactSearcher",
    "LuceneBM25Searcher",
    "bm25_search",
    "anserini_jar",
    "BM25_VARIANTS",
    "MARKER_FILE",
]

logger = logging.getLogger(__name__)

MIN_JAVA = 11
MARKER_FILE = "lr_index.json"
_MARKER_FORMAT = 1
_INSTALL_HINT = "install a Java runtime >= 11, e.g. `apt-get install openjdk-17-jre-headless` (Debian/Ubuntu)"
_TERM_PREFIX = "t"
_TERM_RE = re.compile(r"t(0|[1-9][0-9]*)")


# --------------------------------------------------------------------------- java


def _parse_java_version(text: str) -> int | None:
    """Major version from ``java -version`` output (``"17.0.15"``, ``"1.8.0_292"``, ``"21"``)."""
    m = re.search(r'version\s+"([^"]+)"', text)
    if not m:
        return None
    parts = re.findall(r"\d+", m.group(1))
    if not parts:
        return None
    major = int(parts[0])
    if major == 1 and len(parts) > 1:  # 1.8 -> 8
        major = int(parts[1])
    return major


def ensure_java(min_version: int = MIN_JAVA) -> str:
    """Check that ``java`` is on ``PATH`` and at least ``min_version``; return its path.

    Raises :class:`ConfigError` (with the install command) when it is missing,
    does not run, or is too old.
    """
    java = shutil.which("java")
    if java is None:
        raise ConfigError(f"`java` not found on PATH; Lucene back ends need Java >= {min_version}: {_INSTALL_HINT}")
    try:
        proc = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"could not run `{java} -version` ({exc}); {_INSTALL_HINT}") from None
    out = (proc.stderr or "") + (proc.stdout or "")
    major = _parse_java_version(out)
    if proc.returncode != 0 or major is None:
        raise ConfigError(f"`{java} -version` failed or printed no version ({out.strip()[:200]!r}); {_INSTALL_HINT}")
    if major < min_version:
        raise ConfigError(f"{java} is Java {major}; Anserini 0.25 needs Java >= {min_version}: {_INSTALL_HINT}")
    return java


def anserini_jar() -> Path:
    """Anserini's fat jar: ``$LR_ANSERINI_JAR`` if set, else the one bundled in
    the installed pyserini wheel (``pyserini/resources/jars/anserini-*-fatjar.jar``;
    pyserini itself is not imported, its import pulls in neural encoders)."""
    env = os.environ.get("LR_ANSERINI_JAR")
    if env:
        if not Path(env).is_file():
            raise ConfigError(f"LR_ANSERINI_JAR={env}: no such file")
        return Path(env)
    spec = importlib.util.find_spec("pyserini")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("pyserini is not installed (pip install --no-deps pyserini==0.25.0); it carries Anserini's jar")
    for loc in spec.submodule_search_locations:
        jars = sorted(Path(loc, "resources", "jars").glob("anserini-*-fatjar.jar"))
        if jars:
            return jars[-1]
    raise ConfigError(f"no anserini-*-fatjar.jar under {list(spec.submodule_search_locations)}/resources/jars")


def _run_anserini(main_class: str, args: list[str], what: str, on_line=None) -> str:
    """Run one Anserini command line in its own JVM; return its log or raise DataError.

    Anserini always runs in a child process: a JVM inside the Python process
    (pyjnius) shares signal handlers and threads with torch and was seen to
    crash the whole process. ``on_line(line)`` sees each log line as it arrives
    (the indexer's progress)."""
    cmd = [ensure_java(), "-cp", str(anserini_jar()), main_class, *args]
    logger.info("%s: %s", what, " ".join(cmd))
    lines = []
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace") as proc:
        for line in proc.stdout:
            lines.append(line)
            if on_line is not None:
                on_line(line)
    log = "".join(lines)
    if proc.returncode != 0:
        tail = "\n".join(log.splitlines()[-25:])
        raise DataError(f"Anserini {what} failed (exit status {proc.returncode}):\n{tail}")
    return log


# Anserini's progress lines: "<file>: 1234 docs added." per input file finished, and a periodic
# "12.50% of files completed, 5,000 documents indexed".
_DOCS_ADDED_RE = re.compile(r":\s+([\d,]+) docs added")
_DOCS_INDEXED_RE = re.compile(r"([\d,]+) documents indexed")


def _indexing_progress(bar):
    """An ``on_line`` callback that moves ``bar`` with the indexer's own document counts."""
    state = {"added": 0}

    def on_line(line: str) -> None:
        m = _DOCS_ADDED_RE.search(line)
        done = None
        if m:
            state["added"] += int(m.group(1).replace(",", ""))
            done = state["added"]
        m = _DOCS_INDEXED_RE.search(line)
        if m:
            done = max(done or 0, int(m.group(1).replace(",", "")))
        if done is not None and done > bar.n:
            bar.update(done - bar.n)

    return on_line


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


def _check_docid(docid) -> str:
    if isinstance(docid, bool) or not isinstance(docid, (str, numbers.Integral)):
        raise ValueError(f"document id must be a string, got {docid!r}")
    docid = str(docid)
    if not docid.strip():
        raise ValueError("empty document id")
    if re.search(r"\s", docid):
        raise ValueError(f"document id {docid!r} contains whitespace (it could not be read back from a TREC run)")
    return docid


def _tmp_sibling(path: Path) -> Path:
    return path.parent / f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"


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
    tmp = _tmp_sibling(out_dir)
    tmp.mkdir()
    seen: set[str] = set()
    n = n_empty = 0
    fh = None
    try:
        for docid, vec in _iter_doc_items(doc_vectors):
            docid = _check_docid(docid)
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
            old = _tmp_sibling(out_dir)
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


def _collection_files(collection_dir: Path) -> list[Path]:
    # Anserini reads every regular file below the directory, hidden ones and
    # sub-directories included (.gz files decompressed).
    return sorted(p for p in collection_dir.rglob("*") if p.is_file())


def _fingerprint_collection(collection_dir: Path) -> tuple[str, int]:
    """(sha256 over relative paths and bytes, number of non-blank lines)."""
    files = _collection_files(collection_dir)
    h = hashlib.sha256()
    lines = 0
    for f in files:
        rel = f.relative_to(collection_dir).as_posix()
        h.update(rel.encode("utf-8") + b"\0")
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        opener = gzip.open if f.name.endswith(".gz") else open
        with opener(f, "rb") as fh:
            lines += sum(1 for line in fh if line.strip())
        h.update(b"\0")
    return h.hexdigest(), lines


# --------------------------------------------------------------------------- indexing


# counts are printed with locale grouping ("5,183", "5.183", "5 183")
_COUNTER_RE = re.compile(r"\s-\s(indexed|unindexable|empty|skipped|errors):\s+(\d[\d,.'\u00a0\u202f ]*)\s*$", re.M)


def _pyserini_version() -> str:
    try:
        from importlib.metadata import version

        return version("pyserini")
    except Exception:  # pragma: no cover
        return "unknown"


def _read_marker(index_dir: Path) -> dict | None:
    marker = index_dir / MARKER_FILE
    if not marker.is_file():
        return None
    try:
        with open(marker, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{marker}: unreadable ({exc}); remove {index_dir} and rebuild") from None


def _check_existing(index_dir: Path, kind: str, settings: dict, fingerprint: str | None) -> bool:
    """True when ``index_dir`` holds a complete index of the same input; raises
    when it holds something else; False when it does not exist."""
    if not index_dir.exists() or (index_dir.is_dir() and not any(index_dir.iterdir())):
        return False  # an empty directory is replaced by the build
    meta = _read_marker(index_dir)
    if meta is None:
        raise ConfigError(
            f"{index_dir} exists but is not a complete index built by lr_core.retrieval.lucene "
            f"(no {MARKER_FILE}); remove it and rebuild"
        )
    if meta.get("kind") != kind or meta.get("settings") != settings:
        raise CacheMismatchError(
            f"{index_dir} is a {meta.get('kind')!r} index with settings {meta.get('settings')}, "
            f"asked for {kind!r} with {settings}; use another index directory or remove it"
        )
    if fingerprint is not None and meta.get("fingerprint") != fingerprint:
        raise CacheMismatchError(
            f"{index_dir} was built from different input (fingerprint {meta.get('fingerprint', '?')[:12]} "
            f"!= {fingerprint[:12]}); use another index directory or remove it"
        )
    logger.info("reusing Lucene index %s (%s, %s documents)", index_dir, kind, meta.get("num_docs"))
    return True


def _run_indexer(collection_dir: Path, index_dir: Path, collection: str, extra: list[str], threads: int,
                 expected_docs: int | None = None, label: str | None = None) -> tuple[dict, str]:
    """Run Anserini's IndexCollection (own JVM); return (counters, log). Progress: :mod:`lr_core.progress`."""
    from lr_core.progress import progress

    args = [
        "-collection", collection,
        "-input", str(collection_dir),
        "-index", str(index_dir),
        "-generator", "DefaultLuceneDocumentGenerator",
        "-threads", str(int(threads)),
        *extra,
        "-optimize",
    ]  # fmt: skip
    with progress(total=expected_docs, desc=f"Lucene indexing {label or index_dir.name}", unit="doc") as bar:
        log = _run_anserini("io.anserini.index.IndexCollection", args, f"indexer on {collection_dir}",
                            on_line=_indexing_progress(bar))
    tail = "\n".join(log.splitlines()[-25:])
    # a document that fails to parse is logged at ERROR level and the exit status stays 0
    error_lines = [line for line in log.splitlines() if " ERROR " in line or " FATAL " in line]
    counters = {k: int(re.sub(r"\D", "", v)) for k, v in _COUNTER_RE.findall(log)}
    if error_lines:
        raise DataError(f"Anserini indexer reported errors on {collection_dir}:\n" + "\n".join(error_lines[:10]))
    if "indexed" not in counters:
        raise DataError(f"Anserini indexer printed no document counts for {collection_dir}:\n{tail}")
    return counters, log


def _build_index(
    collection_dir: Path,
    index_dir: Path,
    kind: str,
    collection: str,
    extra: list[str],
    settings: dict,
    fingerprint: str,
    expected_docs: int,
    threads: int,
) -> Path:
    index_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_sibling(index_dir)
    try:
        t0 = time.perf_counter()
        counters, _ = _run_indexer(collection_dir, tmp, collection, extra, threads, expected_docs, index_dir.name)
        seen = counters.get("indexed", 0) + counters.get("empty", 0) + counters.get("skipped", 0)
        if counters.get("errors", 0) or counters.get("unindexable", 0):
            raise DataError(f"Anserini indexer: {counters} on {collection_dir}")
        if counters.get("indexed", 0) == 0:
            raise DataError(f"Anserini indexed no document from {collection_dir} ({counters})")
        if seen != expected_docs:
            raise DataError(
                f"Anserini read {seen} documents from {collection_dir} ({counters}), the collection has "
                f"{expected_docs} lines: malformed lines?"
            )
        meta = {
            "format": _MARKER_FORMAT,
            "kind": kind,
            "settings": settings,
            "fingerprint": fingerprint,
            "num_docs": counters["indexed"],
            "counters": counters,
            "pyserini": _pyserini_version(),
            "build_seconds": round(time.perf_counter() - t0, 3),
        }
        with open(tmp / MARKER_FILE, "w", encoding="utf-8") as f:
            json.dump(meta, f, indent=1)
        try:
            os.rename(tmp, index_dir)
        except OSError:
            # somebody else finished the same index first: keep theirs if it matches
            if _check_existing(index_dir, kind, settings, fingerprint):
                return index_dir
            raise
        if counters.get("empty") or counters.get("skipped"):
            logger.warning("%s: Anserini left out %d empty and %d skipped documents", index_dir,
                           counters.get("empty", 0), counters.get("skipped", 0))
        logger.info("built %s index %s: %d documents in %.1f s", kind, index_dir, counters["indexed"], meta["build_seconds"])
        return index_dir
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _check_threads(threads) -> int:
    threads = int(threads)
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    return threads


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
    threads = _check_threads(threads)
    settings = {"collection": "JsonVectorCollection", "impact": True, "pretokenized": True}
    if not collection_dir.is_dir():
        if index_dir.exists() and _check_existing(index_dir, "impact", settings, None):
            return index_dir
        raise DataError(f"collection directory {collection_dir} does not exist")
    fingerprint, lines = _fingerprint_collection(collection_dir)
    if _check_existing(index_dir, "impact", settings, fingerprint):
        return index_dir
    if lines == 0:
        raise DataError(f"collection directory {collection_dir} holds no documents")
    ensure_java()
    return _build_index(
        collection_dir, index_dir, "impact", "JsonVectorCollection",
        ["-impact", "-pretokenized"], settings, fingerprint, lines, threads,
    )  # fmt: skip


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
    threads = _check_threads(threads)
    settings = {"collection": "JsonCollection", "variant": variant, "analyzer": "default"}
    h = hashlib.sha256()
    for docid, p in corpus.items():
        _check_docid(docid)
        h.update(json.dumps(_bm25_doc(str(docid), p, variant), ensure_ascii=False).encode("utf-8") + b"\n")
    fingerprint = h.hexdigest()
    if _check_existing(index_dir, "bm25", settings, fingerprint):
        return index_dir
    ensure_java()
    index_dir.parent.mkdir(parents=True, exist_ok=True)
    coll = _tmp_sibling(index_dir.with_name(index_dir.name + "-collection"))
    coll.mkdir()
    try:
        n = 0
        with open(coll / "docs.jsonl", "w", encoding="utf-8") as f:
            for docid, p in corpus.items():
                f.write(json.dumps(_bm25_doc(str(docid), p, variant), ensure_ascii=False) + "\n")
                n += 1
        extra = ["-fields", "title"] if variant == "multifield" else []
        return _build_index(coll, index_dir, "bm25", "JsonCollection", extra, settings, fingerprint, n, threads)
    finally:
        shutil.rmtree(coll, ignore_errors=True)


# --------------------------------------------------------------------------- search


def _check_k(k) -> int:
    k = int(k)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return k


def _require_index(index_dir: Path, kind: str) -> dict:
    meta = _read_marker(index_dir) if index_dir.is_dir() else None
    if meta is None:
        raise DataError(f"{index_dir} is not a complete Lucene index built by lr_core.retrieval.lucene (no {MARKER_FILE})")
    if meta.get("kind") != kind:
        raise ConfigError(f"{index_dir} is a {meta.get('kind')!r} index, not {kind!r}")
    return meta


_BAD_ID_CHARS = re.compile(r"\s")


def _check_qids(queries: Mapping) -> list[str]:
    qids = [str(q) for q in queries]
    if len(set(qids)) != len(qids):
        raise ValueError("duplicate query ids")
    for q in qids:
        if not q or _BAD_ID_CHARS.search(q):
            raise ValueError(f"query id {q!r}: must be non-empty without whitespace (TREC run format)")
    return qids


def _search_collection(index_dir: Path, topics: list[tuple[str, str]], k: int, threads: int,
                       model_args: list[str]) -> dict[str, list[tuple[str, float]]]:
    """Anserini ``SearchCollection`` over a TSV topics file; ``{qid: [(docid, score), ...]}`` in rank order."""
    if not topics:
        return {}
    with tempfile.TemporaryDirectory(prefix="lr-search-") as tmp:
        topics_file, run_file = Path(tmp, "topics.tsv"), Path(tmp, "run.trec")
        with open(topics_file, "w", encoding="utf-8") as f:
            for qid, text in topics:
                f.write(f"{qid}\t{text}\n")
        args = ["-index", str(index_dir), "-topics", str(topics_file), "-topicReader", "TsvString",
                "-output", str(run_file), "-hits", str(k), "-threads", str(threads), "-format", "trec",
                *model_args]  # fmt: skip
        log = _run_anserini("io.anserini.search.SearchCollection", args, f"search of {index_dir}")
        if not run_file.is_file():
            raise DataError(f"Anserini search of {index_dir} wrote no run:\n" + "\n".join(log.splitlines()[-25:]))
        hits: dict[str, list[tuple[int, str, float]]] = {}
        with open(run_file, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                parts = line.split()
                if len(parts) != 6:
                    raise DataError(f"{run_file}:{n}: malformed TREC run line {line!r}")
                qid, _, docid, rank, score, _ = parts
                hits.setdefault(qid, []).append((int(rank), docid, float(score)))
    return {q: [(d, sc) for _, d, sc in sorted(rows)] for q, rows in hits.items()}


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
        self._meta = _require_index(self.index_dir, "impact")
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
        k, threads = _check_k(k), _check_threads(threads)
        qids = _check_qids(queries)
        topics = []
        for qid, w in zip(qids, queries.values()):
            if not isinstance(w, Mapping):
                raise ValueError(f"query {qid!r}: expected a mapping token_id -> count")
            text = " ".join(" ".join([t] * c) for t, c in _term_counts(w, f"query {qid!r}").items())
            if text:
                topics.append((qid, text))
        found = _search_collection(self.index_dir, topics, k, threads, ["-impact", "-pretokenized"])
        rnd = (lambda x: float(round(x))) if self.exact_scores else float
        return {q: {d: rnd(sc) for d, sc in found.get(q, ())} for q in qids}

    def close(self) -> None:
        """Nothing to release (each search runs its own JVM); kept for ``with`` blocks."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class LuceneBM25Searcher:
    """BM25 over an index from :func:`build_bm25_index`: Anserini's
    ``SearchCollection -bm25`` (default English analyzer, bag-of-words
    queries) in a child JVM; a ``multifield`` index is searched over
    ``contents`` and ``title`` with ``-fields contents=1.0 title=1.0`` as in
    Anserini's BEIR regressions."""

    def __init__(self, index_dir, k1: float = 0.9, b: float = 0.4):
        self.index_dir = Path(index_dir)
        self._meta = _require_index(self.index_dir, "bm25")
        self.variant = _check_variant(self._meta.get("settings", {}).get("variant", "flat"))
        self.k1, self.b = float(k1), float(b)

    @property
    def num_docs(self) -> int:
        return int(self._meta["num_docs"])

    def search(self, queries: Mapping[str, str], k: int = 1000, threads: int = 2) -> dict[str, dict[str, float]]:
        """``{qid: text}`` -> ``{qid: {docid: score}}`` (rank order)."""
        k, threads = _check_k(k), _check_threads(threads)
        qids = _check_qids(queries)
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
        found = _search_collection(self.index_dir, topics, k, threads, model)
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
