"""lr_core.pipeline.run: the one pipeline of lr demo, lr compare and every sweep run."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest

from lr_core.config import load_config
from lr_core.pipeline.run import METRICS, EvalPlan, evaluate_run, fit_run, is_baseline, summary_values
from slurm.spec import load_spec

from tests.helpers import REPO, write_spec, write_subset


def test_baselines_train_nothing(tmp_path):
    cfg = load_config(REPO / "experiments" / "tiny.yaml", [f"run_dir={tmp_path / 'r'}"])
    assert is_baseline("bm25") and is_baseline("untrained") and not is_baseline(cfg.variant)
    for variant in ("bm25", "untrained"):
        assert fit_run(replace(cfg, variant=variant)) is None
    assert not (tmp_path / "r").exists()


def test_summary_values_are_the_ledger_metrics_per_dataset_and_representation():
    rec = {"dataset": "scifact", "representation": "dense@64", **{m: i / 10 for i, m in enumerate(METRICS)}}
    assert summary_values([rec]) == {f"scifact/dense@64/{m}": i / 10 for i, m in enumerate(METRICS)}


def test_a_sweep_spec_gives_its_evaluate_block_as_a_plan(tmp_path):
    spec = load_spec(write_spec(tmp_path / "s.yaml", "s", {"variant": ["mrl", "bm25"]}, [], tmp_path,
                                evaluate={"representations": {"mrl": ["dense"]}, "mrl_dims": [32], "batch_size": 4}))
    assert spec.eval_plan("mrl") == EvalPlan(("scifact",), str(tmp_path), None, ("dense",), "cpu", 4, (32,))
    assert spec.eval_plan("bm25").representations is None


def test_bm25_row_through_the_pipeline_writes_the_ledger(shared_data, tmp_path):
    data = write_subset(shared_data, "scifact", tmp_path / "beir", n_queries=5, n_extra_docs=30).parent
    cfg = replace(load_config(REPO / "experiments" / "tiny.yaml"), variant="bm25")
    [rec] = evaluate_run(cfg, tmp_path / "bm25", EvalPlan(("scifact",), str(data)))
    assert rec["variant"] == "bm25" and rec["representation"] == "bm25" and 0 < rec["ndcg@10"] <= 1
    on_disk = json.loads((tmp_path / "bm25" / "eval" / "scifact" / "bm25" / "metrics.json").read_text())
    assert on_disk["ndcg@10"] == pytest.approx(rec["ndcg@10"])
