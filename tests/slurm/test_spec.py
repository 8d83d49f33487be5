"""slurm.spec: every shipped sweep spec expands and validates; extends; bad settings fail before anything runs.
"""
from __future__ import annotations

import pytest
import yaml

from slurm import spec as sweep_spec
from lr_core.errors import ConfigError
from lr_core.variants import list_variants

from tests.helpers import PAPER_SPEC, REPO, SWEEP_SMALL, write_spec


# Specs whose evaluation sets are downloaded by the user (not in the offline data): tested below with stand-ins.
@pytest.mark.parametrize("path", sorted(p for p in (REPO / "experiments" / "sweeps").glob("**/*.yaml") if p != PAPER_SPEC),
                         ids=lambda p: str(p.relative_to(REPO / "experiments" / "sweeps")))
def test_every_sweep_spec_in_the_repository_is_valid(path, shared_data, monkeypatch):
    """Each shipped spec expands and validates (variants, override keys, data sets, speed runs)."""
    monkeypatch.setenv("LR_DATA_DIR", str(shared_data))
    spec = sweep_spec.load_spec(path)
    runs = sweep_spec.expand(spec)
    sweep_spec.validate(spec, runs, check_partition=False)
    assert len(runs) >= 1
    for run in runs:
        cfg = sweep_spec.run_config(spec, run)
        assert cfg.variant in sweep_spec.BASELINES or cfg.variant in list_variants()


def test_a_spec_extends_another(tiny_beir, tmp_path):
    """``extends`` inherits everything but name and out; overrides merge by key."""
    sub = tmp_path / "base"
    sub.mkdir()
    base = write_spec(sub / "base.yaml", "base", {"variant": ["symmetric"]}, [*SWEEP_SMALL, "trainer.max_steps=40"],
                      tiny_beir, evaluate={"mrl_dims": [16]})
    raw = yaml.safe_load(base.read_text())
    raw["base_config"] = "../tiny.yaml"  # relative to base.yaml: must stay so when inherited
    (tmp_path / "tiny.yaml").write_text((REPO / "experiments" / "tiny.yaml").read_text())
    base.write_text(yaml.safe_dump(raw))
    child = tmp_path / "child.yaml"
    child.write_text(yaml.safe_dump({"extends": "base/base.yaml", "name": "child", "out": str(tmp_path / "c"),
                                     "overrides": ["trainer.max_steps=300", "loss.flops_warmup_steps=100"]}))
    spec = sweep_spec.load_spec(child)
    assert spec.name == "child" and spec.out == tmp_path / "c"
    assert spec.base_config.resolve() == (tmp_path / "tiny.yaml").resolve()
    assert spec.overrides == [*SWEEP_SMALL, "trainer.max_steps=300", "loss.flops_warmup_steps=100"]
    assert spec.mrl_dims == [16] and spec.datasets == ["scifact"] and spec.slurm.partition == "debug"
    # a child without its own name is refused (it would share the parent's runs)
    child.write_text(yaml.safe_dump({"extends": "base/base.yaml"}))
    with pytest.raises(ConfigError, match="name"):
        sweep_spec.load_spec(child)
    child.write_text(yaml.safe_dump({"extends": "missing.yaml", "name": "x"}))
    with pytest.raises(ConfigError, match="extends: missing.yaml not found"):
        sweep_spec.load_spec(child)
    child.write_text(yaml.safe_dump({"extends": "child.yaml", "name": "x"}))
    with pytest.raises(ConfigError, match="cycle"):
        sweep_spec.load_spec(child)


def test_evaluate_sparse_top_k_reaches_the_plan_and_the_manifest(tmp_path):
    """``evaluate.sparse_top_k``: document top-k cuts every run's plan carries (the pipeline applies
    them to runs evaluated as sparse / hybrid); absent, none."""
    import json

    path = write_spec(tmp_path / "k.yaml", "k", {"variant": ["lightretriever", "symmetric"]}, SWEEP_SMALL, tmp_path,
                      evaluate={"sparse_top_k": [64, 16]})
    spec = sweep_spec.load_spec(path)
    assert spec.sparse_top_ks == [64, 16]
    assert spec.eval_plan("lightretriever").sparse_top_ks == spec.eval_plan("symmetric").sparse_top_ks == (64, 16)
    manifest = json.loads(sweep_spec.write_manifest(spec, sweep_spec.expand(spec)).read_text())
    assert manifest["sparse_top_k"] == [64, 16]
    plain = sweep_spec.load_spec(write_spec(tmp_path / "p.yaml", "p", {"variant": ["lightretriever"]}, [], tmp_path))
    assert plain.sparse_top_ks == [] and plain.eval_plan("lightretriever").sparse_top_ks == ()


@pytest.mark.parametrize("value", [0, 8, [0], [-4], [4.0], ["16"], [True], [8, 8], {"k": 8}])
def test_a_bad_evaluate_sparse_top_k_is_a_one_line_error(tmp_path, value):
    path = write_spec(tmp_path / "k.yaml", "k", {"variant": ["lightretriever"]}, [], tmp_path,
                      evaluate={"sparse_top_k": value})
    with pytest.raises(ConfigError, match=r"evaluate\.sparse_top_k: (a list of positive integers|repeats)") as exc:
        sweep_spec.load_spec(path)
    assert str(exc.value).startswith(f"{path}: ") and "\n" not in str(exc.value)
