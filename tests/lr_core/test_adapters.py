"""Published adapters (lr_core.adapters): export a run, score it without its checkpoint."""
from __future__ import annotations

import json

import pytest
import torch

from lr_core.adapters import export_adapter, is_adapter_dir
from lr_core.cli import main
from lr_core.train import fit, load_trained

from tests.helpers import REPO, fast_config, write_subset

TINY = REPO / "experiments" / "tiny.yaml"


@pytest.mark.parametrize("variant", ["lightretriever", "a2_embedding_query"])
def test_exported_adapter_reloads_the_runs_weights_in_float16(variant, tmp_path):
    run = fit(fast_config(TINY, tmp_path, [f"variant={variant}"]))
    out = export_adapter(*load_trained(run), run, tmp_path / "published")
    assert is_adapter_dir(out) and (out / "adapter_model.safetensors").is_file()
    assert (out / "logs" / "metrics.csv").is_file() and (out / "train_done.json").is_file()
    info = json.loads((out / "adapter_info.json").read_text())
    assert info["variant"] == variant and info["dtype"] == "float16"
    assert (out / "extra_weights.safetensors").is_file() == (variant == "a2_embedding_query")
    assert not (out / "README.md").exists()  # no machine paths or empty templates are published
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == "tiny-llama"
    original, _, _ = load_trained(run)
    published, cfg, _ = load_trained(out)
    want = {n: p for n, p in original.named_parameters() if p.requires_grad}
    got = dict(published.named_parameters())
    assert cfg.variant == variant and want
    for name, p in want.items():
        assert got[name].dtype == torch.float32
        torch.testing.assert_close(got[name], p.half().float(), rtol=0, atol=0)  # exactly the float16 rounding
    assert not list(tmp_path.glob(".published.*"))  # no temporary directory left behind


def test_lr_evaluate_scores_a_published_adapter_without_writing_into_it(shared_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    beir = write_subset(shared_data, "scifact", tmp_path / "beir", n_queries=5, n_extra_docs=20).parent
    run = fit(fast_config(TINY, tmp_path))
    assert main(["export-adapter", str(run), str(tmp_path / "adapter")]) == 0
    before = sorted(p.name for p in (tmp_path / "adapter").rglob("*"))
    assert main(["evaluate", str(tmp_path / "adapter"), "--dataset", "scifact", "--data-dir", str(beir),
                 "--representation", "dense", "--out", str(tmp_path / "eval")]) == 0
    rec = json.loads((tmp_path / "eval" / "scifact" / "dense" / "metrics.json").read_text())
    assert rec["checkpoint"] == str(tmp_path / "adapter") and rec["num_queries"] == 5
    assert sorted(p.name for p in (tmp_path / "adapter").rglob("*")) == before


def test_a_published_adapter_can_warm_start_another_run(tmp_path):
    source = fit(fast_config(TINY, tmp_path / "sym", ["variant=symmetric"]))
    published = export_adapter(*load_trained(source), source, tmp_path / "published")
    warm = fit(fast_config(TINY, tmp_path / "joint", [f"init_from={published}", "optim.lr=0.0"]))
    done = json.loads((warm / "train_done.json").read_text())
    assert done["init_from"]["checkpoint"] == str(published) and done["init_from"]["variant"] == "symmetric"
    a = torch.load(source / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    b = torch.load(warm / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    assert all(torch.equal(b[k], a[k].half().float()) for k in a)  # lr 0: exactly the float16 adapter


def test_a_serve_time_setting_can_be_set_at_publication_and_nothing_else(tmp_path, capsys):
    run = fit(fast_config(TINY, tmp_path))
    assert main(["export-adapter", str(run), str(tmp_path / "a"), "--serve", "model.cache_centre=vocab_mean"]) == 0
    _, cfg, _ = load_trained(tmp_path / "a")
    assert cfg.model.cache_centre == "vocab_mean" and cfg.trainer.max_steps == 2
    info = json.loads((tmp_path / "a" / "adapter_info.json").read_text())
    assert info["serve_overrides"] == ["model.cache_centre=vocab_mean"]
    assert "cache_centre: none" in (run / "config.yaml").read_text()  # the run itself is untouched
    assert main(["export-adapter", str(run), str(tmp_path / "b"), "--serve", "optim.lr=1.0"]) == 2
    assert "only serve-time settings" in capsys.readouterr().err and not (tmp_path / "b").exists()
