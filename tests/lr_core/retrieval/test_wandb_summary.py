"""A finished run's results in W&B: the summary and the results table, offline fallback kept."""
from __future__ import annotations

import time

from lr_core import tracking
from lr_core.config import load_config
from lr_core.retrieval import wandb_summary

from tests.helpers import REPO


def test_online_failure_falls_back_to_offline_and_summary_is_kept(monkeypatch, tmp_path):
    import wandb

    monkeypatch.delenv("WANDB_MODE", raising=False)
    cfg = load_config(REPO / "experiments" / "tiny.yaml", ["wandb.enabled=true", "wandb.mode=online"])
    real_init = wandb.init
    modes = []

    def flaky_init(**kw):
        modes.append(kw["mode"])
        if kw["mode"] == "online":
            raise wandb.errors.CommError("no network")
        return real_init(**kw)

    monkeypatch.setattr(wandb, "init", flaky_init)
    wandb_summary.log_summary(cfg, tmp_path, {"scifact/dense/ndcg@10": 0.5})
    assert modes == ["online", "offline"]
    rid = tracking.run_id(tmp_path)
    [offline] = (tmp_path / "wandb").glob(f"offline-run-*-{rid}")
    # wandb-core (a separate process) may still be writing the run's log when finish() returns on a
    # loaded machine: give it time rather than read a half-written file
    log_file, deadline = offline / f"run-{rid}.wandb", time.time() + 60
    while b"scifact/dense/ndcg@10" not in log_file.read_bytes() and time.time() < deadline:
        time.sleep(0.5)
    assert b"scifact/dense/ndcg@10" in log_file.read_bytes()


def test_disabled_logs_nothing(tmp_path):
    cfg = load_config(REPO / "experiments" / "tiny.yaml")
    wandb_summary.log_summary(cfg, tmp_path, {"x": 1})
    assert not (tmp_path / "wandb").exists()


def test_summary_rows_carry_display_names_and_the_seed(tmp_path):
    cfg = load_config(REPO / "experiments" / "tiny.yaml", ["variant=kl", "trainer.seed=7", "wandb.group=grid"])
    rows = wandb_summary.summary_rows(cfg, tmp_path / "kl-s7", {"scifact/hybrid/ndcg@10": 0.6, "scifact/hybrid/recall@20": 0.7,
                                                          "cranfield/dense/ndcg@10": 0.1, "not/a/metric": 1})
    as_dicts = [dict(zip(wandb_summary.RESULT_COLUMNS, r)) for r in rows]
    assert [(d["dataset_display"], d["representation_display"], d["ndcg@10"]) for d in as_dicts] == [
        ("Cranfield", "Dense", 0.1), ("SciFact", "Hybrid", 0.6)]
    d = as_dicts[1]
    assert (d["group"], d["run"], d["variant_display"], d["seed"], d["recall@20"], d["recall@50"]) == (
        "grid", "kl-s7", "LightRetriever + KL", 7, 0.7, None)
