"""Training data formats: reading and writing training JSONL as :class:`TrainExample` rows.

Hard-negative mining and the ``data.train`` source specs are :mod:`lr_core.data.mining`; the torch
Dataset and the homogeneous batch sampler :mod:`lr_core.data.datasets`.

Accepted JSONL layouts (one JSON object per line, blank lines skipped):

* **pos/neg** (FlagEmbedding style)::

      {"query": str, "pos": [passage, ...], "neg": [passage, ...]}

* **Tevatron**::

      {"query": str, "positive_passages": [passage, ...], "negative_passages": [passage, ...]}

A *passage* is either a plain string (the text) or an object
``{"docid"?: str, "title"?: str, "text": str}`` (``_id`` is accepted for
``docid``).  Optional keys on every line: ``instruction`` (``prompt`` is
accepted as an alias, as written by FlagEmbedding's data), ``query_id``
(aliases ``qid`` and ``_id``).  The negatives list may be absent (-> no
negatives).  Other keys (``pos_scores``, ``neg_scores``, ``type``, ...) are
ignored.  Every problem raises :class:`lr_core.errors.DataError` naming the
file, line and field.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lr_core.data.beir import Passage, iter_jsonl
from lr_core.io import atomic_write_text
from lr_core.errors import DataError

__all__ = [
    "TrainExample",
    "read_train_jsonl",
    "write_train_jsonl",
]


_LAYOUTS = (
    "{query, pos: [str | {title, text}], neg: [...]}",
    "{query, positive_passages: [{docid, title, text}], negative_passages: [...]} (Tevatron)",
)


@dataclass
class TrainExample:
    """One training query with its positive and (hard) negative passages."""

    query: str
    positives: list[Passage]
    negatives: list[Passage]
    query_id: str | None = None
    instruction: str | None = None
    source: str = ""


# --------------------------------------------------------------------------- reading / writing


def _parse_passage(item: Any, where: str, fieldname: str) -> Passage:
    if isinstance(item, str):
        if not item.strip():
            raise DataError(f"{where}: field '{fieldname}': empty passage text")
        return Passage(docid=None, title="", text=item)
    if not isinstance(item, dict):
        raise DataError(
            f"{where}: field '{fieldname}': a passage must be a string or an object with 'text', "
            f"got {type(item).__name__}"
        )
    text = item.get("text")
    if not isinstance(text, str) or not text.strip():
        what = "missing" if text is None else ("empty" if isinstance(text, str) else f"not a string ({type(text).__name__})")
        raise DataError(f"{where}: field '{fieldname}.text': {what}")
    title = item.get("title")
    if title is None:
        title = ""
    elif not isinstance(title, str):
        raise DataError(f"{where}: field '{fieldname}.title': expected a string, got {type(title).__name__}")
    docid = item.get("docid", item.get("_id"))
    if docid is not None:
        if isinstance(docid, bool) or not isinstance(docid, (str, int)):
            raise DataError(f"{where}: field '{fieldname}.docid': expected a string, got {type(docid).__name__}")
        docid = str(docid)
        if not docid.strip():
            raise DataError(f"{where}: field '{fieldname}.docid': empty")
    return Passage(docid=docid, title=title, text=text)


def _parse_passages(obj: dict, key: str, where: str, required: bool) -> list[Passage]:
    if key not in obj or obj[key] is None:
        if required:
            raise DataError(f"{where}: field '{key}': missing")
        return []
    items = obj[key]
    if not isinstance(items, list):
        raise DataError(f"{where}: field '{key}': expected a list, got {type(items).__name__}")
    return [_parse_passage(item, where, f"{key}[{j}]") for j, item in enumerate(items)]


def _optional_str(obj: dict, keys: Sequence[str], where: str) -> str | None:
    for key in keys:
        if key in obj and obj[key] is not None:
            value = obj[key]
            if isinstance(value, bool) or not isinstance(value, (str, int)):
                raise DataError(f"{where}: field '{key}': expected a string, got {type(value).__name__}")
            value = str(value)
            return value if value.strip() else None
    return None


def read_train_jsonl(path: str | os.PathLike, source: str | None = None) -> list[TrainExample]:
    """Read a training JSONL file in either accepted layout (see module docstring).

    ``source`` (used for homogeneous batching) defaults to the file stem.
    Raises DataError for a missing/empty file or any malformed line.
    """
    path = Path(path)
    src = source if source is not None else path.stem
    examples: list[TrainExample] = []
    for lineno, obj in iter_jsonl(path):
        where = f"{path}:{lineno}"
        has_ff = "pos" in obj
        has_tev = "positive_passages" in obj
        if "query" not in obj or has_ff == has_tev:
            problem = "both 'pos' and 'positive_passages' present" if has_ff and has_tev else "unknown layout"
            raise DataError(
                f"{where}: {problem}; keys found: {sorted(obj)}; accepted layouts: "
                + " or ".join(_LAYOUTS)
            )
        query = obj["query"]
        if not isinstance(query, str):
            raise DataError(f"{where}: field 'query': expected a string, got {type(query).__name__}")
        if not query.strip():
            raise DataError(f"{where}: field 'query': empty")
        pos_key, neg_key = ("pos", "neg") if has_ff else ("positive_passages", "negative_passages")
        positives = _parse_passages(obj, pos_key, where, required=True)
        if not positives:
            raise DataError(f"{where}: field '{pos_key}': no positive passage")
        negatives = _parse_passages(obj, neg_key, where, required=False)
        examples.append(
            TrainExample(
                query=query,
                positives=positives,
                negatives=negatives,
                query_id=_optional_str(obj, ("query_id", "qid", "_id"), where),
                instruction=_optional_str(obj, ("instruction", "prompt"), where),
                source=src,
            )
        )
    if not examples:
        raise DataError(f"{path}: no training examples (empty file)")
    return examples


def _passage_json(p: Passage) -> dict:
    out: dict[str, Any] = {}
    if p.docid is not None:
        out["docid"] = p.docid
    out["title"] = p.title
    out["text"] = p.text
    return out


def write_train_jsonl(examples: Iterable[TrainExample], path: str | os.PathLike) -> None:
    """Write examples in the Tevatron layout, atomically (temp file + ``os.replace``).

    ``query_id`` and ``instruction`` are written when not None; ``source`` is
    not written (it is given again, or derived from the file name, on reading).
    """

    def lines() -> Iterator[str]:
        for ex in examples:
            obj: dict[str, Any] = {}
            if ex.query_id is not None:
                obj["query_id"] = ex.query_id
            obj["query"] = ex.query
            if ex.instruction is not None:
                obj["instruction"] = ex.instruction
            obj["positive_passages"] = [_passage_json(p) for p in ex.positives]
            obj["negative_passages"] = [_passage_json(p) for p in ex.negatives]
            yield json.dumps(obj, ensure_ascii=False) + "\n"

    atomic_write_text(Path(path), lines())
