"""Reading BEIR-format collections: the one place in the suite that does it.

A BEIR directory holds

* ``corpus.jsonl``  -- one JSON object per line: ``{"_id", "title", "text"}``
* ``queries.jsonl`` -- one JSON object per line: ``{"_id", "text"}``
* ``qrels/<split>.tsv`` -- tab-separated, header ``query-id corpus-id score``

Conventions (deliberate, tested in ``tests/lr_core/test_beir.py``):

* **Queries are filtered by the split's qrels.**  ``BeirDataset.queries`` keeps
  only the queries that have at least one row in ``qrels/<split>.tsv`` (BEIR's
  ``GenericDataLoader`` does the same), so ``queries.keys() == qrels.keys()``.
* **Non-positive judgments are kept.**  Rows with ``score <= 0`` stay in
  ``qrels`` (and their query stays in ``queries``); deciding what counts as
  relevant is the job of the metrics (and of the hard-negative miner, which
  treats ``score > 0`` as positive and every judged document as "not a
  negative").
* Graded scores are kept as integers (e.g. Cranfield's 0..4).
* ``title`` may be missing or ``null`` (-> ``""``); ``_id`` and ``text`` are
  required.  Integer ``_id`` values are accepted and converted to ``str``.
  A corpus document may have an empty ``text``; a query may not.
* Blank lines in any file are skipped.  Every other problem raises
  :class:`lr_core.errors.DataError` naming the file, the 1-based line number
  and, where it applies, the field.
* A ``(query-id, corpus-id)`` pair listed twice with the same score is
  accepted; listed twice with different scores is an error.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from lr_core.validation import SOURCE_SPLIT, VALIDATION_SPLIT, validation_query_ids
from lr_core.errors import DataError

__all__ = ["Passage", "BeirDataset", "resolve_dataset_dir", "load_beir", "load_corpus", "iter_jsonl"]

QRELS_HEADER = ("query-id", "corpus-id", "score")


@dataclass(frozen=True)
class Passage:
    """One retrievable unit: a corpus document or a training passage."""

    docid: str | None
    title: str
    text: str


@dataclass
class BeirDataset:
    """A loaded BEIR collection for one qrels split.

    ``queries`` holds only the queries judged in ``qrels`` (BEIR convention);
    ``qrels`` maps query id -> {doc id: integer score}, non-positive scores
    included.  ``corpus`` is empty when loaded with ``load_corpus=False``.
    """

    name: str
    corpus: dict[str, Passage]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    split: str


def resolve_dataset_dir(name_or_path: str | os.PathLike, data_dir: str | Path | None = None) -> Path:
    """Return the directory of a BEIR dataset.

    ``name_or_path`` is used as is when it exists; otherwise it is looked up as
    ``data_dir / name_or_path``, where ``data_dir`` defaults to the
    environment variable ``LR_DATA_DIR``.  Raises DataError listing every
    location tried when nothing is found.
    """
    given = Path(name_or_path).expanduser()
    tried: list[str] = [str(given)]
    if given.exists():
        if not given.is_dir():
            raise DataError(f"dataset path {given} exists but is not a directory")
        return given
    if data_dir is None:
        env = os.environ.get("LR_DATA_DIR")
        if env:
            data_dir = env
        else:
            tried.append("<data_dir / name> (no data_dir given and LR_DATA_DIR is not set)")
    if data_dir is not None:
        candidate = Path(data_dir).expanduser() / given
        tried.append(str(candidate))
        if candidate.is_dir():
            return candidate
        if candidate.exists():
            raise DataError(f"dataset path {candidate} exists but is not a directory")
    raise DataError(f"dataset {str(name_or_path)!r} not found; tried: " + "; ".join(tried))


def _iter_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield (1-based line number, decoded line without newline), skipping blank lines."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(f"{path}:{lineno}: not valid UTF-8 ({exc.reason})") from None
            line = line.rstrip("\r\n")
            if line.strip():
                yield lineno, line


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, dict]]:
    """Yield ``(line number, object)`` for each non-blank line of a JSONL file.

    Raises DataError naming ``file:line`` for malformed JSON or a line that is
    not a JSON object.
    """
    path = Path(path)
    for lineno, line in _iter_lines(path):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{lineno}: malformed JSON ({exc.msg} at column {exc.colno})") from None
        except RecursionError:
            raise DataError(f"{path}:{lineno}: malformed JSON (nested too deeply)") from None
        if not isinstance(obj, dict):
            raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
        if "\\u" in line and _SURROGATE_ESCAPE.search(line):  # cheap test first: escapes are rare
            bad = _field_with_lone_surrogate(obj)
            if bad is not None:
                raise DataError(f"{path}:{lineno}: field '{bad}': a lone surrogate escape (\\ud800-\\udfff) "
                                "is not valid Unicode text")
        yield lineno, obj


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _field_with_lone_surrogate(value, where: str = "") -> str | None:
    """The dotted name of the first string holding a lone surrogate (JSON allows the escape; UTF-8 does not)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return where or "(value)"
        return None
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = ((f"[{i}]", v) for i, v in enumerate(value))
    else:
        return None
    for key, v in items:
        if isinstance(key, str) and _field_with_lone_surrogate(key) is not None:
            return f"{where}.{key}" if where else key
        name = f"{where}{key}" if str(key).startswith("[") else (f"{where}.{key}" if where else str(key))
        found = _field_with_lone_surrogate(v, name)
        if found is not None:
            return found
    return None


def check_trec_id(value: str, where: str, field: str) -> str:
    """An id must fit a TREC run / qrels line: no whitespace, no control characters."""
    if any(c.isspace() or ord(c) < 32 or c == "\x7f" for c in value):
        raise DataError(f"{where}: field '{field}': id {value!r} contains whitespace or a control character "
                        "(ids are written to TREC run files, whose columns are separated by whitespace)")
    return value


def _get_id(obj: dict, path: Path, lineno: int) -> str:
    if "_id" not in obj:
        raise DataError(f"{path}:{lineno}: field '_id': missing")
    value = obj["_id"]
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise DataError(f"{path}:{lineno}: field '_id': expected a string, got {type(value).__name__}")
    value = str(value)
    if not value.strip():
        raise DataError(f"{path}:{lineno}: field '_id': empty")
    return check_trec_id(value, f"{path}:{lineno}", "_id")


def _get_str(obj: dict, field: str, path: Path, lineno: int, *, required: bool, nonempty: bool = False) -> str:
    if field not in obj or obj[field] is None:
        if required:
            raise DataError(f"{path}:{lineno}: field '{field}': missing")
        return ""
    value = obj[field]
    if not isinstance(value, str):
        raise DataError(f"{path}:{lineno}: field '{field}': expected a string, got {type(value).__name__}")
    if nonempty and not value.strip():
        raise DataError(f"{path}:{lineno}: field '{field}': empty")
    return value


def _load_corpus(path: Path) -> dict[str, Passage]:
    corpus: dict[str, Passage] = {}
    first_line: dict[str, int] = {}
    for lineno, obj in iter_jsonl(path):
        docid = _get_id(obj, path, lineno)
        text = _get_str(obj, "text", path, lineno, required=True)
        title = _get_str(obj, "title", path, lineno, required=False)
        if docid in first_line:
            raise DataError(
                f"{path}:{lineno}: field '_id': duplicate id {docid!r} (first seen on line {first_line[docid]})"
            )
        first_line[docid] = lineno
        corpus[docid] = Passage(docid=docid, title=title, text=text)
    if not corpus:
        raise DataError(f"{path}: corpus is empty")
    return corpus


def _load_queries(path: Path) -> dict[str, str]:
    queries: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for lineno, obj in iter_jsonl(path):
        qid = _get_id(obj, path, lineno)
        text = _get_str(obj, "text", path, lineno, required=True, nonempty=True)
        if qid in first_line:
            raise DataError(
                f"{path}:{lineno}: field '_id': duplicate id {qid!r} (first seen on line {first_line[qid]})"
            )
        first_line[qid] = lineno
        queries[qid] = text
    return queries


def _load_qrels(
    path: Path, queries: dict[str, str], corpus: dict[str, Passage] | None
) -> dict[str, dict[str, int]]:
    if not path.is_file():
        available = sorted(p.stem for p in path.parent.glob("*.tsv")) if path.parent.is_dir() else []
        raise DataError(f"{path}: file not found (available splits: {available or 'none'})")
    qrels: dict[str, dict[str, int]] = {}
    where: dict[tuple[str, str], int] = {}
    header_seen = False
    for lineno, line in _iter_lines(path):
        cols = line.split("\t")
        if not header_seen:
            header_seen = True
            if tuple(c.strip() for c in cols) != QRELS_HEADER:
                raise DataError(
                    f"{path}:{lineno}: bad header {line!r}; expected the tab-separated header "
                    f"'{chr(9).join(QRELS_HEADER)}'"
                )
            continue
        if len(cols) != 3:
            raise DataError(
                f"{path}:{lineno}: expected 3 tab-separated columns (query-id, corpus-id, score), got {len(cols)}"
            )
        qid, docid, score_s = (c.strip() for c in cols)
        if not qid:
            raise DataError(f"{path}:{lineno}: field 'query-id': empty")
        if not docid:
            raise DataError(f"{path}:{lineno}: field 'corpus-id': empty")
        check_trec_id(qid, f"{path}:{lineno}", "query-id")
        check_trec_id(docid, f"{path}:{lineno}", "corpus-id")
        try:
            score = int(score_s)
        except ValueError:
            raise DataError(f"{path}:{lineno}: field 'score': {score_s!r} is not an integer") from None
        if qid not in queries:
            raise DataError(f"{path}:{lineno}: field 'query-id': unknown query id {qid!r} (not in queries.jsonl)")
        if corpus is not None and docid not in corpus:
            raise DataError(f"{path}:{lineno}: field 'corpus-id': unknown document id {docid!r} (not in corpus.jsonl)")
        per_query = qrels.setdefault(qid, {})
        if docid in per_query and per_query[docid] != score:
            raise DataError(
                f"{path}:{lineno}: conflicting judgment for ({qid!r}, {docid!r}): score {score} here, "
                f"{per_query[docid]} on line {where[(qid, docid)]}"
            )
        where.setdefault((qid, docid), lineno)
        per_query[docid] = score
    if not header_seen:
        raise DataError(f"{path}: empty file (expected header '{chr(9).join(QRELS_HEADER)}')")
    if not qrels:
        raise DataError(f"{path}: no judgments after the header")
    return qrels


def load_corpus(name_or_path: str | os.PathLike, data_dir: str | Path | None = None) -> dict[str, Passage]:
    """Only the corpus of a BEIR directory (no queries, no judgments are read)."""
    return _load_corpus(resolve_dataset_dir(name_or_path, data_dir) / "corpus.jsonl")


def load_beir(
    name_or_path: str | os.PathLike,
    split: str = "test",
    data_dir: str | Path | None = None,
    load_corpus: bool = True,
) -> BeirDataset:
    """Load and validate a BEIR collection for one qrels split.

    See the module docstring for the conventions (queries filtered by qrels,
    non-positive judgments kept). ``split="val"`` without a ``qrels/val.tsv`` is the
    held-out part of ``train`` (:mod:`lr_core.validation`).  With ``load_corpus=False`` the corpus is not
    read (``corpus == {}``) and qrels document ids are not checked.
    """
    root = resolve_dataset_dir(name_or_path, data_dir)
    corpus = _load_corpus(root / "corpus.jsonl") if load_corpus else None
    all_queries = _load_queries(root / "queries.jsonl")
    qrels_file = root / "qrels" / f"{split}.tsv"
    if split == VALIDATION_SPLIT and not qrels_file.is_file():
        # derived: the held-out part of train (lr_core/validation.py)
        train = _load_qrels(root / "qrels" / f"{SOURCE_SPLIT}.tsv", all_queries, corpus)
        qrels = {q: train[q] for q in validation_query_ids(train)}
    else:
        qrels = _load_qrels(qrels_file, all_queries, corpus)
    queries = {qid: all_queries[qid] for qid in qrels}
    return BeirDataset(
        name=root.resolve().name,
        corpus=corpus if corpus is not None else {},
        queries=queries,
        qrels=qrels,
        split=split,
    )


def write_beir_subset(source: str | os.PathLike, out_dir: str | os.PathLike, splits: dict[str, int | None],
                      n_random_docs: int, seed: int = 0, data_dir: str | Path | None = None) -> Path:
    """A smaller BEIR directory for CPU-sized experiments: per split the first ``n`` judged
    queries (sorted ids; ``None`` = all), every document they judge, plus ``n_random_docs``
    other documents drawn with ``seed``. Derived data: keep it out of the repository
    (e.g. under ``runs/``); metrics on it are not comparable with the full corpus.
    """
    import json
    import random

    src = resolve_dataset_dir(source, data_dir)
    loaded = {split: load_beir(src, split) for split in splits}
    corpus = next(iter(loaded.values())).corpus
    chosen: dict[str, list[str]] = {}
    docs: set[str] = set()
    for split, n in splits.items():
        qids = sorted(loaded[split].qrels)[: n if n is not None else None]
        chosen[split] = qids
        docs |= {d for q in qids for d in loaded[split].qrels[q] if d in corpus}
    others = sorted(set(corpus) - docs)
    docs |= set(random.Random(seed).sample(others, min(n_random_docs, len(others))))
    out = Path(out_dir)
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    with open(out / "corpus.jsonl", "w", encoding="utf-8") as fh:
        for d in sorted(docs):
            fh.write(json.dumps({"_id": d, "title": corpus[d].title, "text": corpus[d].text}, ensure_ascii=False) + "\n")
    with open(out / "queries.jsonl", "w", encoding="utf-8") as fh:
        seen = set()
        for split, qids in chosen.items():
            for q in qids:
                if q not in seen:
                    seen.add(q)
                    fh.write(json.dumps({"_id": q, "text": loaded[split].queries[q]}, ensure_ascii=False) + "\n")
    for split, qids in chosen.items():
        with open(out / "qrels" / f"{split}.tsv", "w", encoding="utf-8") as fh:
            fh.write("query-id\tcorpus-id\tscore\n")
            for q in qids:
                fh.writelines(f"{q}\t{d}\t{s}\n" for d, s in loaded[split].qrels[q].items() if d in docs)
    return out


def read_query_file(path: str | os.PathLike) -> list[str]:
    """Query texts from a file: one per line, or JSONL lines with a ``text`` field (blank lines skipped)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"query file not found: {path}")
    texts = []
    for lineno, line in _iter_lines(path):
        line = line.strip()
        if not line.startswith("{"):
            texts.append(line)
            continue
        try:
            obj = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            raise DataError(f"{path}:{lineno}: malformed JSON (a line starting with '{{' must be a JSON object)") from None
        text = obj.get("text") if isinstance(obj, dict) else None
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{path}:{lineno}: field 'text': missing, empty or not a string")
        texts.append(text)
    if not texts:
        raise DataError(f"{path}: no queries (empty file)")
    return texts
