"""Experiment configs (YAML), sweep specs (``sweeps/``), benchmark scripts (``benchmarks/``, run by
``lr bench``), paper-scale configs (``paper/``) and analyses (``analysis/``).

The configs are files next to this module; :data:`DEMO_CONFIGS` names the two that ``lr demo --train``
trains and :data:`DEMO_ADAPTERS` the two published adapters that ``lr demo`` scores, so the library
never looks them up by a path relative to the repository.
"""
from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent
# `lr demo`'s trained rows: label -> experiment config
DEMO_CONFIGS = {"lightretriever": CONFIG_DIR / "lightretriever_scifact.yaml",
                "symmetric": CONFIG_DIR / "symmetric_scifact.yaml"}
# `lr demo`'s published rows: label -> adapter directory (lr_core.adapters), committed with their
# results. Both come from the recipe search (300 steps, SciFact train minus the validation queries):
# the locked CPU recipe's LightRetriever (probe r2, published with its serve-time cache centre) and
# the symmetric baseline of the same budget (probe r1).
RECIPE_SEARCH = CONFIG_DIR.parent / "reports" / "results" / "2026-12-01-recipe-search"
DEMO_ADAPTERS = {"lightretriever": RECIPE_SEARCH / "r2-centred-light-query" / "adapters" / "lightretriever",
                 "symmetric": RECIPE_SEARCH / "r1-flops-after-plateau" / "adapters" / "symmetric"}
