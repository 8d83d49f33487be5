"""Experiment configs: loading, overrides, clear errors."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lr_core.config import ExperimentConfig, last_checkpoint, load_config, save_config
from lr_core.errors import ConfigError

from tests.helpers import EXPERIMENT_CONFIGS


def test_overrides_apply_and_are_typed():
    cfg = load_config(None, ["trainer.max_steps=7", "optim.lr=3e-4", "model.lora.r=8", "data.instruction=Find x"])
    assert (cfg.trainer.max_steps, cfg.optim.lr, cfg.model.lora.r, cfg.data.instruction) == (7, 3e-4, 8, "Find x")


def test_unknown_key_names_the_file_and_the_allowed_keys(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("trainer:\n  max_step: 3\n")
    with pytest.raises(ConfigError, match=r"bad.yaml.trainer: unknown key\(s\) max_step; allowed: .*max_steps"):
        load_config(path)
    with pytest.raises(ConfigError, match="unknown key"):
        load_config(None, ["optim.learning_rate=1"])


def test_wrong_type_and_bad_yaml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="trainer.max_steps: expected int"):
        load_config(None, ["trainer.max_steps=many"])
    bad = tmp_path / "broken.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="broken.yaml: invalid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="key.sub=value"):
        load_config(None, ["trainer.max_steps"])


def test_resolved_config_roundtrips(tmp_path):
    cfg = load_config(None, ["name=abc", "loss.tau_dense=0.05"])
    save_config(cfg, tmp_path / "config.yaml")
    again = load_config(tmp_path / "config.yaml")
    assert again == cfg and again.hash() == cfg.hash()
    assert yaml.safe_load((tmp_path / "config.yaml").read_text())["loss"]["tau_dense"] == 0.05
    assert cfg.resolved_run_dir.as_posix() == "runs/abc"


def test_defaults_follow_the_paper():
    cfg = ExperimentConfig()
    assert (cfg.loss.tau_dense, cfg.loss.tau_sparse, cfg.loss.flops_weight, cfg.loss.flops_warmup_steps) == (0.02, 1.0, 1e-3, 4000)
    assert (cfg.optim.lr, cfg.optim.weight_decay, cfg.optim.warmup_steps, cfg.optim.min_lr_ratio) == (2e-5, 0.01, 100, 0.1)
    assert (cfg.data.batch_size, cfg.data.n_negatives, cfg.data.max_doc_len, cfg.trainer.max_steps) == (128, 7, 512, 12000)
    assert (cfg.model.lora.r, cfg.model.lora.alpha, cfg.model.lora.dropout) == (16, 32, 0.1)


@pytest.mark.parametrize("path", EXPERIMENT_CONFIGS, ids=lambda p: p.stem)
def test_every_experiment_config_loads(path):
    cfg = load_config(path)
    assert cfg.name == path.stem, "a config's name should match its file name"


def test_last_checkpoint_is_the_documented_resume_point(tmp_path):
    # README, the sweep tasks and the users' own scripts rely on this layout
    assert last_checkpoint(tmp_path / "run") == tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert last_checkpoint("runs/x") == Path("runs/x/checkpoints/last.ckpt")
