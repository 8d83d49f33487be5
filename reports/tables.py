"""Report tables in the paper's layouts, each renderable as LaTeX (booktabs), Markdown and CSV.

    from reports.collect import collect
    from reports import tables
    results = collect(["runs/demo"])
    t = tables.table2_main(results)          # None when there is nothing to show
    print(t.to_markdown()); t.to_latex(); t.to_csv()
    tables.all_tables(results, paper_backbone="Llama3.2-1b")   # every table that has data

Conventions (as in the paper): quality is nDCG@10 (and recall) x 100 with one decimal; the best
value of each column is bold (ties all bold); differences ("Gap", "Delta", "Diff") are signed and
never bold, and comparison tables (paper vs ours) bold nothing. A missing value is "-". A cell
made of several results (seeds of one experiment, or the same key evaluated twice, e.g. on two
splits) shows their mean, marked with a dagger that a footnote explains (each result's path and
value). Files skipped while collecting are repeated in a
footnote of every table, so a table can never look complete when it is not.

Only results at the default evaluation settings (no MRL prefix, no sparse top-k) enter Tables
2, 4, 5 and 9-11; the other settings are Figure 6's.
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field

import pandas as pd

from reports import paper
from reports.collect import Results, speed_with_quality

DAGGER = "\N{DAGGER}"
DELTA = "\N{GREEK CAPITAL LETTER DELTA}"
MISSING = "-"
QUALITY = (("ndcg@10", "nDCG@10"), ("recall@20", "R@20"), ("recall@50", "R@50"), ("recall@100", "R@100"))
BASELINE_SETTINGS = ("bm25", "untrained")
KEY_ORDER = ("dataset", "backbone", "setting", "representation")  # how a cell's key reads in a footnote


# ---------------------------------------------------------------- the table model

@dataclass
class Cell:
    """One number in display units (percent, seconds, queries/s); ``None`` is missing."""

    value: float | None
    fmt: str = "pct"      # pct: 1 decimal; delta: signed 1 decimal; sec: 4 decimals; qps; int
    rank: bool = True     # competes for the column's best (differences and references do not)
    marks: str = ""       # footnote markers

    def text(self) -> str:
        if self.value is None:
            return MISSING
        v = self.value
        if self.fmt == "pct":
            return f"{v:.1f}"
        if self.fmt == "delta":
            r = round(v, 1)
            return f"{(r if r != 0 else 0.0):+.1f}"  # never "-0.0"
        if self.fmt == "sec":
            return f"{v:.4f}"
        if self.fmt == "qps":
            return f"{v:.0f}" if v >= 100 else f"{v:.1f}"
        if self.fmt == "int":
            return f"{int(v)}"
        raise ValueError(f"unknown cell format {self.fmt!r}")


@dataclass
class Column:
    header: str
    best: str | None = "max"   # "max" / "min": bold the best cell; None: no bold
    group: str | None = None   # a header spanning consecutive columns of the same group (a data set)

    def title(self) -> str:
        return f"{self.group} {self.header}" if self.group else self.header


@dataclass
class Row:
    labels: list[str]
    cells: list[Cell]
    section: str = ""          # a rule separates sections (backbones, baselines)


@dataclass
class Table:
    name: str                  # file stem, e.g. "table2_main"
    caption: str
    label_headers: list[str]
    columns: list[Column]
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def bold(self) -> list[list[bool]]:
        """Which cells are bold: per column, the best displayed value among ranked cells."""
        flags = [[False] * len(self.columns) for _ in self.rows]
        for j, col in enumerate(self.columns):
            if col.best is None:
                continue
            shown = [(i, float(r.cells[j].text())) for i, r in enumerate(self.rows)
                     if r.cells[j].rank and r.cells[j].value is not None]
            if not shown:
                continue
            best = (max if col.best == "max" else min)(v for _, v in shown)
            for i, v in shown:
                flags[i][j] = v == best  # compare what is printed, so printed ties are all bold
        return flags

    def to_markdown(self) -> str:
        bold = self.bold()
        lines = [f"**{self.caption}**", "",
                 "| " + " | ".join(self.label_headers + [c.title() for c in self.columns]) + " |",
                 "| " + " | ".join(["---"] * len(self.label_headers) + ["---:"] * len(self.columns)) + " |"]
        for row, flags in zip(self.rows, bold):
            cells = [(f"**{c.text()}**" if b else c.text()) + c.marks for c, b in zip(row.cells, flags)]
            lines.append("| " + " | ".join(row.labels + cells) + " |")
        if self.notes:
            lines.append("")
            lines += [f"{n}  " for n in self.notes[:-1]] + [self.notes[-1]]  # two spaces: Markdown line break
        return "\n".join(lines) + "\n"

    def to_csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(self.label_headers + [c.title() for c in self.columns])
        for row in self.rows:
            w.writerow(row.labels + [c.text() + c.marks for c in row.cells])
        return buf.getvalue()

    def to_latex(self) -> str:
        from reports.latex import table_to_latex

        return table_to_latex(self)


# ---------------------------------------------------------------- looking cells up

class _Lookup:
    """Cells from the ledger at default settings; several results in one cell are averaged and
    flagged (a dagger here, their paths and values in a footnote). Rows are plain dicts: tables
    ask for hundreds of cells, and filtering a DataFrame for each would be slow."""

    def __init__(self, results: Results):
        df = results.records
        if not df.empty:
            df = df[df["mrl_dim"].isna() & df["sparse_top_k"].isna()]
        self.rows = [{k: (None if _missing(v) else v) for k, v in rec.items()} for rec in df.to_dict("records")]
        self.notes: list[str] = []
        self._noted: set = set()

    def select(self, **key) -> list[dict]:
        return [r for r in self.rows if all(r[k] == v for k, v in key.items())]

    def cell(self, metric: str = "ndcg@10", **key) -> Cell:
        sel = sorted(self.select(**key), key=lambda r: r["source"])
        vals = [r[metric] for r in sel if r[metric] is not None]
        if not vals:
            return Cell(None)
        cell = Cell(100.0 * sum(vals) / len(vals))
        if len(sel) > 1:
            cell.marks = DAGGER
            ident = tuple(sorted(key.items()))
            if ident not in self._noted:
                self._noted.add(ident)
                what = " / ".join(str(key[k]) for k in KEY_ORDER if k in key)
                each = ", ".join(f"{100 * r['ndcg@10']:.1f} ({r['source']})" for r in sel)
                self.notes.append(f"{DAGGER} {len(sel)} results for one cell ({what}); the cell shows "
                                  f"their mean. nDCG@10 of each: {each}.")
        return cell

    def has(self, **key) -> bool:
        return bool(self.select(**key))

    def values(self, column: str, **key) -> list:
        return sorted({r[column] for r in self.select(**key) if r[column] is not None})


def _missing(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _skipped_notes(results: Results) -> list[str]:
    if not results.warnings:
        return []
    return [f"Skipped {len(results.warnings)} unreadable result file(s): " + "; ".join(results.warnings) + "."]


def _delta(a: Cell, b: Cell) -> Cell:
    """a - b (signed, never bold); missing when either side is."""
    if a.value is None or b.value is None:
        return Cell(None, "delta", rank=False)
    return Cell(a.value - b.value, "delta", rank=False)


def _finish(table: Table, look: _Lookup | None, results: Results) -> Table | None:
    if table.name.startswith("paper_vs_ours"):  # a row with neither number compares nothing
        table.rows = [r for r in table.rows if r.cells[0].value is not None or r.cells[1].value is not None]
    if not table.rows:
        return None
    table.notes = (look.notes if look else []) + table.notes + _skipped_notes(results)
    return table


def _model_backbones(look: _Lookup) -> list[str]:
    return [b for b in look.values("backbone") if b != "bm25"]


# ---------------------------------------------------------------- the paper's layouts

def table1_speed(results: Results) -> Table | None:
    """Table 1 layout: seconds to tokenize / encode / search and in total, queries per second, and
    nDCG@10 when known (from the speed.json, or the ledger's matching result)."""
    sp = speed_with_quality(results)
    with_ndcg = not sp.empty and sp["ndcg@10"].notna().any()
    cols = [Column("Queries", best=None), Column("Tokenize (s)", "min"), Column("Encode (s)", "min"),
            Column("Search (s)", "min"), Column("Total (s)", "min"), Column("QPS", "max")]
    cols += [Column("nDCG@10", "max")] if with_ndcg else []
    t = Table("table1_speed", "Table 1 layout: query-side speed (seconds for all queries; QPS = queries / total "
              "seconds).", ["Model", "Device"], cols)
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
    return _finish(t, None, results)


def _method_label(setting: str, rep: str) -> str:
    if setting == "bm25":
        return "BM25"
    if setting == "untrained":
        return f"Untrained backbone ({rep})"
    return f"{setting} ({rep})"


def _baseline_rows(look: _Lookup, cell_fn) -> list[Row]:
    rows = []
    for setting in BASELINE_SETTINGS:
        for backbone in look.values("backbone", setting=setting):
            for rep in look.values("representation", setting=setting, backbone=backbone):
                shown = "" if setting == "bm25" else backbone
                rows.append(Row([shown, _method_label(setting, rep)],
                                cell_fn(setting=setting, backbone=backbone, representation=rep), "baselines"))
    return rows


def table2_main(results: Results) -> Table | None:
    """Table 2 layout: per backbone, full symmetric vs LightRetriever (hybrid) and their gap,
    after the baselines; nDCG@10 and recall@20/50/100 per data set."""
    look = _Lookup(results)
    datasets = look.values("dataset")
    cols = [Column(h, "max", group=d) for d in datasets for _, h in QUALITY]

    def cells(**key) -> list[Cell]:
        return [look.cell(m, dataset=d, **key) for d in datasets for m, _ in QUALITY]

    t = Table("table2_main", "Table 2 layout: full symmetric vs LightRetriever (hybrid retrieval) per backbone, "
              "with baselines; nDCG@10 and recall x 100.", ["Backbone", "Method"], cols)
    t.rows += _baseline_rows(look, cells)
    for b in _model_backbones(look):
        sym = ("symmetric", "symmetric")
        light = ("lightretriever", "hybrid")
        if not (look.has(backbone=b, setting=sym[0], representation=sym[1])
                or look.has(backbone=b, setting=light[0], representation=light[1])):
            continue
        s = cells(backbone=b, setting=sym[0], representation=sym[1])
        lr = cells(backbone=b, setting=light[0], representation=light[1])
        t.rows += [Row([b, "Full Symmetric"], s, b), Row([b, "LightRetriever"], lr, b),
                   Row([b, "Gap (LightRetriever - Full)"], [_delta(x, y) for x, y in zip(lr, s)], b)]
    return _finish(t, look, results)


# label, our setting, our representation, reference row (setting, representation), train q/d, infer q/d
ABLATION_ROWS = (
    ("LightRetriever", "lightretriever", "dense", None, ("Full", "Full", "Emb", "Full")),
    ("A1 both-side light", "a1_both_light", "light_both", ("lightretriever", "dense"), ("Full", "Full", "Emb", "Emb")),
    ("A2 embedding query", "a2_embedding_query", "dense", ("lightretriever", "dense"), ("Emb", "Full", "Emb", "Full")),
    ("LightRetriever", "lightretriever", "hybrid", None, ("Full", "Full", "Emb", "Full")),
    ("A3 1-layer query", "a3_one_layer_query", "hybrid", ("lightretriever", "hybrid"),
     ("1L-Trans", "Full", "1L-Trans", "Full")),
)


def _ablation_blocks():
    """The rows in blocks that share a reference: (reference row, [ablation rows])."""
    blocks, current = [], None
    for row in ABLATION_ROWS:
        if row[3] is None:
            current = (row, [])
            blocks.append(current)
        else:
            current[1].append(row)
    return blocks


def table4_ablations(results: Results) -> Table | None:
    """Table 4 layout: ablations A1-A3 with their difference to LightRetriever (same representation).
    A1 is every ``light_both`` result (variant a1_both_light, or a LightRetriever run evaluated so)."""
    look = _Lookup(results)
    datasets = look.values("dataset")
    cols = []
    for d in datasets:
        cols += [Column("nDCG@10", "max", group=d), Column(f"{DELTA}", None, group=d)]
    t = Table("table4_ablations", f"Table 4 layout: symmetry ablations A1-A3, nDCG@10 x 100 and {DELTA} to "
              "LightRetriever with the same representation (Emb = cached token embeddings, 1L-Trans = first "
              "transformer layer only).",
              ["Backbone", "Setting", "Train query", "Train doc", "Infer query", "Infer doc", "Repr."], cols)
    for b in _model_backbones(look):
        for ref, ablations in _ablation_blocks():
            present = [a for a in ablations if look.has(backbone=b, setting=a[1], representation=a[2])]
            if not present:
                continue
            ref_cells = [look.cell(dataset=d, backbone=b, setting=ref[1], representation=ref[2]) for d in datasets]
            t.rows.append(Row([b, ref[0], *ref[4], ref[2]],
                              [c for rc in ref_cells for c in (rc, Cell(None, "delta", rank=False))], b))
            for a in present:
                row_cells = []
                for d, rc in zip(datasets, ref_cells):
                    c = look.cell(dataset=d, backbone=b, setting=a[1], representation=a[2])
                    row_cells += [c, _delta(c, rc)]
                t.rows.append(Row([b, a[0], *a[4], a[2]], row_cells, b))
    return _finish(t, look, results)


KL_REPRESENTATIONS = ("dense", "sparse", "hybrid")


def table5_kl(results: Results) -> Table | None:
    """Table 5 layout: LightRetriever with (variant ``kl``) and without (``lightretriever``) the
    KL alignment loss, for dense, sparse and hybrid retrieval."""
    look = _Lookup(results)
    datasets = look.values("dataset")
    cols = []
    for d in datasets:
        cols += [Column("w/ KL", "max", group=d), Column("w/o KL", "max", group=d), Column(DELTA, None, group=d)]
    t = Table("table5_kl", f"Table 5 layout: with / without the KL alignment loss, nDCG@10 x 100 ({DELTA} = with "
              "- without).", ["Backbone", "Repr."], cols)
    for b in _model_backbones(look):
        if not look.has(backbone=b, setting="kl"):
            continue
        for rep in KL_REPRESENTATIONS:
            if not (look.has(backbone=b, setting="kl", representation=rep)
                    or look.has(backbone=b, setting="lightretriever", representation=rep)):
                continue
            cells = []
            for d in datasets:
                w = look.cell(dataset=d, backbone=b, setting="kl", representation=rep)
                wo = look.cell(dataset=d, backbone=b, setting="lightretriever", representation=rep)
                cells += [w, wo, _delta(w, wo)]
            t.rows.append(Row([b, rep], cells, b))
    return _finish(t, look, results)


# our (setting, representation) -> row label, per backbone, in the order of the paper's Tables 9-11
PER_DATASET_ROWS = (
    (("symmetric", "symmetric"), "Full Symmetric"),
    (("lightretriever", "dense"), "LightRetriever Dense"),
    (("lightretriever", "sparse"), "LightRetriever Sparse"),
    (("lightretriever", "hybrid"), "LightRetriever Hybrid"),
    (("lightretriever", "symmetric"), "LightRetriever Symmetric"),
)


def table9_11_per_dataset(results: Results) -> Table | None:
    """Tables 9-11 layout: nDCG@10 per data set (and their mean when there are several) for the
    baselines and, per backbone, full symmetric and LightRetriever dense / sparse / hybrid / symmetric."""
    look = _Lookup(results)
    datasets = look.values("dataset")
    avg = len(datasets) > 1
    cols = [Column(d, "max") for d in datasets] + ([Column("Avg", "max")] if avg else [])

    def cells(**key) -> list[Cell]:
        cs = [look.cell(dataset=d, **key) for d in datasets]
        if avg:  # a mean over fewer data sets would not be comparable with the other rows
            complete = all(c.value is not None for c in cs)
            cs.append(Cell(sum(c.value for c in cs) / len(cs) if complete else None))
        return cs

    t = Table("table9_11_per_dataset", "Tables 9-11 layout: nDCG@10 x 100 per data set.", ["Backbone", "Method"], cols)
    t.rows += _baseline_rows(look, cells)
    for b in _model_backbones(look):
        for (setting, rep), label in PER_DATASET_ROWS:
            if look.has(backbone=b, setting=setting, representation=rep):
                t.rows.append(Row([b, label], cells(backbone=b, setting=setting, representation=rep), b))
    if avg:
        t.notes.append("Avg is the mean over all data sets shown; it is missing for a row without all of them.")
    return _finish(t, look, results)


# ---------------------------------------------------------------- paper vs ours

PAPER_TABLES = ("main", "per_dataset", "ablations", "kl", "speed")


def _comparison_table(name: str, caption: str, labels: list[str], paper_header: str, ours_header: str = "Ours"):
    cols = [Column(paper_header, None), Column(ours_header, None), Column("Diff", None)]
    return Table(name, caption, labels, cols)


def _comparison_cells(p: float | None, ours: Cell, fmt: str = "pct") -> list[Cell]:
    pc = Cell(p, fmt, rank=False)
    oc = Cell(ours.value, fmt, rank=False, marks=ours.marks)
    diff = Cell(None if p is None or ours.value is None else ours.value - p, "delta", rank=False)
    return [pc, oc, diff]


def paper_vs_ours(results: Results, kind: str = "per_dataset",
                  paper_backbone: str = paper.DEFAULT_PAPER_BACKBONE) -> Table | None:
    """The paper's number, ours and ours - paper, row by row, for one of ``PAPER_TABLES``.

    Matching is explicit (``reports.paper``): methods by (our setting, representation), data sets
    by name, and every one of our backbones against the one ``paper_backbone``. A cell that one
    side lacks shows "-"; no row of ours is ever dropped. The paper reports Tables 1, 4 and 5 only
    as benchmark averages, so those comparisons put the paper's average of the benchmark that
    holds our data set (e.g. the BEIR average for scifact) beside our number, and say so.
    """
    if kind not in PAPER_TABLES:
        raise ValueError(f"unknown paper table {kind!r}; one of {PAPER_TABLES}")
    paper.check_backbone(paper_backbone)
    return {"main": _pvo_main, "per_dataset": _pvo_per_dataset, "ablations": _pvo_ablations,
            "kl": _pvo_kl, "speed": _pvo_speed}[kind](results, paper_backbone)


def _pvo_methods(results: Results, pb: str, methods: dict, name: str, caption: str) -> Table | None:
    look = _Lookup(results)
    datasets = look.values("dataset")
    t = _comparison_table(name, caption, ["Backbone", "Method", "Data set"], f"Paper ({pb})")
    unmatched = set()
    for setting in BASELINE_SETTINGS:  # baselines first, as in the paper
        for b in look.values("backbone", setting=setting):
            for rep in look.values("representation", setting=setting, backbone=b):
                method = methods.get((setting, rep))
                if method is None:
                    unmatched.add(f"{setting}/{rep}")
                for d in datasets:
                    p = paper.lookup_per_dataset(pb, method, d) if method else None
                    ours = look.cell(dataset=d, backbone=b, setting=setting, representation=rep)
                    t.rows.append(Row(["" if setting == "bm25" else b, method or _method_label(setting, rep), d],
                                      _comparison_cells(p, ours), "baselines"))
    for b in _model_backbones(look):
        if not any(look.has(backbone=b, setting=s, representation=r) for s, r in methods):
            continue
        for (setting, rep), method in methods.items():
            if setting in BASELINE_SETTINGS:
                continue
            for d in datasets:
                p = paper.lookup_per_dataset(pb, _paper_method(method), d)
                ours = look.cell(dataset=d, backbone=b, setting=setting, representation=rep)
                t.rows.append(Row([b, method, d], _comparison_cells(p, ours), b))
    if unmatched:
        t.notes.append("No counterpart in the paper: " + ", ".join(sorted(unmatched)) + ".")
    missing = sorted({d for d in datasets if paper.dataset_name(d) is None})
    if missing:
        t.notes.append("Data sets the paper does not report: " + ", ".join(missing) + ".")
    return _finish(t, look, results)


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
    look = _Lookup(results)
    datasets = look.values("dataset")
    t = _comparison_table("paper_vs_ours_ablations",
                          f"Paper vs ours, Table 4 (A1-A3): nDCG@10 x 100 (paper backbone {pb}; the paper "
                          "reports benchmark averages only; Diff = ours - paper).",
                          ["Backbone", "Setting", "Repr.", "Data set", "Paper scope"], f"Paper ({pb})")
    for b in _model_backbones(look):
        for ref, ablations in _ablation_blocks():
            present = [a for a in ablations if look.has(backbone=b, setting=a[1], representation=a[2])]
            if not present:
                continue
            for row in [ref, *present]:
                p_setting, p_rep = paper.ABLATION_SETTINGS[(row[1], row[2])]
                for d in datasets:
                    bench, scope = _scope(d)
                    p = paper.lookup_ablation(pb, p_setting, p_rep, bench) if bench else None
                    ours = look.cell(dataset=d, backbone=b, setting=row[1], representation=row[2])
                    t.rows.append(Row([b, row[0], row[2], d, scope], _comparison_cells(p, ours), b))
    t.notes.append("The paper reports A1 and A2 for Llama3.2-1b and A3 for Llama3.1-8b only.")
    return _finish(t, look, results)


def _pvo_kl(results: Results, pb: str) -> Table | None:
    look = _Lookup(results)
    datasets = look.values("dataset")
    t = _comparison_table("paper_vs_ours_kl",
                          f"Paper vs ours, Table 5 (KL alignment): nDCG@10 x 100 (paper backbone {pb}; the paper "
                          "reports benchmark averages only; Diff = ours - paper).",
                          ["Backbone", "KL", "Repr.", "Data set", "Paper scope"], f"Paper ({pb})")
    for b in _model_backbones(look):
        if not look.has(backbone=b, setting="kl"):
            continue
        for rep in KL_REPRESENTATIONS:
            if not any(look.has(backbone=b, setting=s, representation=rep) for s in paper.KL_SETTINGS):
                continue
            for setting, column in paper.KL_SETTINGS.items():
                for d in datasets:
                    bench, scope = _scope(d)
                    p = paper.lookup_kl(pb, column, rep, bench) if bench else None
                    ours = look.cell(dataset=d, backbone=b, setting=setting, representation=rep)
                    label = "with" if column == "with_kl" else "without"
                    t.rows.append(Row([b, label, rep, d, scope], _comparison_cells(p, ours), b))
    t.notes.append("The paper reports the KL ablation for Llama3.1-8b only.")
    return _finish(t, look, results)


def _pvo_speed(results: Results, pb: str) -> Table | None:
    t = _comparison_table("paper_vs_ours_speed",
                          f"Paper vs ours, Table 1: queries per second (paper: 65,536 MS MARCO queries on an A800 "
                          f"GPU, backbone {pb}; Diff = ours - paper).", ["Model", "Paper model"], "Paper QPS",
                          "Ours QPS")
    unmatched = []
    for _, r in results.speed.iterrows():
        text = {k: r[k] if isinstance(r[k], str) else None for k in ("variant", "representation")}
        row = paper.lookup_speed(pb, text["variant"], text["representation"])
        if row is None:
            unmatched.append(r["model"])
        p = float(row["qps"]) if row is not None else None
        t.rows.append(Row([r["model"], row["model"] if row is not None else MISSING],
                          _comparison_cells(p, Cell(float(r["qps"])), "qps")))
    if unmatched:
        t.notes.append("No paper counterpart (the paper's Table 1 times full and hybrid LightRetriever pipelines, "
                       "for some backbones only): " + ", ".join(unmatched) + ".")
    return _finish(t, None, results)


# ---------------------------------------------------------------- everything

def all_tables(results: Results, paper_backbone: str = paper.DEFAULT_PAPER_BACKBONE) -> list[Table]:
    """Every table that has at least one row, in the report's order."""
    built = [table1_speed(results), table2_main(results), table4_ablations(results), table5_kl(results),
             table9_11_per_dataset(results)]
    built += [paper_vs_ours(results, k, paper_backbone) for k in PAPER_TABLES]
    return [t for t in built if t is not None]


TABLE_NAMES = ("table1_speed", "table2_main", "table4_ablations", "table5_kl", "table9_11_per_dataset",
               *(f"paper_vs_ours_{k}" for k in PAPER_TABLES))
