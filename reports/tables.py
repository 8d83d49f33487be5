"""Report tables in the paper's layouts, each renderable as LaTeX (booktabs), Markdown and CSV.

    from reports.collect import collect
    from reports import tables
    results = collect(["runs/demo"])
    t = tables.table2_main(results)          # None when there is nothing to show
    print(t.to_markdown()); t.to_latex(); t.to_csv()
    tables.all_tables(results, paper_backbone="Llama3.2-1b")   # every table that has data

Rows come from the variant registry (``lr_core.variants``): a variant declares the report table
it belongs to (``table2``, ``table3_4``, ``table5``), the representations that table reports and
the (variant, representation) it is compared with, so a newly registered variant appears in its
table without editing ``reports/``. Tables 9-11 list every variant that has results. Names are
the registered display names (``reports.names``).

Table numbers are the paper's own (``reports/paper_data/README.md``): Table 1 speed, Table 2
main results, Tables 3-4 the symmetry ablations A1-A3 (file ``table3_4_ablations``), Table 5
the KL alignment loss per representation (dense / sparse / hybrid, the A4 breakdown; file
``table5_kl``), Tables 9-11 per data set.

Conventions (as in the paper): quality is nDCG@10 (and recall) x 100 with one decimal; the best
value of each column is bold (ties all bold); in Table 5 the bold compares the variants of one
row (with vs without KL), not the representations. Differences ("Gap", "Delta", "Diff") are
signed and never bold. A missing value is "-".

Several results in one cell: distinct seeds of one experiment show "mean +- std (n)" (sample
standard deviation over the n seeds); anything else (no seed recorded, a seed repeated, the same
key on two splits) shows the mean with a dagger, and a footnote lists each result's path and value.

Significance: where both sides of a comparison have per-query scores (``per_query.json.gz``),
a cell that differs from its reference at p < 0.05 (paired two-sided t-test on per-query
nDCG@10, Holm-corrected over every comparison in the table) is marked "*"; the note under the
table says how many comparisons were made and which had no per-query data (results written
before per-query scores were kept).

Only results at the default evaluation settings (no MRL prefix, no sparse top-k) enter Tables
2-5 and 9-11; the other settings are Figure 6's.
"""
from __future__ import annotations

import pandas as pd

import ablations  # noqa: F401  (the variant catalog: registers every variant the tables name)
from lr_core.variants import REPORT_TABLES, list_variants, variants_in
from reports import names, paper
from reports.collect import Results, speed_with_quality
from reports.paper_vs_ours import PAPER_TABLES, paper_vs_ours
from reports.table_model import (BASELINE_SETTINGS, DAGGER, DDAGGER, DEFAULT_BASELINE, DELTA, MISSING, QUALITY,
                                 REP_ORDER, Cell, Column, Lookup, Row, Table, Tests, data_scope, delta_cell,
                                 finish_table, model_backbones, reference_of)
from reports.training_logs import CE_TERMS, LAST_STEPS, TERM_NAMES


# ---------------------------------------------------------------- the paper's layouts

def table1_speed(results: Results) -> Table | None:
    """Table 1 layout: seconds to tokenize / encode / search and in total, queries per second, and
    nDCG@10 when known (from the speed.json, or the ledger's matching result)."""
    sp = speed_with_quality(results)
    with_ndcg = not sp.empty and sp["ndcg@10"].notna().any()
    cols = [Column("Queries", best=None), Column("Tokenize (s)", "min"), Column("Encode (s)", "min"),
            Column("Search (s)", "min"), Column("Total (s)", "min"), Column("QPS", "max")]
    cols += [Column("nDCG@10", "max")] if with_ndcg else []
    sets = sorted({names.dataset(d) for d in sp["dataset"].dropna()}) if not sp.empty else []
    t = Table("table1_speed", "Table 1 (our hardware): query-side speed, seconds for all queries "
              "(QPS = queries / total seconds)" + (f"; queries of {', '.join(sets)}" if sets else "")
              + ". Hardware in the Device column; the paper's Table 1 is on an A800 GPU.", ["Model", "Device"], cols)
    counts = sp["model"].value_counts() if not sp.empty else {}
    for _, r in sp.iterrows():
        mark = DAGGER if counts[r["model"]] > 1 else ""
        cells = [Cell(r["num_queries"], "int", rank=False)] + [Cell(r[k], "sec") for k in
                                                             ("tokenize_s", "encode_s", "search_s", "total_s")]
        cells.append(Cell(r["qps"], "qps"))
        if with_ndcg:
            cells.append(Cell(None if pd.isna(r["ndcg@10"]) else 100 * r["ndcg@10"]))
        cells[-1].marks = mark
        t.rows.append(Row([r["model"], r["device"] if isinstance(r["device"], str) else MISSING], cells))
    dups = sorted({r["model"] for _, r in sp.iterrows() if counts[r["model"]] > 1}) if not sp.empty else []
    for m in dups:
        srcs = ", ".join(sp.loc[sp["model"] == m, "source"])
        t.notes.append(f"{DAGGER} {m} was timed more than once; every timing is shown: {srcs}.")
    return finish_table(t, None, results)


def _baseline_rows(look: Lookup, cell_fn) -> list[Row]:
    rows = []
    for setting in BASELINE_SETTINGS:
        for backbone in look.values("backbone", setting=setting):
            for rep in look.values("representation", setting=setting, backbone=backbone):
                rows.append(Row([names.backbone(backbone), names.method(setting, rep)],
                                cell_fn(setting=setting, backbone=backbone, representation=rep), "baselines"))
    return rows


def table2_main(results: Results) -> Table | None:
    """Table 2 layout: per backbone, the registered Table 2 variants (full symmetric,
    LightRetriever hybrid, ...) after the baselines, and each one's gap to its reference;
    nDCG@10 and recall@20/50/100 per data set."""
    look = Lookup(results)
    datasets = look.values("dataset")
    cols = [Column(h, "max", group=names.dataset(d)) for d in datasets for _, h in QUALITY]
    tests = Tests("its reference row (the Gap row names it)")

    def cells(**key) -> list[Cell]:
        return [look.cell(m, dataset=d, **key) for d in datasets for m, _ in QUALITY]

    t = Table("table2_main", "Table 2: full symmetric vs LightRetriever (hybrid retrieval) and the other Table 2 "
              "variants per backbone, with baselines; nDCG@10 and recall x 100. " + data_scope(look, datasets),
              ["Backbone", "Method"], cols)
    t.rows += _baseline_rows(look, cells)
    members = variants_in("table2")
    for b in model_backbones(look):
        shown = {}
        for v in members:
            for rep in v.representations:
                if look.has(backbone=b, setting=v.name, representation=rep):
                    shown[(v.name, rep)] = cells(backbone=b, setting=v.name, representation=rep)
        if not shown:
            continue
        for v in members:
            for rep in v.representations:
                if (v.name, rep) not in shown:
                    continue
                own = shown[(v.name, rep)]
                t.rows.append(Row([names.backbone(b), names.method(v.name, rep, short=len(v.representations) == 1)],
                                  own, b))
                ref = reference_of(v, rep)
                if ref is None or not look.has(backbone=b, setting=ref[0], representation=ref[1]):
                    continue
                ref_cells = cells(backbone=b, setting=ref[0], representation=ref[1])
                for k, (c, rc) in enumerate(zip(own, ref_cells)):
                    if QUALITY[k % len(QUALITY)][0] == "ndcg@10":  # the test is on nDCG@10
                        tests.compare(c, rc)
                t.rows.append(Row([names.backbone(b), f"Gap ({v.display} - {names.variant(ref[0])})"],
                                  [delta_cell(x, y) for x, y in zip(own, ref_cells)], b))
    return finish_table(t, look, results, tests)


def _label_columns(members) -> list[str]:
    cols = []
    for v in members:
        for k, _ in v.columns:
            if k not in cols:
                cols.append(k)
    return cols


def table3_4_ablations(results: Results) -> Table | None:
    """Tables 3-4 layout: the registered ablations (A1-A3) with their difference to their
    reference (LightRetriever, the representation each declares). A1 is every ``light_both``
    result (variant a1_both_light, or a LightRetriever run evaluated so)."""
    look = Lookup(results)
    datasets = look.values("dataset")
    members = variants_in("table3_4")
    registry = list_variants()
    refs = {r[0] for v in members for r in [v.reference] if r}
    extra = _label_columns([*members, *(registry[r] for r in refs if r in registry)])
    cols = []
    for d in datasets:
        cols += [Column("nDCG@10", "max", group=names.dataset(d)), Column(DELTA, None, group=names.dataset(d))]
    tests = Tests("its LightRetriever reference row")
    t = Table("table3_4_ablations", f"Tables 3-4: symmetry ablations A1-A3, nDCG@10 x 100 and {DELTA} to the "
              "reference row above them (Emb = cached token embeddings, 1L-Trans = first transformer layer "
              "only). " + data_scope(look, datasets),
              ["Backbone", "Setting", *extra, "Repr."], cols)

    def labels(name: str, rep: str, b: str) -> list[str]:
        v = registry.get(name)
        given = dict(v.columns) if v else {}
        return [names.backbone(b), names.variant(name), *(given.get(k, MISSING) for k in extra),
                names.representation(rep)]

    for b in model_backbones(look):
        blocks: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for v in members:
            for rep in v.representations:
                ref = reference_of(v, rep)
                if ref and look.has(backbone=b, setting=v.name, representation=rep):
                    blocks.setdefault(ref, []).append((v.name, rep))
        for ref, rows in blocks.items():
            ref_cells = [look.cell(dataset=d, backbone=b, setting=ref[0], representation=ref[1]) for d in datasets]
            t.rows.append(Row(labels(*ref, b), [c for rc in ref_cells for c in (rc, Cell(None, "delta", rank=False))],
                              b))
            for name, rep in rows:
                row_cells = []
                for d, rc in zip(datasets, ref_cells):
                    c = look.cell(dataset=d, backbone=b, setting=name, representation=rep)
                    tests.compare(c, rc)
                    row_cells += [c, delta_cell(c, rc)]
                t.rows.append(Row(labels(name, rep, b), row_cells, b))
    return finish_table(t, look, results, tests)


def table5_kl(results: Results) -> Table | None:
    """Table 5 layout: per representation (dense / sparse / hybrid: the A4 breakdown), the
    reference (LightRetriever, i.e. without KL) and every registered Table 5 variant (with KL,
    ...) with its {DELTA} to the reference. Bold compares the variants within one row."""
    look = Lookup(results)
    datasets = look.values("dataset")
    members = [v for v in variants_in("table5") if look.has(setting=v.name)]
    if not members:
        return None
    ref_names = list(dict.fromkeys(v.reference[0] for v in members if v.reference))
    reps = sorted({r for v in members for r in v.representations}, key=lambda r: REP_ORDER.get(r, 99))
    cols = []
    for d in datasets:
        g = names.dataset(d)
        cols += [Column(names.variant(r), "row", group=g) for r in ref_names]
        for v in members:
            cols += [Column(v.display, "row", group=g), Column(DELTA, None, group=g)]
    tests = Tests("the reference (" + ", ".join(names.variant(r) for r in ref_names) + ") in the same row")
    t = Table("table5_kl", f"Table 5: with / without the KL alignment loss per representation (the A4 breakdown), "
              f"nDCG@10 x 100 ({DELTA} = variant - {', '.join(names.variant(r) for r in ref_names)}; bold: the best "
              "of each row and data set). " + data_scope(look, datasets), ["Backbone", "Repr."], cols)
    for b in model_backbones(look):
        for rep in reps:
            keys = [(r, rep) for r in ref_names] + [(v.name, rep) for v in members]
            if not any(look.has(backbone=b, setting=s, representation=rr) for s, rr in keys):
                continue
            cells = []
            for d in datasets:
                ref_cells = {r: look.cell(dataset=d, backbone=b, setting=r, representation=rep) for r in ref_names}
                cells += list(ref_cells.values())
                for v in members:
                    c = look.cell(dataset=d, backbone=b, setting=v.name, representation=rep)
                    rc = ref_cells.get(reference_of(v, rep)[0]) if v.reference else None
                    if rc is not None:
                        tests.compare(c, rc)
                    cells += [c, delta_cell(c, rc) if rc is not None else Cell(None, "delta", rank=False)]
            t.rows.append(Row([names.backbone(b), names.representation(rep)], cells, b))
    return finish_table(t, look, results, tests)


def _variant_order(look: Lookup, backbone: str) -> list[tuple[str, str]]:
    """Every (variant, representation) with results for ``backbone``: registered variants in
    registry order (Table 2 first), then any others by name; representations in evaluation order."""
    registry = list_variants()
    ranked = [v.name for t in REPORT_TABLES for v in variants_in(t)] + sorted(registry)
    order = {name: i for i, name in reversed(list(enumerate(ranked)))}  # first place wins
    present = {(r["setting"], r["representation"]) for r in look.select(backbone=backbone)
               if r["setting"] not in BASELINE_SETTINGS}
    return sorted(present, key=lambda k: (order.get(k[0], len(order)), k[0], REP_ORDER.get(k[1], 99), k[1]))


def table9_11_per_dataset(results: Results, baseline: tuple[str, str] = DEFAULT_BASELINE) -> Table | None:
    """Tables 9-11 layout: nDCG@10 per data set (and their mean when there are several) for the
    baselines and, per backbone, every variant and representation with results; each tested
    against ``baseline`` (variant, representation) of the same backbone."""
    look = Lookup(results)
    datasets = look.values("dataset")
    avg = len(datasets) > 1
    cols = [Column(names.dataset(d), "max") for d in datasets] + ([Column("Avg", "max")] if avg else [])

    def cells(**key) -> list[Cell]:
        cs = [look.cell(dataset=d, **key) for d in datasets]
        if avg:  # a mean over fewer data sets would not be comparable with the other rows
            complete = all(c.value is not None for c in cs)
            cs.append(Cell(sum(c.value for c in cs) / len(cs) if complete else None))
        return cs

    base_text = names.method(*baseline)
    tests = Tests(f"{base_text} of the same backbone (--baseline)")
    t = Table("table9_11_per_dataset", "Tables 9-11: nDCG@10 x 100 per data set, every variant and representation "
              "with results. " + data_scope(look, datasets), ["Backbone", "Method"], cols)
    t.rows += _baseline_rows(look, cells)
    for b in model_backbones(look):
        base = [look.cell(dataset=d, backbone=b, setting=baseline[0], representation=baseline[1]) for d in datasets]
        for setting, rep in _variant_order(look, b):
            row = cells(backbone=b, setting=setting, representation=rep)
            if (setting, rep) != tuple(baseline):
                for c, rc in zip(row, base):
                    tests.compare(c, rc)
            t.rows.append(Row([names.backbone(b), names.method(setting, rep)], row, b))
    if avg:
        t.notes.append("Avg is the mean over all data sets shown; it is missing for a row without all of them.")
    return finish_table(t, look, results, tests)


# ---------------------------------------------------------------- training

def training_losses(results: Results) -> Table | None:
    """Where each trained run's contrastive losses ended: the mean over its last ``LAST_STEPS`` logged
    steps, beside ln N (a uniform guess over the batch's N documents; reports.training_logs)."""
    logs = results.logs
    if logs.empty:
        return None
    terms = [t for t in CE_TERMS if t in set(logs["term"])]
    t = Table("training_losses", f"Training: each contrastive loss averaged over the last {LAST_STEPS} logged "
              "steps, beside ln N, the loss of a uniform guess over the batch's N documents. A loss at or above "
              "ln N has not learned to rank; the figure of learning curves shows the whole runs.",
              ["Model", "Seed", "Run"], [Column("Steps", best=None), Column("ln N", best=None)]
              + [Column(TERM_NAMES[term], best=None) for term in terms])
    # the method and its reference first, then the variants in the registry's order
    order = {v: i for i, v in enumerate(dict.fromkeys(["lightretriever", "symmetric", *list_variants()]))}
    summed = set()
    runs = logs.groupby("source", sort=False)
    for source, df in sorted(runs, key=lambda kv: (order.get(kv[1]["variant"].iloc[0], len(order)),
                                                    str(kv[1]["seed"].iloc[0]), kv[0])):
        last, base = df["step"].max(), float(df["uniform"].min())
        cells = [Cell(last + 1, "int", rank=False), Cell(base, "loss", rank=False)]
        for term in terms:
            rows = df[(df["term"] == term) & (df["step"] > last - LAST_STEPS)]
            cell = Cell(float(rows["value"].mean()) if len(rows) else None, "loss", rank=False)
            if len(rows) and rows["uniform"].iloc[0] > base:
                cell.marks = DDAGGER
                summed.add(f"{df['run'].iloc[0]} {TERM_NAMES[term]}: {rows['uniform'].iloc[0] / base:.0f} ln N = "
                           f"{rows['uniform'].iloc[0]:.2f}")  # e.g. "variant-mrl full dense: 2 ln N = 5.55"
            cells.append(cell)
        seed = df["seed"].iloc[0]
        t.rows.append(Row([names.variant(df["variant"].iloc[0]), MISSING if pd.isna(seed) else str(seed),
                           df["run"].iloc[0]], cells))
    t.notes.append("Steps: the last logged step + 1 (a run still training shows how far it got). "
                   "full dense: the full LLM query path; light dense / light sparse: LightRetriever's query paths.")
    if summed:
        t.notes.append(f"{DDAGGER} a sum of one CE per MRL prefix width; a uniform guess scores "
                       + "; ".join(sorted(summed)) + ".")
    return finish_table(t, None, results)


# ---------------------------------------------------------------- everything

def all_tables(results: Results, paper_backbone: str = paper.DEFAULT_PAPER_BACKBONE,
               baseline: tuple[str, str] = DEFAULT_BASELINE) -> list[Table]:
    """Every table that has at least one row, in the report's order."""
    built = [table1_speed(results), table2_main(results), table3_4_ablations(results), table5_kl(results),
             table9_11_per_dataset(results, baseline)]
    built += [paper_vs_ours(results, k, paper_backbone) for k in PAPER_TABLES]
    built.append(training_losses(results))
    return [t for t in built if t is not None]


TABLE_NAMES = ("table1_speed", "table2_main", "table3_4_ablations", "table5_kl", "table9_11_per_dataset",
               *(f"paper_vs_ours_{k}" for k in PAPER_TABLES), "training_losses")
# File stems of earlier reports (before the paper's Tables 3-4 numbering); removed when a report is rewritten.
OLD_TABLE_NAMES = ("table4_ablations",)
