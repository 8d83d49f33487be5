"""Helpers shared by tests (not fixtures)."""
from __future__ import annotations

from pathlib import Path

from lr_core.config import ExperimentConfig, load_config

REPO = Path(__file__).resolve().parents[1]
EXPERIMENT_CONFIGS = sorted((REPO / "experiments").glob("*.yaml"))


def fast_config(path: Path | None, tmp_path: Path, extra: list[str] | None = None) -> ExperimentConfig:
    """An experiment config shrunk to 2 steps on the tiny Llama, writing only under ``tmp_path``."""
    overrides = [f"run_dir={tmp_path / 'run'}", "model.backbone=tiny-llama", "trainer.max_steps=2",
                 "data.batch_size=2", "data.n_negatives=1", "data.max_doc_len=48", "data.max_query_tokens=16",
                 "trainer.checkpoint_every_n_steps=1", *(extra or [])]
    cfg = load_config(path, overrides)
    for spec in cfg.data.train:
        if "cache" in spec:
            spec["cache"] = str(tmp_path / "mined.jsonl")
    return cfg
