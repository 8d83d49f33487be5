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
# results. Both come from the findings grid (seed 42, 300 steps, SciFact train minus the validation
# queries): LightRetriever trained with the locked CPU recipe (published with its serve-time cache
# centre) and the standalone symmetric model of the same budget (`lr demo --standalone-symmetric`).
FINDINGS_ADAPTERS = CONFIG_DIR.parent / "reports" / "results" / "2026-12-02-findings-cpu" / "adapters"
DEMO_ADAPTERS = {"lightretriever": FINDINGS_ADAPTERS / "variant-lightretriever",
                 "symmetric": FINDINGS_ADAPTERS / "variant-symmetric"}
