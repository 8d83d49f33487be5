"""reports.paper: the copied paper numbers load from the package, and the explicit mapping of our
names to the paper's points at rows that exist."""
from __future__ import annotations

import csv
from importlib import resources
from pathlib import Path

import pytest

from lr_core.errors import ConfigError
from reports import paper

DATA = Path(str(resources.files("reports").joinpath("paper_data")))


def csv_rows(name):
    with open(DATA / name, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_paper_data_is_package_data():
    assert Path(paper.__file__).parent / "paper_data" == DATA
    assert len(paper.per_dataset()) == len(csv_rows("paper_per_dataset_ndcg10.csv")) == 850
    assert paper.backbones() == ["Llama3.1-8b", "Llama3.2-1b", "Llama3.2-3b", "Mistral0.3-7b", "Qwen2.5-1.5b",
                                 "Qwen2.5-3b", "Qwen2.5-7b"]


@pytest.mark.parametrize("ours, expected", [
    ("scifact", ("BEIR", "SciFact")), ("nfcorpus", ("BEIR", "NFCorpus")), ("trec-covid", ("BEIR", "TRECCOVID")),
    ("fiqa", ("BEIR", "FiQA2018")), ("webis-touche2020", ("BEIR", "Touche2020")),
    ("dbpedia-entity", ("BEIR", "DBPedia")), ("climate-fever", ("BEIR", "ClimateFEVER")),
    ("T2Retrieval", ("CMTEB-R", "T2Retrieval")), ("/data/beir/scifact", ("BEIR", "SciFact")),
    ("cranfield", None), ("BEIR-Avg15", None),
])
def test_dataset_mapping(ours, expected):
    assert paper.dataset_name(ours) == expected


def test_lookups_return_the_printed_numbers():
    rows = csv_rows("paper_per_dataset_ndcg10.csv")

    def printed(backbone, method, dataset):
        return next(float(r["ndcg_at_10"]) for r in rows
                    if (r["backbone"], r["method"], r["dataset"]) == (backbone, method, dataset))

    assert paper.lookup_per_dataset("Llama3.2-1b", "LightRetriever Hybrid", "scifact") == printed(
        "Llama3.2-1b", "LightRetriever Hybrid", "SciFact")
    # baselines have no backbone: the same number whichever backbone is compared
    assert paper.lookup_per_dataset("Qwen2.5-7b", "BM25", "scifact") == printed("", "BM25", "SciFact") == 66.5
    assert paper.lookup_per_dataset("Llama3.2-1b", "Full Symmetric", "cranfield") is None
    assert paper.lookup_ablation("Llama3.1-8b", "A3 1-layer transformer query", "hybrid", "BEIR") == 50.1
    assert paper.lookup_ablation("Llama3.2-1b", "A3 1-layer transformer query", "hybrid", "BEIR") is None
    assert paper.lookup_kl("Llama3.1-8b", "without_kl", "sparse", "CMTEB-R") == 54.4
    assert paper.lookup_speed("Llama3.1-8b", "lightretriever")["qps"] == 6999
    assert paper.lookup_speed("Llama3.2-1b", "lightretriever") is None  # Table 1 has no LightRetriever-Llama1b


@pytest.mark.parametrize("variant, representation, kind", [
    ("symmetric", None, "Full"), ("lightretriever", "symmetric", "Full"), ("untrained", "symmetric", "Full"),
    ("lightretriever", "hybrid", "LightRetriever"), ("lightretriever", None, "LightRetriever"),
    ("lightretriever", "dense", None), ("untrained", "sparse", None), (None, None, None),
])
def test_speed_kind(variant, representation, kind):
    assert paper.speed_kind(variant, representation) == kind


def test_every_mapped_name_exists_in_the_paper():
    methods = set(paper.per_dataset()["method"])
    assert set(paper.PER_DATASET_METHODS.values()) <= methods
    ablations = {(r["setting"], r["representation"]) for r in csv_rows("paper_table4_ablations.csv")}
    assert set(paper.ABLATION_SETTINGS.values()) <= ablations
    kl_columns = set(csv_rows("paper_table5_kl.csv")[0])
    for column in paper.KL_SETTINGS.values():
        assert {f"beir_{column}", f"cmteb_{column}"} <= kl_columns
    models = {r["model"] for r in csv_rows("paper_table1_speed.csv")}
    assert {f"Full-{s}" for s in paper.SPEED_BACKBONE.values()} <= models


def test_unknown_paper_backbone():
    with pytest.raises(ConfigError, match="Llama3.2-1b"):
        paper.check_backbone("SmolLM2-135M")
