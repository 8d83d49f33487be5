"""Lucene plumbing shared by the impact index and BM25: Java, Anserini in a child JVM, index
building into a checked temporary directory, the index marker, and running ``SearchCollection``.

Anserini (pyserini 0.25's fat jar, the version the paper's authors used) always runs in a child
process (``java -cp <fat jar> io.anserini.index.IndexCollection`` /
``io.anserini.search.SearchCollection``), never in this process: a JVM started through pyjnius
shares signal handlers and threads with torch, and crashed a test run with a bare segmentation
fault. Nothing is downloaded (``LR_ANSERINI_JAR`` overrides the jar).

* Indexes are built into a temporary sibling directory, checked (exit status, error lines,
  document counts) and renamed into place; a marker file ``lr_index.json`` inside the index
  records what was indexed. An existing index with a matching marker is reused; one whose marker
  disagrees raises :class:`lr_core.errors.CacheMismatchError`; a directory without a marker
  raises :class:`lr_core.errors.ConfigError` (it is not ours: remove it).
* Java >= 11 must be on ``PATH`` (:func:`ensure_java`); JVM options (e.g. ``-Xmx16g`` for large
  indexes) go in the standard ``JAVA_TOOL_OPTIONS`` environment variable.

The two back ends: :mod:`lr_core.retrieval.lucene_impact` (LightRetriever's sparse side) and
:mod:`lr_core.retrieval.lucene_bm25` (the BM25 baseline).
"""
from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
import logging
import numbers
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

from lr_core.errors import CacheMismatchError, ConfigError, DataError

__all__ = [
    "ensure_java",
    "anserini_jar",
    "MARKER_FILE",
]


logger = logging.getLogger(__name__)

MIN_JAVA = 11
MARKER_FILE = "lr_index.json"
_MARKER_FORMAT = 1
_INSTALL_HINT = "install a Java runtime >= 11, e.g. `apt-get install openjdk-17-jre-headless` (Debian/Ubuntu)"


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


def check_docid(docid) -> str:
    if isinstance(docid, bool) or not isinstance(docid, (str, numbers.Integral)):
        raise ValueError(f"document id must be a string, got {docid!r}")
    docid = str(docid)
    if not docid.strip():
        raise ValueError("empty document id")
    if re.search(r"\s", docid):
        raise ValueError(f"document id {docid!r} contains whitespace (it could not be read back from a TREC run)")
    return docid


def tmp_sibling(path: Path) -> Path:
    return path.parent / f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _collection_files(collection_dir: Path) -> list[Path]:
    # Anserini reads every regular file below the directory, hidden ones and
    # sub-directories included (.gz files decompressed).
    return sorted(p for p in collection_dir.rglob("*") if p.is_file())


def fingerprint_collection(collection_dir: Path) -> tuple[str, int]:
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


def check_existing(index_dir: Path, kind: str, settings: dict, fingerprint: str | None) -> bool:
    """True when ``index_dir`` holds a complete index of the same input; raises
    when it holds something else; False when it does not exist."""
    if not index_dir.exists() or (index_dir.is_dir() and not any(index_dir.iterdir())):
        return False  # an empty directory is replaced by the build
    meta = _read_marker(index_dir)
    if meta is None:
        raise ConfigError(
            f"{index_dir} exists but is not a complete index built by lr_core.retrieval.lucene_jvm "
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


def build_index(
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
    tmp = tmp_sibling(index_dir)
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
            if check_existing(index_dir, kind, settings, fingerprint):
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


def check_threads(threads) -> int:
    threads = int(threads)
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    return threads


# --------------------------------------------------------------------------- search


def check_k(k) -> int:
    k = int(k)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return k


def require_index(index_dir: Path, kind: str) -> dict:
    meta = _read_marker(index_dir) if index_dir.is_dir() else None
    if meta is None:
        raise DataError(f"{index_dir} is not a complete Lucene index built by lr_core.retrieval.lucene_jvm (no {MARKER_FILE})")
    if meta.get("kind") != kind:
        raise ConfigError(f"{index_dir} is a {meta.get('kind')!r} index, not {kind!r}")
    return meta


_BAD_ID_CHARS = re.compile(r"\s")


def check_qids(queries: Mapping) -> list[str]:
    qids = [str(q) for q in queries]
    if len(set(qids)) != len(qids):
        raise ValueError("duplicate query ids")
    for q in qids:
        if not q or _BAD_ID_CHARS.search(q):
            raise ValueError(f"query id {q!r}: must be non-empty without whitespace (TREC run format)")
    return qids


def search_collection(index_dir: Path, topics: list[tuple[str, str]], k: int, threads: int,
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
