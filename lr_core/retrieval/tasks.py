"""The task registry: every evaluation set (benchmark task) the suite knows, in one place.

A :class:`Task` names a task's canonical name, its suite (``beir``, ``cmteb`` or
``local``), the split it is evaluated on (BEIR: ``test``; MS MARCO and CMTEB-Retrieval:
``dev``), its query instruction (from :mod:`lr_core.instructions`), its name in ``mteb``
and, for BEIR sets, the official download URL.

* :data:`TASKS` -- the 15 BEIR tasks, the 8 CMTEB-Retrieval tasks and the offline sets
  ``cranfield`` and ``cmrc2018_zh`` (``scifact`` is both a BEIR task and an offline set; it
  keeps its BEIR entry).
* :func:`get_task` -- lookup by canonical name, mteb name or alias (case-insensitive;
  a path's last component counts).  Unknown names raise ``KeyError`` listing known ones.
* :func:`task_for_path` -- a Task for any BEIR-format directory; an unknown
  directory needs an explicit instruction.
* :func:`is_complete` -- whether a directory holds a task's files (fetching them is
  :mod:`lr_core.retrieval.download`, ``lr data download``).

>>> get_task("SciFact").eval_split
'test'
>>> get_task("/data/beir/msmarco/").eval_split
'dev'
>>> get_task("FiQA2018").name
'fiqa'
>>> len(suite_members("beir")), len(suite_members("cmteb"))
(15, 8)
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from lr_core.validation import SOURCE_SPLIT, VALIDATION_SPLIT
from lr_core.errors import DataError, MissingSettingError
from lr_core.instructions import BEIR_INSTRUCTIONS, CMTEB_INSTRUCTIONS, LOCAL_INSTRUCTIONS

__all__ = [
    "Task",
    "TASKS",
    "BEIR_URL_TEMPLATE",
    "SUITES",
    "get_task",
    "task_for_path",
    "suite_members",
    "is_beir_dir",
    "is_complete",
]

BEIR_URL_TEMPLATE = "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/{name}.zip"
SUITES = ("beir", "cmteb", "local")


@dataclass(frozen=True)
class Task:
    """One evaluation task. ``mteb_name``/``beir_url`` are ``None`` where they do not apply."""

    name: str
    suite: str
    eval_split: str
    instruction: str
    mteb_name: str | None = None
    beir_url: str | None = None
    # Drop a retrieved document whose id equals the query id. Only where queries are
    # themselves corpus documents (ArguAna, Quora, CQADupStack, as mteb does); elsewhere
    # equal ids are a coincidence of numbering (Cranfield's query 225 judges doc 225 relevant).
    ignore_identical_ids: bool = False
    display: str | None = None  # the name tables and figures print; None: mteb_name, else name

    @property
    def display_name(self) -> str:
        return self.display or self.mteb_name or self.name

    def __post_init__(self):
        if self.suite not in SUITES:
            raise ValueError(f"suite must be one of {SUITES}, got {self.suite!r}")
        if not self.instruction or not self.instruction.strip():
            raise ValueError(f"benchmark {self.name!r} needs a non-empty instruction")


# Task names as mteb spells them (checked against the installed mteb in the tests).
_BEIR_MTEB_NAMES = {
    "arguana": "ArguAna",
    "climate-fever": "ClimateFEVER",
    "cqadupstack": "CQADupstackRetrieval",  # an aggregate of 12 sub-forum tasks in mteb
    "dbpedia-entity": "DBPedia",
    "fever": "FEVER",
    "fiqa": "FiQA2018",
    "hotpotqa": "HotpotQA",
    "msmarco": "MSMARCO",
    "nfcorpus": "NFCorpus",
    "nq": "NQ",
    "quora": "QuoraRetrieval",
    "scidocs": "SCIDOCS",
    "scifact": "SciFact",
    "trec-covid": "TRECCOVID",
    "webis-touche2020": "Touche2020",  # BEIR's Touche v2 (mteb's Touche2020Retrieval.v3 is another set)
}
_CMTEB_MTEB_NAMES = {
    "t2retrieval": "T2Retrieval",
    "mmarcoretrieval": "MMarcoRetrieval",
    "duretrieval": "DuRetrieval",
    "covidretrieval": "CovidRetrieval",
    "cmedqaretrieval": "CmedqaRetrieval",
    "ecomretrieval": "EcomRetrieval",
    "medicalretrieval": "MedicalRetrieval",
    "videoretrieval": "VideoRetrieval",
}
_LOCAL_DISPLAY = {"cranfield": "Cranfield", "cmrc2018_zh": "CMRC2018 (zh)"}
_DEV_SPLIT_BEIR = {"msmarco"}
_QUERIES_ARE_DOCUMENTS = {"arguana", "quora", "cqadupstack"}


def _build() -> dict[str, Task]:
    out: dict[str, Task] = {}
    for name, inst in BEIR_INSTRUCTIONS.items():
        out[name] = Task(name=name, suite="beir", eval_split="dev" if name in _DEV_SPLIT_BEIR else "test",
                              instruction=inst, mteb_name=_BEIR_MTEB_NAMES[name],
                              beir_url=BEIR_URL_TEMPLATE.format(name=name),
                              ignore_identical_ids=name in _QUERIES_ARE_DOCUMENTS)
    for name, inst in CMTEB_INSTRUCTIONS.items():
        out[name] = Task(name=name, suite="cmteb", eval_split="dev", instruction=inst,
                              mteb_name=_CMTEB_MTEB_NAMES[name])
    for name, inst in LOCAL_INSTRUCTIONS.items():
        out[name] = Task(name=name, suite="local", eval_split="test", instruction=inst,
                              display=_LOCAL_DISPLAY.get(name))
    return out


TASKS: dict[str, Task] = _build()

# The offline copies shipped with the workplace (scifact is listed under its BEIR entry).
LOCAL_SETS = ("scifact", "cranfield", "cmrc2018_zh")

_ALIASES: dict[str, str] = {
    **{b.mteb_name.lower(): b.name for b in TASKS.values() if b.mteb_name},
    "climatefever": "climate-fever",
    "dbpedia": "dbpedia-entity",
    "fiqa2018": "fiqa",
    "treccovid": "trec-covid",
    "touche2020": "webis-touche2020",
    "msmarco-dev": "msmarco",
    "cmrc2018": "cmrc2018_zh",
}
# mteb evaluates CQADupStack as 12 sub-forum tasks, e.g. "CQADupstackAndroidRetrieval".
_CQA_SUBTASK = re.compile(r"^cqadupstack[a-z]+retrieval$")


def _key(name: str | os.PathLike) -> str:
    text = str(name).strip().replace("\\", "/").rstrip("/")
    return text.split("/")[-1].lower()


def _lookup(name: str | os.PathLike) -> Task | None:
    key = _key(name)
    if key in TASKS:
        return TASKS[key]
    if key in _ALIASES:
        return TASKS[_ALIASES[key]]
    if _CQA_SUBTASK.match(key):
        return TASKS["cqadupstack"]
    return None


def get_task(name: str | os.PathLike) -> Task:
    """The registered benchmark called ``name`` (canonical, mteb name or alias; any case).

    A path counts by its last component (``/data/beir/scifact/`` -> ``scifact``).  Unknown
    names raise ``KeyError`` listing the known ones; for an unregistered local directory use
    :func:`task_for_path` with an explicit instruction.
    """
    found = _lookup(name)
    if found is None:
        raise KeyError(
            f"unknown benchmark {str(name)!r}; known: {', '.join(sorted(TASKS))}. "
            "For another BEIR-format directory use task_for_path(path, instruction=...)."
        )
    return found


def display_name(name: str | os.PathLike) -> str:
    """The display name of a data set (``scifact`` -> ``SciFact``); an unregistered one keeps its name."""
    found = _lookup(name)
    return found.display_name if found else _key(name) or str(name)


def suite_members(suite: str) -> list[str]:
    """Canonical names of a suite's tasks, in registry order (``local``: the offline sets)."""
    if suite not in SUITES:
        raise KeyError(f"unknown suite {suite!r}; known: {', '.join(SUITES)}")
    if suite == "local":
        return list(LOCAL_SETS)
    return [b.name for b in TASKS.values() if b.suite == suite]


# -- BEIR directories ------------------------------------------------------------------
def _qrels_splits(path: Path) -> list[str]:
    """The splits a directory offers: its qrels files, plus ``val`` derived from ``train`` (lr_core/validation.py)."""
    qrels = path / "qrels"
    splits = {p.stem for p in qrels.glob("*.tsv")} if qrels.is_dir() else set()
    if SOURCE_SPLIT in splits:
        splits.add(VALIDATION_SPLIT)
    return sorted(splits)


def is_beir_dir(path: str | os.PathLike, split: str | None = None) -> bool:
    """True when ``path`` holds ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/*.tsv``
    (``qrels/{split}.tsv`` when ``split`` is given).  Only the layout is checked, not the
    contents (:func:`lr_core.data.beir.load_beir` validates those)."""
    path = Path(path)
    if not ((path / "corpus.jsonl").is_file() and (path / "queries.jsonl").is_file()):
        return False
    splits = _qrels_splits(path)
    return (split in splits) if split is not None else bool(splits)


def is_complete(path: Path, bench: Task | None) -> bool:
    """A BEIR layout for ``bench``'s split; CQADupStack is a directory of sub-forum sets."""
    split = bench.eval_split if bench is not None else None
    if is_beir_dir(path, split):
        return True
    subdirs = [p for p in path.iterdir() if p.is_dir()] if path.is_dir() else []
    return bool(subdirs) and bench is not None and bench.name == "cqadupstack" and all(
        is_beir_dir(p, split) for p in subdirs)


def task_for_path(path: str | os.PathLike, instruction: str | None = None,
                       split: str | None = None) -> Task:
    """A Task for a BEIR-format directory, registered or not.

    The name is the directory's last component.  A registered name keeps its registry entry
    (``instruction``/``split``, when given, override it).  An unregistered directory becomes a
    ``local`` benchmark and needs ``instruction`` (a wrong generic prompt silently costs points
    of nDCG); its split defaults to ``test``, else ``dev``, else its only qrels file.
    """
    path = Path(path).expanduser()
    if not path.is_dir():
        raise DataError(f"{path}: not a directory")
    if not is_beir_dir(path):
        raise DataError(f"{path}: not a BEIR-format directory (needs corpus.jsonl, queries.jsonl, qrels/<split>.tsv)")
    available = _qrels_splits(path)
    known = _lookup(path.resolve().name)
    if known is not None:
        chosen = split or known.eval_split
        if chosen not in available:
            raise DataError(f"{path}: no qrels/{chosen}.tsv (available splits: {available})")
        return Task(name=known.name, suite=known.suite, eval_split=chosen,
                         instruction=instruction or known.instruction, mteb_name=known.mteb_name,
                         beir_url=known.beir_url, ignore_identical_ids=known.ignore_identical_ids)
    if not instruction:
        raise MissingSettingError(
            f"{path.name!r} is not a registered benchmark, so its query instruction is unknown "
            f"(known: {', '.join(sorted(TASKS))})", "instruction")
    if split is None:
        split = next((s for s in ("test", "dev") if s in available), available[0] if len(available) == 1 else None)
        if split is None:
            raise MissingSettingError(f"{path}: several qrels splits {available} and none is test/dev", "split")
    elif split not in available:
        raise DataError(f"{path}: no qrels/{split}.tsv (available splits: {available})")
    return Task(name=path.resolve().name, suite="local", eval_split=split, instruction=instruction)
