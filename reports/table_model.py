"""The report table model: cells, columns, rows and tables, renderable as LaTeX (booktabs),
Markdown and CSV; looking result cells up by key, several results in one cell (seeds: mean +- std;
otherwise a dagger and a footnote), and the significance marks (paired t-test on per-query
nDCG@10, Holm-corrected per table). The paper's layouts are :mod:`reports.tables`; the
paper-vs-ours comparisons :mod:`reports.paper_vs_ours`.
"""
from __future__ import annotations

import csv
import io
import math
import statistics
from dataclasses import dataclass, field

import pandas as pd

from lr_core.retrieval.evaluate import REPRESENTATIONS
from reports import names, stats
from reports.collect import Results, are_seeds


DAGGER = "\N{DAGGER}"
DDAGGER = "\N{DOUBLE DAGGER}"
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
    fmt: str = "pct"      # pct: 1 decimal; delta: signed 1 decimal; sec: 4 decimals; loss: 2 decimals; qps; int; ratio
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
        if self.fmt == "loss":
            return f"{v:.2f}"
        if self.fmt == "qps":
            return f"{v:.0f}" if v >= 100 else f"{v:.1f}"
        if self.fmt == "int":
            return f"{int(v)}"
        if self.fmt == "ratio":
            return f"{v:,.0f}x" if v >= 100 else f"{v:.1f}x"
        raise ValueError(f"unknown cell format {self.fmt!r}")

    def shown(self) -> float:
        """The value as printed (bold compares printed values, so printed ties are all bold)."""
        return round(self.value, {"sec": 4, "loss": 2}.get(self.fmt, 1))


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

class Lookup:
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


def delta_cell(a: Cell, b: Cell) -> Cell:
    """a - b (signed, never bold); missing when either side is."""
    if a.value is None or b.value is None:
        return Cell(None, "delta", rank=False)
    return Cell(a.value - b.value, "delta", rank=False)


# ---------------------------------------------------------------- significance

class Tests:
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


def finish_table(table: Table, look: Lookup | None, results: Results, tests: Tests | None = None) -> Table | None:
    if table.name.startswith("paper_vs_ours"):  # a row with neither number compares nothing
        table.rows = [r for r in table.rows if any(c.value is not None for c in r.cells[:-1])]
    if not table.rows:
        return None
    table.notes = ((look.notes + look.seed_note() if look else []) + (tests.finish() if tests else [])
                   + table.notes + _skipped_notes(results))
    return table


def model_backbones(look: Lookup) -> list[str]:
    return [b for b in look.values("backbone") if b != "bm25"]


def data_scope(look: Lookup, datasets: list[str]) -> str:
    """What a caption says about the data and the training budget of the results shown."""
    data = ", ".join(names.dataset(d) for d in datasets) or "no data set"
    steps = sorted({int(r["steps"]) for r in look.rows if r.get("steps") is not None})
    budget = (f"{steps[0]} training steps" if len(steps) == 1 else
              f"{steps[0]}-{steps[-1]} training steps" if steps else "training budget not recorded")
    backbones = ", ".join(names.backbone(b) for b in model_backbones(look))
    return f"Data: {data}. Budget: {budget}" + (f" ({backbones})." if backbones else ".")


def reference_of(v, rep: str) -> tuple[str, str] | None:
    """The (variant, representation) a variant's ``rep`` row is compared with."""
    if v.reference is None:
        return None
    return v.reference[0], v.reference[1] or rep
