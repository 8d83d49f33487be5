"""lr_core.retrieval.tasks, the task registry: completeness, lookup, ad-hoc directories, display names."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from lr_core.data.beir import load_beir
from lr_core.retrieval.tasks import TASKS, Task, get_task, suite_members, task_for_path
from lr_core.errors import ConfigError, DataError
from lr_core.instructions import BEIR_INSTRUCTIONS, CMTEB_INSTRUCTIONS, LOCAL_INSTRUCTIONS, instruction_for


# -- registry -----------------------------------------------------------------------------
def test_registry_has_all_15_beir_and_8_cmteb_tasks():
    beir = suite_members("beir")
    cmteb = suite_members("cmteb")
    assert len(beir) == 15 and set(beir) == set(BEIR_INSTRUCTIONS)
    assert len(cmteb) == 8 and set(cmteb) == set(CMTEB_INSTRUCTIONS)
    assert suite_members("local") == ["scifact", "cranfield", "cmrc2018_zh"]
    assert set(TASKS) == set(BEIR_INSTRUCTIONS) | set(CMTEB_INSTRUCTIONS) | set(LOCAL_INSTRUCTIONS)
    with pytest.raises(KeyError, match="beir"):
        suite_members("mteb")


def test_splits_instructions_urls_and_mteb_names():
    for name, b in TASKS.items():
        assert b.name == name
        assert b.instruction == instruction_for(name)
        if b.suite == "beir":
            assert b.eval_split == ("dev" if name == "msmarco" else "test")
            assert b.beir_url == f"https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/{name}.zip"
            assert b.mteb_name
        elif b.suite == "cmteb":
            assert b.eval_split == "dev" and b.beir_url is None and b.mteb_name.lower() == name
        else:
            assert b.suite == "local" and b.eval_split == "test" and b.beir_url is None and b.mteb_name is None
    assert TASKS["scifact"].suite == "beir"  # also a local set, it keeps its BEIR entry
    assert TASKS["cmrc2018_zh"].suite == TASKS["cranfield"].suite == "local"
    with pytest.raises(dataclasses.FrozenInstanceError):
        TASKS["nq"].eval_split = "dev"
    with pytest.raises(ValueError, match="suite"):
        Task("x", "glue", "test", "Given a query")
    with pytest.raises(ValueError, match="instruction"):
        Task("x", "local", "test", " ")


@pytest.mark.parametrize("query,expected", [
    ("scifact", "scifact"), ("SciFact", "scifact"), ("SCIFACT", "scifact"), ("/data/beir/scifact/", "scifact"),
    (Path("/x/trec-covid"), "trec-covid"), ("TRECCOVID", "trec-covid"), ("FiQA2018", "fiqa"),
    ("Touche2020", "webis-touche2020"), ("DBPedia", "dbpedia-entity"), ("QuoraRetrieval", "quora"),
    ("CQADupstackRetrieval", "cqadupstack"), ("CQADupstackAndroidRetrieval", "cqadupstack"),
    ("msmarco-dev", "msmarco"), ("T2Retrieval", "t2retrieval"), ("CmedqaRetrieval", "cmedqaretrieval"),
    ("C:\\data\\cranfield", "cranfield"), ("cmrc2018_zh", "cmrc2018_zh"),
])
def test_get_task_names_aliases_and_paths(query, expected):
    assert get_task(query).name == expected


def test_unknown_name_lists_known_ones():
    with pytest.raises(KeyError, match="unknown benchmark 'scifactt'.*arguana.*scifact.*videoretrieval"):
        get_task("scifactt")
    with pytest.raises(KeyError):
        get_task("Touche2020Retrieval.v3")  # a different data set in mteb, not an alias


# -- ad-hoc directories ---------------------------------------------------------------------
def write_beir(root: Path, n_docs: int = 3, splits=("test",), nested: str | None = None) -> Path:
    """A tiny valid BEIR directory (optionally inside ``root / nested``)."""
    d = root / nested if nested else root
    (d / "qrels").mkdir(parents=True, exist_ok=True)
    with open(d / "corpus.jsonl", "w") as f:
        for i in range(n_docs):
            f.write(json.dumps({"_id": f"d{i}", "title": f"title {i}", "text": f"text number {i}"}) + "\n")
    with open(d / "queries.jsonl", "w") as f:
        f.write(json.dumps({"_id": "q0", "text": "what is number one"}) + "\n")
    for split in splits:
        (d / "qrels" / f"{split}.tsv").write_text("query-id\tcorpus-id\tscore\nq0\td1\t1\n")
    return d


def test_task_for_path_registered_and_unregistered(shared_data, tmp_path):
    b = task_for_path(shared_data / "scifact")
    assert b == TASKS["scifact"]
    assert task_for_path(shared_data / "cranfield").suite == "local"
    assert task_for_path(shared_data / "scifact", instruction="Find abstracts").instruction == "Find abstracts"
    with pytest.raises(DataError, match="qrels/dev.tsv"):
        task_for_path(shared_data / "scifact", split="dev")

    mine = write_beir(tmp_path / "mycorpus")
    with pytest.raises(ConfigError, match="instruction"):
        task_for_path(mine)
    adhoc = task_for_path(mine, instruction="Given a question, retrieve answers")
    assert (adhoc.name, adhoc.suite, adhoc.eval_split, adhoc.mteb_name, adhoc.beir_url) == (
        "mycorpus", "local", "test", None, None)
    assert load_beir(mine, adhoc.eval_split).queries == {"q0": "what is number one"}

    devonly = write_beir(tmp_path / "devonly", splits=("dev", "train"))
    assert task_for_path(devonly, instruction="x y").eval_split == "dev"
    odd = write_beir(tmp_path / "odd", splits=("a", "b"))
    with pytest.raises(DataError, match="split"):
        task_for_path(odd, instruction="x y")
    assert task_for_path(odd, instruction="x y", split="b").eval_split == "b"

    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="not a BEIR-format directory"):
        task_for_path(tmp_path / "empty", instruction="x y")
    with pytest.raises(DataError, match="not a directory"):
        task_for_path(tmp_path / "missing", instruction="x y")


def test_identical_ids_are_ignored_only_where_queries_are_documents(shared_data):
    assert {n for n, b in TASKS.items() if b.ignore_identical_ids} == {"arguana", "quora", "cqadupstack"}
    assert task_for_path(shared_data / "cranfield").ignore_identical_ids is False


def test_display_names():
    from lr_core.retrieval.tasks import display_name

    assert display_name("scifact") == "SciFact" and display_name("fiqa") == "FiQA2018"
    assert display_name("cranfield") == "Cranfield" and display_name("/data/beir/trec-covid/") == "TRECCOVID"
    assert display_name("my_local_set") == "my_local_set"
