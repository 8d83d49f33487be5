"""Experiment configs (YAML), sweep specs (``sweeps/``), benchmark scripts (``benchmarks/``, run by
``lr bench``), paper-scale configs (``paper/``) and analyses (``analysis/``).

The configs are files next to this module; :data:`DEMO_CONFIGS` names the two that ``lr demo``
trains, so the library never looks them up by a path relative to the repository.
"""
from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent
# `lr demo`'s trained rows: label -> experiment config
DEMO_CONFIGS = {"lightretriever": CONFIG_DIR / "lightretriever_scifact.yaml",
                "symmetric": CONFIG_DIR / "symmetric_scifact.yaml"}
