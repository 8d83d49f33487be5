"""Display names for reports, read from where each thing is registered (never spelled here):

- variants and baselines: ``lr_core.variants`` (``register_variant(..., display=...)``, ``BASELINES``)
- representations: ``lr_core.retrieval.evaluate.REPRESENTATION_NAMES``
- backbones: ``lr_core.backbone.BACKBONE_DISPLAY``
- data sets: ``lr_core.retrieval.tasks`` (``Task.display_name``)

    from reports import names
    names.variant("a1_both_light"), names.dataset("scifact"), names.method("lightretriever", "hybrid")
    # ('A1 both-side light', 'SciFact', 'LightRetriever (Hybrid)')

An unknown name prints as it is, so a result of a variant registered nowhere still shows.
"""
from __future__ import annotations

import ablations  # noqa: F401  (the variant catalog: registers every variant the tables name)
from lr_core.backbone import backbone_display
from lr_core.retrieval.tasks import display_name as _dataset_display
from lr_core.retrieval.evaluate import REPRESENTATION_NAMES
from lr_core.variants import display_name as _variant_display


def variant(name: str) -> str:
    return _variant_display(name)


def representation(name: str) -> str:
    return REPRESENTATION_NAMES.get(name, name)


def backbone(name: str) -> str:
    return "" if name == "bm25" else backbone_display(name)


def dataset(name: str) -> str:
    return _dataset_display(name)


def method(setting: str, rep: str, short: bool = False) -> str:
    """A row label: BM25; the variant alone (``short``: the representation is the table's only
    one for it); else "<variant> (<representation>)"."""
    if setting == "bm25":
        return "BM25"
    return variant(setting) if short else f"{variant(setting)} ({representation(rep)})"
