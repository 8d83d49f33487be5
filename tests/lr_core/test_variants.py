"""lr_core.variants: what each variant declares for reports (display name, report table,
representations, reference), checked for consistency with the paper's numbering everywhere."""
from __future__ import annotations

import re

import pytest

from lr_core.retrieval.evaluate import REPRESENTATIONS
from lr_core.variants import (BASELINES, REPORT_TABLES, display_name, list_variants, register_variant,
                              unregister_variant, variants_in)

from tests.helpers import REPO


def test_every_variant_declares_a_display_name_and_a_consistent_table():
    variants = list_variants()
    displays = [v.display for v in variants.values()]
    assert len(set(displays)) == len(displays) and all(d and d != v for d, v in zip(displays, variants))
    for v in variants.values():
        assert v.table in REPORT_TABLES, v.name
        assert v.paper_table.startswith(REPORT_TABLES[v.table]), v.name
        assert v.representations and set(v.representations) <= set(REPRESENTATIONS), v.name
        if v.reference:
            assert v.reference[0] in variants and (v.reference[1] is None or v.reference[1] in REPRESENTATIONS)


def test_the_paper_numbering():
    """Tables 3-4: A1-A3; Table 5: KL per representation, the A4 breakdown (reports/paper_data/README.md)."""
    assert [v.name for v in variants_in("table3_4")] == ["a1_both_light", "a2_embedding_query", "a3_one_layer_query"]
    # A4 is no variant: Table 5 reports LightRetriever's own dense / sparse / hybrid rows as the reference
    assert {v.name for v in variants_in("table5")} == {"kl"}
    assert {v.name for v in variants_in("table2")} == {"symmetric", "symmetric_sparse", "lightretriever", "centred_light_query"}
    readme = (REPO / "reports" / "paper_data" / "README.md").read_text()
    assert "| paper_table4_ablations.csv | Tables 3-4 |" in readme and "| paper_table5_kl.csv | Table 5 |" in readme


def test_readme_variant_table_matches_the_registry():
    rows = re.findall(r"^\| `(\w+)` \|.*\| ([^|]+) \|$", (REPO / "README.md").read_text(), flags=re.M)
    listed = {name: paper.strip() for name, paper in rows if name in list_variants()}
    assert set(listed) == set(list_variants())
    for name, paper in listed.items():
        assert paper.startswith(REPORT_TABLES[list_variants()[name].table]), (name, paper)


def test_display_names_and_bad_declarations():
    assert display_name("a1_both_light") == "A1 both-side light" and display_name("bm25") == BASELINES["bm25"]
    assert display_name("never_registered") == "never_registered"
    with pytest.raises(ValueError, match="unknown report table 'table4'"):
        register_variant("x", "d", "Table 4: x", table="table4")
    with pytest.raises(ValueError, match="does not match table 'table5'"):
        register_variant("x", "d", "Table 4: KL", table="table5")

    @register_variant("zz_tmp", "d", "Table 5: tmp", display="Temporary", table="table5", representations=("dense",))
    class Tmp:
        pass

    try:
        assert display_name("zz_tmp") == "Temporary" and "zz_tmp" in [v.name for v in variants_in("table5")]
    finally:
        unregister_variant("zz_tmp")
    assert "zz_tmp" not in list_variants()


# --------------------------------------------------------------------------- the variant contract


def test_every_variant_declares_its_query_side_and_the_special_paths():
    from lr_core.variants import QUERY_SIDES

    variants = list_variants()
    sides = {name: v.cls.query_side for name, v in variants.items()}
    assert set(sides.values()) <= set(QUERY_SIDES)
    # A3 is the one variant whose dense queries need a network at serve time, and it says how deep
    assert [n for n, s in sides.items() if s == "network"] == ["a3_one_layer_query"]
    assert variants["a3_one_layer_query"].cls.query_layers == 1
    assert all(v.cls.query_layers is None for n, v in variants.items() if sides[n] == "cache")
    # MRL is the one variant evaluated at smaller widths too
    assert [n for n, v in variants.items() if v.cls.eval_at_widths] == ["mrl"]
    assert "a4_breakdown" not in variants  # Table 5 reports LightRetriever's own rows; no copy of it


def test_a_bad_query_side_is_refused_at_registration():
    class Odd:
        query_side = "magic"

    with pytest.raises(ValueError, match="query_side must be one of"):
        register_variant("zz_odd", "d", "Table 2: odd")(Odd)
    assert "zz_odd" not in list_variants()


def test_the_core_registry_holds_only_what_was_imported():
    """lr_core.variants imports no provider: the catalog (ablations) fills it, here via tests/conftest.py."""
    import ast

    import lr_core.variants as registry

    tree = ast.parse(open(registry.__file__).read())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not {m for m in imported if m and (m.startswith("ablations") or m == "importlib")}
    assert {"lightretriever", "symmetric", "kl", "mrl"} <= set(list_variants())
