"""Registry of model variants: name -> LightningModule class, description, paper table, and how
reports show it (display name, report table, representations reported).

A variant registers itself with :func:`register_variant`; configs select it by name
(``variant: lightretriever``) and ``lr variants`` lists them all.

Registration happens in one explicit place: importing the ``ablations`` package (the variant
catalog, ``ablations/__init__.py``) registers every variant, LightRetriever and the symmetric
baseline of :mod:`lr_core.modules` included. The core never imports it; the entry points do (the
CLI, ``reports``, the test suite's conftest), so this registry is filled before it is read.

Reports (``lr report``) build their tables from this registry, so a new variant appears in the
right table without editing ``reports/``:

    @register_variant("my_variant", "what changes", "Table 5: my change",
                      display="My change", table="table5", representations=("dense", "hybrid"),
                      reference=("lightretriever", None))
    class MyModule(LightRetrieverModule): ...

- ``display``: the one display name used by every table, figure and W&B summary.
- ``table``: the report table the variant belongs to (a key of ``REPORT_TABLES``), or None.
- ``representations``: the representations that table reports for it.
- ``reference``: (variant, representation) its rows are compared with (Delta columns and the
  significance test); representation None means "the same representation as the row".
- ``columns``: extra label columns of its row, e.g. the train / infer encoders of Tables 3-4.

Paper numbering (the paper's own, as in ``reports/paper_data/README.md``): Table 1 speed,
Table 2 main results, Tables 3-4 the symmetry ablations A1-A3, Table 5 the KL alignment ablation
reported per representation (dense / sparse / hybrid: the A4 breakdown), Tables 9-11 per data
set, Figure 5 representations, Figure 6 MRL and sparse top-k.

>>> sorted(v for v in list_variants())[:2]      # doctest: +SKIP
['a1_both_light', 'a2_embedding_query']
"""
from __future__ import annotations

from dataclasses import dataclass

from lr_core.errors import ConfigError

# report table key -> the paper's name for it (what `paper_table` must start with)
REPORT_TABLES = {"table2": "Table 2", "table3_4": "Tables 3-4", "table5": "Table 5", "figure6": "Figure 6"}
# Rows that are not trained variants (baselines): their display names.
BASELINES = {"bm25": "BM25", "untrained": "Untrained backbone"}
# How a variant's light dense queries are made at serve time (its class's ``query_side``):
# a vocabulary-cache lookup (servable without an LLM), or a network (A3's first layer).
QUERY_SIDES = ("cache", "network")


@dataclass(frozen=True)
class Variant:
    name: str
    cls: type
    description: str
    paper_table: str
    display: str = ""
    table: str | None = None
    representations: tuple[str, ...] = ()
    reference: tuple[str, str | None] | None = None
    columns: tuple[tuple[str, str], ...] = ()


_REGISTRY: dict[str, Variant] = {}


def register_variant(name: str, description: str, paper_table: str, *, display: str | None = None,
                     table: str | None = None, representations: tuple[str, ...] = (),
                     reference: tuple[str, str | None] | None = None, columns: dict[str, str] | None = None):
    """Class decorator adding a LightningModule to the registry under ``name`` (module docstring)."""
    if table is not None and table not in REPORT_TABLES:
        raise ValueError(f"variant {name!r}: unknown report table {table!r}; known: {', '.join(REPORT_TABLES)}")
    if table is not None and not paper_table.startswith(REPORT_TABLES[table]):
        raise ValueError(f"variant {name!r}: paper_table {paper_table!r} does not match table {table!r} "
                         f"({REPORT_TABLES[table]})")

    def wrap(cls):
        if getattr(cls, "query_side", "cache") not in QUERY_SIDES:
            raise ValueError(f"variant {name!r}: query_side must be one of {QUERY_SIDES}, got {cls.query_side!r}")
        if name in _REGISTRY and _REGISTRY[name].cls is not cls:
            raise ValueError(f"variant {name!r} is registered twice")
        _REGISTRY[name] = Variant(name, cls, description, paper_table, display or name, table,
                                  tuple(representations), reference, tuple((columns or {}).items()))
        cls.variant_name = name
        return cls

    return wrap


def unregister_variant(name: str) -> None:
    """Remove ``name`` (tests register throw-away variants)."""
    _REGISTRY.pop(name, None)


def list_variants() -> dict[str, Variant]:
    """Every registered variant by name (all of them once ``ablations`` is imported)."""
    return dict(sorted(_REGISTRY.items()))


def get_variant(name: str) -> Variant:
    variants = list_variants()
    if name not in variants:
        raise ConfigError(f"unknown variant {name!r}; known: {', '.join(variants)}"
                          + ("" if "lightretriever" in variants else " (import ablations: it registers every variant)"))
    return variants[name]


def variants_in(table: str) -> list[Variant]:
    """The variants registered for one report table, in registration order."""
    return [v for v in _REGISTRY.values() if v.table == table]


def display_name(variant: str) -> str:
    """The display name of a variant or baseline (the raw name when neither is known)."""
    if variant in BASELINES:
        return BASELINES[variant]
    v = list_variants().get(variant)
    return v.display if v else variant
