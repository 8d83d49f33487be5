"""The locked CPU recipe (experiments/lightretriever_scifact_cpu.yaml) is what the recipe search
chose: probe r2's resolved config plus the serve-time cache centre, and nothing else."""
from __future__ import annotations

import dataclasses

from lr_core.config import load_config

from tests.helpers import REPO

LOCKED = REPO / "experiments" / "lightretriever_scifact_cpu.yaml"
R2 = (REPO / "reports" / "results" / "2026-12-01-recipe-search" / "r2-centred-light-query" / "runs"
      / "variant-centred-light-query" / "config.yaml")
# what may differ: names and places, W&B bookkeeping, and the two centring keys (r2's variant
# `centred_light_query` is `lightretriever` with model.light_centre=learned)
ALLOWED = {"name", "run_dir", "variant", "wandb.enabled", "wandb.group", "wandb.tags"}


def _flat(d, prefix=""):
    out = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def test_locked_recipe_is_the_chosen_probe():
    locked = _flat(dataclasses.asdict(load_config(LOCKED)))
    r2 = _flat(dataclasses.asdict(load_config(R2)))
    differ = {k for k in locked.keys() | r2.keys() if locked.get(k) != r2.get(k)}
    assert differ - ALLOWED == {"model.light_centre", "model.cache_centre"}
    assert (locked["variant"], r2["variant"]) == ("lightretriever", "centred_light_query")
    assert locked["model.light_centre"] == "learned" and locked["model.cache_centre"] == "vocab_mean"


def test_the_findings_grid_trains_with_the_locked_recipe():
    from slurm.spec import load_spec

    for name in ("findings_cpu.yaml", "findings_cpu_seeds.yaml"):
        spec = load_spec(REPO / "experiments" / "sweeps" / name)
        assert spec.base_config.resolve() == LOCKED.resolve()
        assert spec.split is None  # the test split, once
        assert not any(o.split("=")[0].startswith(("model.", "loss.tau", "optim.", "data.")) for o in spec.overrides)
