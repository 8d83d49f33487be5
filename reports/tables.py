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

import csv
import io
import math
import statistics
from dataclasses import dataclass, field

import pandas as pd

import ablations  # noqa: F401  (the variant catalog: registers every variant the tables name)
from lr_core.retrieval.evaluate import REPRESENTATIONS
from lr_core.variants import REPORT_TABLES, list_variants, variants_in
from reports import names, paper, stats
from reports.collect import Results, are_seeds, speed_with_quality

DAGGER = "\N{DAGGER}"
DELTA = "\N{GREEK CAPITAL LETTER DELTA}"
PM = "\N{PLUS-MINUS SIGN}"
SIG = "*"
MISSING = "-"
QUALITY = (("ndcg@10", "nDCG@10"), ("recall@20", "R@20"), ("recall@50", "R@50"), ("recall@100", "R@100"))
BASELINE_SETTINGS = ("bm25", "untrained")
DEFAULT_BASELINE = ("symmetric", "symmetric")  # what Tables 9-11 test every row against (--baseline)
KEY_ORDER = ("dataset", "backbone", "setting", "representation")  # how a cell's key reads in a footnote
REP_ORDER = {r: i for i, r in enumerate((*REPRESENTATIONS, "bm25"))}


# ---------------------------------------------------------------- the table model

@dataclass
class Cell:
    """One number in display units (percent, seconds, queries/s); ``None`` is missing."""

    value: float | None
    fmt: str = "pct"      # pct: 1 decimal; delta: signed 1 decimal; sec: 4 decimals; qps; int; ratio
    rank: bool = True     # competes for the column's best (differences and references do not)
    marks: str = ""       # footnote markers
    std: float | None = None   # over seeds (pct cells of n >= 2 seeds)
    n: int = 1                 # seeds in the cell
    rows: list = field(default_factory=list, repr=False)  # the ledger rows behind the cell

    def text(self) -> str:
        if self.value is None:
            return MISSING
        v = self.value
        if self.fmt == "pct":
            return f"{v:.1f}" + (f" {PM} {self.std:.1f} ({self.n})" if self.std is not None else "")
        if self.fmt == "delta":
            r = round(v, 1)
            return f"{(r if r != 0 else 0.0):+.1f}"  # never "-0.0"
        if self.fmt == "sec":
            return f"{v:.4f}"
        if self.fmt == "qps":
            return f"{v:.0f}" if v >= 100 else f"{v:.1f}"
        if self.fmt == "int":
            return f"{int(v)}"
        if self.fmt == "ratio":
            return f"{v:,.0f}x" if v >= 100 else f"{v:.1f}x"
        raise ValueError(f"unknown cell format {self.fmt!r}")

    def shown(self) -> float:
        """The value as printed (bold compares printed values, so printed ties are all bold)."""
        return round(self.value, 4 if self.fmt == "sec" else 1)


@dataclass
class Column:
    header: str
    best: str | None = "max"   # "max" / "min": bold the column's best; "row": the best of the row's
    group: str | None = None   # "row" columns in the same group; None: no bold. group: a spanning header

    def title(self) -> str:
        return f"{self.group} {self.header}" if self.group else self.header


@dataclass
class Row:
    labels: list[str]
    cells: list[Cell]
    section: str = ""          # a rule separates sections (backbones, baselines)


@dataclass
class Table:
    name: str                  # file stem, e.g. "table2_main"; the LaTeX label is tab:<name>
    caption: str
    label_headers: list[str]
    columns: list[Column]
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"tab:{self.name}"

    def bold(self) -> list[list[bool]]:
        """Which cells are bold: per column (or per row group for ``best="row"``), the best
        printed value among ranked cells."""
        flags = [[False] * len(self.columns) for _ in self.rows]

        def mark(cells: list[tuple[int, int]], best: str) -> None:
            shown = [(i, j, self.rows[i].cells[j].shown()) for i, j in cells
                     if self.rows[i].cells[j].rank and self.rows[i].cells[j].value is not None]
            if len(shown) < (2 if best == "row" else 1):
                return
            top = (min if best == "min" else max)(v for _, _, v in shown)
            for i, j, v in shown:
                flags[i][j] = v == top

        for j, col in enumerate(self.columns):
            if col.best in ("max", "min"):
                mark([(i, j) for i in range(len(self.rows))], col.best)
        groups = list(dict.fromkeys(c.group for c in self.columns if c.best == "row"))
        for g in groups:
            js = [j for j, c in enumerate(self.columns) if c.best == "row" and c.group == g]
            for i in range(len(self.rows)):
                mark([(i, j) for j in js], "row")
        return flags

    def shown_labels(self) -> list[list[str]]:
        """Row labels with the first (the backbone) printed once per run of equal values."""
        out, last = [], None
        for row in self.rows:
            labels = list(row.labels)
            if labels and (row.section, labels[0]) == last:
                labels[0] = ""
            else:
                last = (row.section, labels[0]) if labels else None
            out.append(labels)
        return out

    def to_markdown(self) -> str:
        bold = self.bold()
        lines = [f"**{self.caption}**", "",
                 "| " + " | ".join(self.label_headers + [c.title() for c in self.columns]) + " |",
                 "| " + " | ".join(["---"] * len(self.label_headers) + ["---:"] * len(self.columns)) + " |"]
        for row, labels, flags in zip(self.rows, self.shown_labels(), bold):
            cells = [(f"**{c.text()}**" if b else c.text()) + c.marks.replace(SIG, "\\" + SIG)
                     for c, b in zip(row.cells, flags)]
            lines.append("| " + " | ".join(labels + cells) + " |")
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
    """Cells from the ledger at default settings. Several results in one cell: seeds give mean
    +- std (n); other duplicates are averaged and flagged (a dagger here, their paths and values
    in a footnote). Rows are plain dicts: tables ask for hundreds of cells, and filtering a
    DataFrame for each would be slow."""

    def __init__(self, results: Results):
        df = results.records
        if not df.empty:
            df = df[df["mrl_dim"].isna() & df["sparse_top_k"].isna()]
        self.rows = [{k: (None if _missing(v) else v) for k, v in rec.items()} for rec in df.to_dict("records")]
        self.notes: list[str] = []
        self._noted: set = set()
        self.seeded = False

    def select(self, **key) -> list[dict]:
        return [r for r in self.rows if all(r.get(k) == v for k, v in key.items())]

    def cell(self, metric: str = "ndcg@10", **key) -> Cell:
        sel = sorted(self.select(**key), key=lambda r: r["source"])
        vals = [r[metric] for r in sel if r[metric] is not None]
        if not vals:
            return Cell(None)
        cell = Cell(100.0 * sum(vals) / len(vals), rows=sel)
        if len(sel) > 1 and are_seeds([r.get("seed") for r in sel]):
            cell.n = len(vals)
            cell.std = 100.0 * statistics.stdev(vals) if len(vals) > 1 else None
            self.seeded = True
        elif len(sel) > 1:
            cell.marks = DAGGER
            ident = tuple(sorted(key.items()))
            if ident not in self._noted:
                self._noted.add(ident)
                what = " / ".join(str(key[k]) for k in KEY_ORDER if k in key)
                each = ", ".join(f"{100 * r['ndcg@10']:.1f} ({r['source']})" for r in sel)
                self.notes.append(f"{DAGGER} {len(sel)} results for one cell ({what}) that are not distinct "
                                  f"seeds; the cell shows their mean. nDCG@10 of each: {each}.")
        return cell

    def has(self, **key) -> bool:
        return bool(self.select(**key))

    def values(self, column: str, **key) -> list:
        return sorted({r[column] for r in self.select(**key) if r[column] is not None})

    def seed_note(self) -> list[str]:
        if self.seeded:
            return [f"a {PM} s (n): mean and sample standard deviation over n seeds of one experiment."]
        return []


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


# ---------------------------------------------------------------- significance

class _Tests:
    """The paired comparisons of one table; ``finish`` applies Holm's correction over all of them
    and marks the cells that differ significantly from their reference."""

    def __init__(self, reference_text: str):
        self.pending: list[tuple[Cell, float]] = []
        self.untested = 0
        self.reference_text = reference_text

    def compare(self, cell: Cell, ref: Cell, metric: str = "ndcg@10") -> None:
        if cell.value is None or ref.value is None:
            return
        result = stats.compare(stats.cell_scores(cell.rows, metric), stats.cell_scores(ref.rows, metric))
        if result is None:
            self.untested += 1
            return
        self.pending.append((cell, result[1]))

    def finish(self) -> list[str]:
        notes = []
        if self.pending:
            adjusted = stats.holm([p for _, p in self.pending])
            hits = 0
            for (cell, _), p in zip(self.pending, adjusted):
                if p < stats.ALPHA:
                    cell.marks += SIG
                    hits += 1
            notes.append(f"{SIG} differs from {self.reference_text} at p < {stats.ALPHA} ({stats.TEST_NAME} over "
                         f"the {len(self.pending)} comparisons in this table; {hits} significant).")
        if self.untested:
            notes.append(f"{self.untested} comparison(s) with {self.reference_text} untested: no per-query scores "
                         "(results written before per_query.json.gz was kept).")
        return notes


def _finish(table: Table, look: _Lookup | None, results: Results, tests: _Tests | None = None) -> Table | None:
    if table.name.startswith("paper_vs_ours"):  # a row with neither number compares nothing
        table.rows = [r for r in table.rows if any(c.value is not None for c in r.cells[:-1])]
    if not table.rows:
        return None
    table.notes = ((look.notes + look.seed_note() if look else []) + (tests.finish() if tests else [])
                   + table.notes + _skipped_notes(results))
    return table


def _model_backbones(look: _Lookup) -> list[str]:
    return [b for b in look.values("backbone") if b != "bm25"]


def _data_scope(look: _Lookup, datasets: list[str]) -> str:
    """What a caption says about the data and the training budget of the results shown."""
    data = ", ".join(names.dataset(d) for d in datasets) or "no data set"
    steps = sorted({int(r["steps"]) for r in look.rows if r.get("steps") is not None})
    budget = (f"{steps[0]} training steps" if len(steps) == 1 else
              f"{steps[0]}-{steps[-1]} training steps" if steps else "training budget not recorded")
    backbones = ", ".join(names.backbone(b) for b in _model_backbones(look))
    return f"Data: {data}. Budget: {budget}" + (f" ({backbones})." if backbones else ".")


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
    return _finish(t, None, results)


def _baseline_rows(look: _Lookup, cell_fn) -> list[Row]:
    rows = []
    for setting in BASELINE_SETTINGS:
        for backbone in look.values("backbone", setting=setting):
            for rep in look.values("representation", setting=setting, backbone=backbone):
                rows.append(Row([names.backbone(backbone), names.method(setting, rep)],
                                cell_fn(setting=setting, backbone=backbone, representation=rep), "baselines"))
    return rows


def _reference(v, rep: str) -> tuple[str, str] | None:
    """The (variant, representation) a variant's ``rep`` row is compared with."""
    if v.reference is None:
        return None
    return v.reference[0], v.reference[1] or rep


def table2_main(results: Results) -> Table | None:
    """Table 2 layout: per backbone, the registered Table 2 variants (full symmetric,
    LightRetriever hybrid, ...) after the baselines, and each one's gap to its reference;
    nDCG@10 and recall@20/50/100 per data set."""
    look = _Lookup(results)
    datasets = look.values("dataset")
    cols = [Column(h, "max", group=names.dataset(d)) for d in datasets for _, h in QUALITY]
    tests = _Tests("its reference row (the Gap row names it)")

    def cells(**key) -> list[Cell]:
        return [look.cell(m, dataset=d, **key) for d in datasets for m, _ in QUALITY]

    t = Table("table2_main", "Table 2: full symmetric vs LightRetriever (hybrid retrieval) and the other Table 2 "
              "variants per backbone, with baselines; nDCG@10 and recall x 100. " + _data_scope(look, datasets),
              ["Backbone", "Method"], cols)
    t.rows += _baseline_rows(look, cells)
    members = variants_in("table2")
    for b in _model_backbones(look):
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
                ref = _reference(v, rep)
                if ref is None or not look.has(backbone=b, setting=ref[0], representation=ref[1]):
                    continue
                ref_cells = cells(backbone=b, setting=ref[0], representation=ref[1])
                for k, (c, rc) in enumerate(zip(own, ref_cells)):
                    if QUALITY[k % len(QUALITY)][0] == "ndcg@10":  # the test is on nDCG@10
                        tests.compare(c, rc)
                t.rows.append(Row([names.backbone(b), f"Gap ({v.display} - {names.variant(ref[0])})"],
                                  [_delta(x, y) for x, y in zip(own, ref_cells)], b))
    return _finish(t, look, results, tests)


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
    look = _Lookup(results)
    datasets = look.values("dataset")
    members = variants_in("table3_4")
    registry = list_variants()
    refs = {r[0] for v in members for r in [v.reference] if r}
    extra = _label_columns([*members, *(registry[r] for r in refs if r in registry)])
    cols = []
    for d in datasets:
        cols += [Column("nDCG@10", "max", group=names.dataset(d)), Column(DELTA, None, group=names.dataset(d))]
    tests = _Tests("its LightRetriever reference row")
    t = Table("table3_4_ablations", f"Tables 3-4: symmetry ablations A1-A3, nDCG@10 x 100 and {DELTA} to the "
              "reference row above them (Emb = cached token embeddings, 1L-Trans = first transformer layer "
              "only). " + _data_scope(look, datasets),
              ["Backbone", "Setting", *extra, "Repr."], cols)

    def labels(name: str, rep: str, b: str) -> list[str]:
        v = registry.get(name)
        given = dict(v.columns) if v else {}
        return [names.backbone(b), names.variant(name), *(given.get(k, MISSING) for k in extra),
                names.representation(rep)]

    for b in _model_backbones(look):
        blocks: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for v in members:
            for rep in v.representations:
                ref = _reference(v, rep)
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
                    row_cells += [c, _delta(c, rc)]
                t.rows.append(Row(labels(name, rep, b), row_cells, b))
    return _finish(t, look, results, tests)


def table5_kl(results: Results) -> Table | None:
    """Table 5 layout: per representation (dense / sparse / hybrid: the A4 breakdown), the
    reference (LightRetriever, i.e. without KL) and every registered Table 5 variant (with KL,
    ...) with its {DELTA} to the reference. Bold compares the variants within one row."""
    look = _Lookup(results)
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
    tests = _Tests("the reference (" + ", ".join(names.variant(r) for r in ref_names) + ") in the same row")
    t = Table("table5_kl", f"Table 5: with / without the KL alignment loss per representation (the A4 breakdown), "
              f"nDCG@10 x 100 ({DELTA} = variant - {', '.join(names.variant(r) for r in ref_names)}; bold: the best "
              "of each row and data set). " + _data_scope(look, datasets), ["Backbone", "Repr."], cols)
    for b in _model_backbones(look):
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
                    rc = ref_cells.get(_reference(v, rep)[0]) if v.reference else None
                    if rc is not None:
                        tests.compare(c, rc)
                    cells += [c, _delta(c, rc) if rc is not None else Cell(None, "delta", rank=False)]
            t.rows.append(Row([names.backbone(b), names.representation(rep)], cells, b))
    return _finish(t, look, results, tests)


def _variant_order(look: _Lookup, backbone: str) -> list[tuple[str, str]]:
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
    look = _Lookup(results)
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
    tests = _Tests(f"{base_text} of the same backbone (--baseline)")
    t = Table("table9_11_per_dataset", "Tables 9-11: nDCG@10 x 100 per data set, every variant and representation "
              "with results. " + _data_scope(look, datasets), ["Backbone", "Method"], cols)
    t.rows += _baseline_rows(look, cells)
    for b in _model_backbones(look):
        base = [look.cell(dataset=d, backbone=b, setting=baseline[0], representation=baseline[1]) for d in datasets]
        for setting, rep in _variant_order(look, b):
            row = cells(backbone=b, setting=setting, representation=rep)
            if (setting, rep) != tuple(baseline):
                for c, rc in zip(row, base):
                    tests.compare(c, rc)
            t.rows.append(Row([names.backbone(b), names.method(setting, rep)], row, b))
    if avg:
        t.notes.append("Avg is the mean over all data sets shown; it is missing for a row without all of them.")
    return _finish(t, look, results, tests)


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
    look = _Lookup(results)
    datasets = look.values("dataset")
    t = _comparison_table(name, caption + " " + _data_scope(look, datasets), ["Backbone", "Method", "Data set"],
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
    for b in _model_backbones(look):
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
                          f"Paper vs ours, Tables 3-4 (A1-A3): nDCG@10 x 100 (paper backbone {pb}; the paper "
                          "reports benchmark averages only; Diff = ours - paper). " + _data_scope(look, datasets),
                          ["Backbone", "Setting", "Repr.", "Data set", "Paper scope"], f"Paper ({pb})")
    for b in _model_backbones(look):
        seen = []
        for v in variants_in("table3_4"):
            for rep in v.representations:
                ref = _reference(v, rep)
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
    return _finish(t, look, results)


def _pvo_kl(results: Results, pb: str) -> Table | None:
    look = _Lookup(results)
    datasets = look.values("dataset")
    t = _comparison_table("paper_vs_ours_kl",
                          f"Paper vs ours, Table 5 (KL alignment): nDCG@10 x 100 (paper backbone {pb}; the paper "
                          "reports benchmark averages only; Diff = ours - paper). " + _data_scope(look, datasets),
                          ["Backbone", "KL", "Repr.", "Data set", "Paper scope"], f"Paper ({pb})")
    for b in _model_backbones(look):
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
    return _finish(t, look, results)


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
    return _finish(t, None, results)


# ---------------------------------------------------------------- everything

def all_tables(results: Results, paper_backbone: str = paper.DEFAULT_PAPER_BACKBONE,
               baseline: tuple[str, str] = DEFAULT_BASELINE) -> list[Table]:
    """Every table that has at least one row, in the report's order."""
    built = [table1_speed(results), table2_main(results), table3_4_ablations(results), table5_kl(results),
             table9_11_per_dataset(results, baseline)]
    built += [paper_vs_ours(results, k, paper_backbone) for k in PAPER_TABLES]
    return [t for t in built if t is not None]


TABLE_NAMES = ("table1_speed", "table2_main", "table3_4_ablations", "table5_kl", "table9_11_per_dataset",
               *(f"paper_vs_ours_{k}" for k in PAPER_TABLES))
# File stems of earlier reports (before the paper's Tables 3-4 numbering); removed when a report is rewritten.
OLD_TABLE_NAMES = ("table4_ablations",)
