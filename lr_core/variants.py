"""Registry of model variants: name -> LightningModule class, description, paper table.

A variant registers itself with :func:`register_variant`; configs select it by name
(``variant: lightretriever``) and ``lr variants`` lists them all.

>>> sorted(v for v in list_variants())[:2]      # doctest: +SKIP
['lightretriever', 'symmetric']
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass

from lr_core.errors import ConfigError


@dataclass(frozen=True)
class Variant:
    name: str
    cls: type
    description: str
    paper_table: str


_REGISTRY: dict[str, Variant] = {}
# Modules whose import registers variants; ablations live outside lr_core.
_PROVIDERS = ("lr_core.modules", "ablations")


def register_variant(name: str, description: str, paper_table: str):
    """Class decorator adding a LightningModule to the registry under ``name``."""

    def wrap(cls):
        if name in _REGISTRY and _REGISTRY[name].cls is not cls:
            raise ValueError(f"variant {name!r} is registered twice")
        _REGISTRY[name] = Variant(name, cls, description, paper_table)
        cls.variant_name = name
        return cls

    return wrap


def _load_providers() -> None:
    for mod in _PROVIDERS:
        importlib.import_module(mod)


def list_variants() -> dict[str, Variant]:
    _load_providers()
    return dict(sorted(_REGISTRY.items()))


def get_variant(name: str) -> Variant:
    variants = list_variants()
    if name not in variants:
        raise ConfigError(f"unknown variant {name!r}; known: {', '.join(variants)}")
    return variants[name]
