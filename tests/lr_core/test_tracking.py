"""W&B: one run id per run directory, offline without a key, online failures fall back to offline."""
from __future__ import annotations

import pytest

from lr_core import tracking
from lr_core.config import load_config
from lr_core.errors import ConfigError

from tests.helpers import REPO


def test_run_id_is_created_once(tmp_path):
    rid = tracking.run_id(tmp_path)
    assert len(rid) == 12 and tracking.run_id(tmp_path) == rid
    assert (tmp_path / tracking.ID_FILE).read_text().strip() == rid


def test_mode_resolution(monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    assert tracking.resolve_mode("auto") == "offline"
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert tracking.resolve_mode("auto") == "online"
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert tracking.resolve_mode("online") == "offline"
    with pytest.raises(ConfigError):
        tracking.resolve_mode("sometimes")


def test_disabled_by_default(tmp_path):
    cfg = load_config(REPO / "experiments" / "tiny.yaml")
    assert tracking.wandb_logger(cfg, tmp_path) is None
    assert not (tmp_path / "wandb").exists()
