"""`lr report --wandb DIR`: the same tables from W&B offline run directories (what `lr sweep-task`
leaves through lr_core.wandb_summary.log_summary), read with reports.wandb_offline; no network."""
from __future__ import annotations

import json

import pytest

from lr_core.retrieval import wandb_summary
from lr_core.cli import main
from lr_core.config import load_config
from reports import tables
from reports.collect import collect
from reports.wandb_offline import offline_runs
from tests.helpers import REPO

SUMMARIES = {  # (variant, seed) -> the summary values a sweep run logs
    ("lightretriever", 1): {"scifact/hybrid/ndcg@10": 0.60, "scifact/dense/ndcg@10": 0.50},
    ("lightretriever", 2): {"scifact/hybrid/ndcg@10": 0.64, "scifact/dense/ndcg@10": 0.52},
    ("symmetric", 1): {"scifact/symmetric/ndcg@10": 0.61, "scifact/symmetric/recall@100": 0.9},
}


@pytest.fixture(scope="module")
def wandb_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    mp = pytest.MonkeyPatch()
    mp.setenv("WANDB_MODE", "offline")
    mp.setenv("WANDB_SILENT", "true")
    try:
        for (variant, seed), values in SUMMARIES.items():
            cfg = load_config(REPO / "experiments" / "tiny.yaml",
                              ["wandb.enabled=true", "wandb.mode=offline", f"variant={variant}",
                               f"trainer.seed={seed}", "wandb.group=grid"])
            wandb_summary.log_summary(cfg, root / f"{variant}-s{seed}", values)
    finally:
        mp.undo()
    return root


def test_offline_runs_are_read_back(wandb_dir):
    runs = {(r.config["variant"], r.config["trainer"]["seed"]): r for r in offline_runs(wandb_dir)}
    assert set(runs) == set(SUMMARIES)
    run = runs[("symmetric", 1)]
    assert run.group == "grid" and run.summary["scifact/symmetric/ndcg@10"] == 0.61
    # the fields that let the W&B UI compare a group's runs (lr_core.retrieval.wandb_summary docstring)
    assert run.summary["variant_display"] == "Full Symmetric" and run.summary["seed"] == 1
    assert run.summary["group"] == "grid" and run.summary["backbone_display"] == "Tiny Llama (random)"
    table = run.summary[wandb_summary.RESULTS_TABLE]
    assert table["_type"] == "table-file" and table["nrows"] == 1 and table["ncols"] == len(wandb_summary.RESULT_COLUMNS)
    logged = json.loads((next(wandb_dir.glob("symmetric-s1/wandb/offline-run-*")) / "files" / table["path"])
                        .read_text())
    assert logged["columns"] == list(wandb_summary.RESULT_COLUMNS)
    row = dict(zip(logged["columns"], logged["data"][0]))
    assert row["dataset_display"] == "SciFact" and row["representation_display"] == "Full-LLM query"
    assert row["ndcg@10"] == 0.61 and row["recall@100"] == 0.9 and row["recall@20"] is None


def test_the_same_tables_from_wandb_as_from_metrics_json(wandb_dir):
    r = collect([], wandb_project=str(wandb_dir))
    assert sorted(r.records["seed"].tolist()) == [1, 1, 1, 2, 2]
    t2 = tables.table2_main(r)
    cells = {row.labels[1]: row.cells[0] for row in t2.rows}
    assert cells["LightRetriever"].text() == "62.0 \u00b1 2.8 (2)"  # stdev(60, 64) = 2.83
    assert cells["Full Symmetric"].text() == "61.0"
    assert "Tiny Llama (random)" in t2.to_markdown()


def test_cli_report_from_an_offline_wandb_directory(wandb_dir, tmp_path, capsys):
    assert main(["report", "--wandb", str(wandb_dir), "--out", str(tmp_path / "r"), "--no-pdf"]) == 0
    out = capsys.readouterr().out
    assert "table2_main" in out and "table9_11_per_dataset" in out
    assert "62.0 \u00b1 2.8 (2)" in (tmp_path / "r" / "tables" / "table2_main.md").read_text()
    assert f"wandb:{wandb_dir}" in (tmp_path / "r" / "report.md").read_text()
