"""Paper vs ours: the paper's published numbers (``reports/paper_data``) beside ours, per table
(``main``, ``per_dataset``, ``ablations``, ``kl``, ``speed``), with the difference of each pair.

    from reports.paper_vs_ours import paper_vs_ours
    t = paper_vs_ours(results, "main", paper_backbone="Llama3.2-1b")   # None without data
"""
from __future__ import annotations

import ablations  # noqa: F401  (the variant catalog: registers every variant the tables name)
from lr_core.variants import variants_in
from reports import names, paper
from reports.collect import Results
from reports.table_model import (BASELINE_SETTINGS, MISSING, Cell, Column, Lookup, Row, Table, data_scope,
                                 finish_table, model_backbones, reference_of)


# ---------------------------------------------------------------- paper vs ours

PAPER_TABLES = ("main", "per_dataset", "ablations", "kl", "speed")


def _comparison_table(name: str, caption: str, labels: list[str], paper_header: str, ours_header: str = "Ours"):
    cols = [Column(paper_header, None), Column(ours_header, None), Column("Diff", None)]
    return Table(name, caption, labels, cols)


def _comparison_cells(p: float | None, ours: Cell, fmt: str = "pct") -> list[Cell]:
    pc = Cell(p, fmt, rank=False)
    oc = Cell(ours.value, fmt, rank=False, marks=ours.marks, std=ours.std, n=ours.n)
    diff = Cell(None if p is None or ours.value is None else ours.value - p, "delta", rank=False)
    return [pc, oc, diff]


def paper_vs_ours(results: Results, kind: str = "per_dataset",
                  paper_backbone: str = paper.DEFAULT_PAPER_BACKBONE) -> Table | None:
    """The paper's number, ours and ours - paper, row by row, for one of ``PAPER_TABLES``.

    Matching is explicit (``reports.paper``): methods by (our setting, representation), data sets
    by name, and every one of our backbones against the one ``paper_backbone``. A cell that one
    side lacks shows "-"; no row of ours is ever dropped. The paper reports Tables 1, 3-4 and 5
    only as benchmark averages, so those comparisons put the paper's average of the benchmark
    that holds our data set (e.g. the BEIR average for scifact) beside our number, and say so.
    Speed is compared as ratios (speed-up against speed-up), never as absolute times: the
    hardware differs.
    """
    if kind not in PAPER_TABLES:
        raise ValueError(f"unknown paper table {kind!r}; one of {PAPER_TABLES}")
    paper.check_backbone(paper_backbone)
    return {"main": _pvo_main, "per_dataset": _pvo_per_dataset, "ablations": _pvo_ablations,
            "kl": _pvo_kl, "speed": _pvo_speed}[kind](results, paper_backbone)


def _pvo_methods(results: Results, pb: str, methods: dict, name: str, caption: str) -> Table | None:
    look = Lookup(results)
    datasets = look.values("dataset")
    t = _comparison_table(name, caption + " " + data_scope(look, datasets), ["Backbone", "Method", "Data set"],
                          f"Paper ({pb})")
    unmatched = set()
    for setting in BASELINE_SETTINGS:  # baselines first, as in the paper
        for b in look.values("backbone", setting=setting):
            for rep in look.values("representation", setting=setting, backbone=b):
                method = methods.get((setting, rep))
                if method is None:
                    unmatched.add(names.method(setting, rep))
                for d in datasets:
                    p = paper.lookup_per_dataset(pb, method, d) if method else None
                    ours = look.cell(dataset=d, backbone=b, setting=setting, representation=rep)
                    t.rows.append(Row([names.backbone(b), method or names.method(setting, rep), names.dataset(d)],
                                      _comparison_cells(p, ours), "baselines"))
    for b in model_backbones(look):
        if not any(look.has(backbone=b, setting=s, representation=r) for s, r in methods):
            continue
        for (setting, rep), method in methods.items():
            if setting in BASELINE_SETTINGS:
                continue
            for d in datasets:
                p = paper.lookup_per_dataset(pb, _paper_method(method), d)
                ours = look.cell(dataset=d, backbone=b, setting=setting, representation=rep)
                t.rows.append(Row([names.backbone(b), method, names.dataset(d)], _comparison_cells(p, ours), b))
    if unmatched:
        t.notes.append("No counterpart in the paper: " + ", ".join(sorted(unmatched)) + ".")
    missing = sorted({names.dataset(d) for d in datasets if paper.dataset_name(d) is None})
    if missing:
        t.notes.append("Data sets the paper does not report: " + ", ".join(missing) + ".")
    return finish_table(t, look, results)


# Table 2 names its hybrid LightRetriever just "LightRetriever"; the per-data-set tables spell it out.
MAIN_METHODS = {("bm25", "bm25"): "BM25", ("symmetric", "symmetric"): "Full Symmetric",
                ("lightretriever", "hybrid"): "LightRetriever"}


def _paper_method(label: str) -> str:
    return "LightRetriever Hybrid" if label == "LightRetriever" else label


def _pvo_main(results: Results, pb: str) -> Table | None:
    return _pvo_methods(results, pb, MAIN_METHODS, "paper_vs_ours_main",
                        f"Paper vs ours, Table 2 methods: nDCG@10 x 100 per data set (paper: its Tables 9-11, "
                        f"backbone {pb}; Diff = ours - paper).")


def _pvo_per_dataset(results: Results, pb: str) -> Table | None:
    return _pvo_methods(results, pb, paper.PER_DATASET_METHODS, "paper_vs_ours_per_dataset",
                        f"Paper vs ours, Tables 9-11: nDCG@10 x 100 per data set (paper backbone {pb}; "
                        f"Diff = ours - paper).")


def _scope(dataset: str) -> tuple[str | None, str]:
    bench = paper.benchmark_of(dataset)
    return bench, (f"{bench} avg." if bench else MISSING)


def _pvo_ablations(results: Results, pb: str) -> Table | None:
    look = Lookup(results)
    datasets = look.values("dataset")
    t = _comparison_table("paper_vs_ours_ablations",
                          f"Paper vs ours, Tables 3-4 (A1-A3): nDCG@10 x 100 (paper backbone {pb}; the paper "
                          "reports benchmark averages only; Diff = ours - paper). " + data_scope(look, datasets),
                          ["Backbone", "Setting", "Repr.", "Data set", "Paper scope"], f"Paper ({pb})")
    for b in model_backbones(look):
        seen = []
        for v in variants_in("table3_4"):
            for rep in v.representations:
                ref = reference_of(v, rep)
                if look.has(backbone=b, setting=v.name, representation=rep):
                    seen += [k for k in (ref, (v.name, rep)) if k and k not in seen]
        for setting, rep in seen:
            p_key = paper.ABLATION_SETTINGS.get((setting, rep))
            for d in datasets:
                bench, scope = _scope(d)
                p = paper.lookup_ablation(pb, *p_key, bench) if bench and p_key else None
                ours = look.cell(dataset=d, backbone=b, setting=setting, representation=rep)
                t.rows.append(Row([names.backbone(b), names.variant(setting), names.representation(rep),
                                   names.dataset(d), scope], _comparison_cells(p, ours), b))
    t.notes.append("The paper reports A1 and A2 for Llama3.2-1b and A3 for Llama3.1-8b only.")
    return finish_table(t, look, results)


def _pvo_kl(results: Results, pb: str) -> Table | None:
    look = Lookup(results)
    datasets = look.values("dataset")
    t = _comparison_table("paper_vs_ours_kl",
                          f"Paper vs ours, Table 5 (KL alignment): nDCG@10 x 100 (paper backbone {pb}; the paper "
                          "reports benchmark averages only; Diff = ours - paper). " + data_scope(look, datasets),
                          ["Backbone", "KL", "Repr.", "Data set", "Paper scope"], f"Paper ({pb})")
    for b in model_backbones(look):
        if not look.has(backbone=b, setting="kl"):
            continue
        for rep in ("dense", "sparse", "hybrid"):
            if not any(look.has(backbone=b, setting=s, representation=rep) for s in paper.KL_SETTINGS):
                continue
            for setting, column in paper.KL_SETTINGS.items():
                for d in datasets:
                    bench, scope = _scope(d)
                    p = paper.lookup_kl(pb, column, rep, bench) if bench else None
                    ours = look.cell(dataset=d, backbone=b, setting=setting, representation=rep)
                    label = "with" if column == "with_kl" else "without"
                    t.rows.append(Row([names.backbone(b), label, names.representation(rep), names.dataset(d), scope],
                                      _comparison_cells(p, ours), b))
    t.notes.append("The paper reports the KL ablation for Llama3.1-8b only.")
    return finish_table(t, look, results)


PAPER_HARDWARE = "A800 GPU"  # the paper's Table 1 (reports/paper_data/README.md)


def _paper_speed_pairs() -> list[tuple[str, dict]]:
    """(paper backbone suffix, {"encode": full/light encode seconds, "qps": light/full QPS,
    "total": full/light total seconds}) for every backbone the paper's Table 1 times both ways."""
    t = paper.table1_speed().set_index("model")
    out = []
    for suffix in dict.fromkeys(m.split("-", 1)[1] for m in t.index):
        full, light = f"Full-{suffix}", f"LightRetriever-{suffix}"
        if full in t.index and light in t.index:
            f, li = t.loc[full], t.loc[light]
            out.append((suffix, {"encode": f["encode_s"] / li["encode_s"], "qps": li["qps"] / f["qps"],
                                 "total": f["total_s"] / li["total_s"]}))
    return out


def _our_speed_pairs(results: Results) -> list[tuple[str, str, dict]]:
    """(label, hardware, ratios) for every full / light-hybrid pair timed in one speed.json (or,
    for flat speed files, one full and one LightRetriever row)."""
    sp = results.speed
    if sp.empty:
        return []
    groups: dict[str, list] = {}
    for _, r in sp.iterrows():
        src = r["source"].rsplit(" (", 1)[0] if r["source"].endswith(")") else "flat speed files"
        kind = paper.speed_kind(r["variant"] if isinstance(r["variant"], str) else None,
                                r["representation"] if isinstance(r["representation"], str) else None)
        if kind:
            groups.setdefault(src, []).append((kind, r))
    out = []
    for src, rows in groups.items():
        for _, f in [x for x in rows if x[0] == "Full"]:
            for _, li in [x for x in rows if x[0] == "LightRetriever"]:
                ratios = {"encode": f["encode_s"] / li["encode_s"] if li["encode_s"] > 0 else None,
                          "qps": li["qps"] / f["qps"] if f["qps"] > 0 else None,
                          "total": f["total_s"] / li["total_s"] if li["total_s"] > 0 else None}
                hw = next((x for x in (li["device"], f["device"]) if isinstance(x, str)), "hardware not recorded")
                out.append((f"{f['model']} vs {li['model']}", hw, ratios))
    return out


SPEED_MEASURES = (("encode", "Encode speed-up (full / light encode s)"),
                  ("qps", "QPS ratio (light / full QPS)"))  # = the total-time ratio: the same queries


def _pvo_speed(results: Results, pb: str) -> Table | None:
    """Speed as ratios: the paper's speed-up against ours, each with its hardware named (the
    paper's absolute times are on another machine; Table 1 keeps absolute times)."""
    pairs = _paper_speed_pairs()
    ours = _our_speed_pairs(results)
    if not ours:
        return None
    cols = [Column(f"Paper {s} ({PAPER_HARDWARE})", None) for s, _ in pairs] + [Column("Ours", None)]
    t = Table("paper_vs_ours_speed", "Paper vs ours, Table 1 as ratios: query-encoding speed-up and QPS ratio of the "
              "light (hybrid) pipeline over the full LLM query encoder, the paper's (65,536 MS MARCO queries, "
              f"{PAPER_HARDWARE}) beside ours (hardware in the row).", ["Our pair", "Our hardware", "Measure"], cols)
    for label, hw, ratios in ours:
        for key, measure in SPEED_MEASURES:
            cells = [Cell(r[key], "ratio", rank=False) for _, r in pairs]
            cells.append(Cell(ratios[key], "ratio", rank=False))
            t.rows.append(Row([label, hw, measure], cells, label))
    t.notes.append(f"The paper times LightRetriever only for {', '.join(s for s, _ in pairs)} (its Table 1); "
                   f"--paper-backbone {pb} has no LightRetriever timing of its own, so every timed paper pair is shown.")
    return finish_table(t, None, results)
