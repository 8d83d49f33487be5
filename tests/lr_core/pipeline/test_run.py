"""lr_core.pipeline.run: the one pipeline of lr demo, lr compare and every sweep run."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest

from lr_core.config import load_config
from lr_core.pipeline.run import (METRICS, EvalPlan, eval_model, eval_settings, evaluate_run, fit_run, is_baseline,
                                  summary_values)
from slurm.spec import expand, load_spec, run_config

from tests.helpers import REPO, SWEEP_SMALL, write_spec, write_subset


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
    assert spec.eval_plan("mrl") == EvalPlan(("scifact",), str(tmp_path), None, ("dense",), "cpu", 4, (32,), None, 64)
    assert spec.eval_plan("bm25").representations is None


def test_bm25_row_through_the_pipeline_writes_the_ledger(shared_data, tmp_path):
    data = write_subset(shared_data, "scifact", tmp_path / "beir", n_queries=5, n_extra_docs=30).parent
    cfg = replace(load_config(REPO / "experiments" / "tiny.yaml"), variant="bm25")
    [rec] = evaluate_run(cfg, tmp_path / "bm25", EvalPlan(("scifact",), str(data)))
    assert rec["variant"] == "bm25" and rec["representation"] == "bm25" and 0 < rec["ndcg@10"] <= 1
    on_disk = json.loads((tmp_path / "bm25" / "eval" / "scifact" / "bm25" / "metrics.json").read_text())
    assert on_disk["ndcg@10"] == pytest.approx(rec["ndcg@10"])


def test_evaluation_batch_sizes_shards_and_devices_follow_the_spec_and_the_ranks(shared_data, tmp_path, monkeypatch):
    """The spec's batch sizes reach the evaluation settings; with several ranks (srun's environment) the
    corpus is encoded in one shard per rank and each rank evaluates on its own GPU."""
    import lr_core.retrieval.evaluate

    data = write_subset(shared_data, "scifact", tmp_path / "beir", n_queries=4, n_extra_docs=20).parent
    path = write_spec(tmp_path / "b.yaml", "b", {"variant": ["lightretriever", "untrained"]}, SWEEP_SMALL, data,
                      evaluate={"batch_size": 8, "cache_batch_size": 512, "query_batch_size": 32, "device": "cuda"})
    spec = load_spec(path)
    trained, untrained = (run_config(spec, run) for run in expand(spec))
    for var in ("WORLD_SIZE", "SLURM_STEP_NUM_TASKS", "LOCAL_RANK", "SLURM_LOCALID"):
        monkeypatch.delenv(var, raising=False)
    s = eval_settings(trained, spec.eval_plan(trained.variant))
    assert (s.batch_size, s.cache_batch_size, s.query_batch_size, s.num_shards, s.representations) == \
        (8, 512, 32, 1, ("symmetric",))
    default = load_spec(write_spec(tmp_path / "d.yaml", "d", {"variant": ["untrained"]}, SWEEP_SMALL, data))
    s = eval_settings(untrained, default.eval_plan("untrained"))
    assert (s.batch_size, s.cache_batch_size, s.query_batch_size) == (16, None, 64)
    devices = []
    monkeypatch.setattr(lr_core.retrieval.evaluate, "load_model_for_eval", lambda *a, device, **kw: devices.append(device))
    eval_model(trained, tmp_path, spec.eval_plan(trained.variant))
    monkeypatch.setenv("SLURM_STEP_NUM_TASKS", "4")
    monkeypatch.setenv("SLURM_LOCALID", "3")
    eval_model(untrained, tmp_path, spec.eval_plan(untrained.variant))
    assert devices == ["cuda", "cuda:3"]
    assert eval_settings(trained, spec.eval_plan(trained.variant)).num_shards == 4
