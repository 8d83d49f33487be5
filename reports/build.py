"""Write a whole report: collected results, every table and figure, report.tex and its PDF.

    from reports.build import write_report
    out = write_report(["runs/demo", "runs/ablations-scifact-cpu"], "reports/out",
                       paper_backbone="Llama3.2-1b")
    out.pdf, out.pages, out.files, out.warnings

or from the shell: ``lr report runs/demo runs/ablations-scifact-cpu --out reports/out``.

Layout of the output directory (every file written atomically, so a crash never leaves a torn one):

    results.csv, speed.csv        the collected DataFrames (what every table is built from)
    tables/<name>.{tex,md,csv}    one table in three formats (names: reports.tables.TABLE_NAMES); each
                                  .tex has a \\caption and \\label{tab:<name>}
    preamble.tex                  the packages the tables and figures need (reports.latex.preamble);
                                  report.tex uses exactly these
    figures/<name>.{pdf,png}      one figure in two formats (names: reports.figures.FIGURES); in report.tex
                                  with a \\caption and \\label{fig:<name>}
    report.md                     every Markdown table, one after another
    findings.md                   the paper's seven findings: the paper's numbers, ours, a verdict (reports.findings)
    pages/page-<n>.png            with page_images=True (``lr report --page-images``): each PDF page
    report.tex, report.pdf        the LaTeX report (first page: sources and what was left out;
    report.log                    then one page per table and per figure) and pdflatex's log

Tables and figures without data are not written; the report's first page names them (figures
with the reason, which is also logged), and files of those names left by an earlier report are
removed, so the directory always matches report.tex. In report.tex LaTeX numbers tables and
figures R1, R2, ... so that its own numbers never read as the paper's (each caption names the
paper's table).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from lr_core.errors import DataError
from lr_core.io import atomic_write_text
from reports import figures as figs
from reports import latex, tables
from reports.collect import Results, collect
from reports.findings import findings, findings_markdown
from reports.paper import DEFAULT_PAPER_BACKBONE, check_backbone

log = logging.getLogger(__name__)


@dataclass
class ReportOutput:
    out_dir: Path
    results: Results
    tables: list[str] = field(default_factory=list)     # names written
    figures: list[str] = field(default_factory=list)    # stems written
    missing: list[str] = field(default_factory=list)    # names without data
    files: list[Path] = field(default_factory=list)
    pdf: Path | None = None
    pages: int | None = None
    page_images: list[Path] = field(default_factory=list)

    @property
    def warnings(self) -> list[str]:
        return self.results.warnings


def _summary(results: Results, sources: list[str], paper_backbone: str, missing: list[str],
             not_drawn: dict[str, str] | None = None) -> list[str]:
    recs, speed = results.records, results.speed
    n_dup = int(recs["duplicate"].sum()) if not recs.empty else 0
    n_seed = int(recs["seed"].notna().sum()) if not recs.empty else 0
    n_pq = int(recs["per_query"].notna().sum()) if not recs.empty else 0
    lines = [f"Sources: {', '.join(sources)}.",
             (f"{len(recs)} quality result(s) ({n_dup} flagged as duplicates: same key and not distinct seeds, "
              f"all kept), {len(speed)} speed result(s)."),
             (f"{n_seed} of {len(recs)} quality results record their seed and {n_pq} keep per-query scores; "
              "results without a seed cannot be told apart from duplicates, and comparisons without per-query "
              "scores are not tested for significance (each table says how many)."),
             (f"Paper comparisons use the paper's {paper_backbone} numbers; methods and data sets are matched "
              "by the explicit tables in reports/paper.py."),
             "Numbers are x 100 with one decimal; the best value of each column is bold."]
    if missing:
        lines.append("Not produced (no results for them): " + ", ".join(missing) + ".")
    for stem, why in (not_drawn or {}).items():
        lines.append(f"Figure {stem} not drawn: {why}.")
    if results.warnings:
        lines.append(f"Skipped {len(results.warnings)} unreadable result file(s): " + "; ".join(results.warnings))
    return lines


def _remove_stale(directory: Path, stem: str, suffixes: tuple[str, ...]) -> None:
    for suffix in suffixes:
        (directory / f"{stem}.{suffix}").unlink(missing_ok=True)


def write_report(paths: list[str | Path], out_dir: str | Path, paper_backbone: str = DEFAULT_PAPER_BACKBONE,
                 wandb_project: str | None = None, pdf: bool = True, latex_timeout: float = 120.0,
                 wandb_api=None, baseline: tuple[str, str] = tables.DEFAULT_BASELINE,
                 page_images: bool = False) -> ReportOutput:
    """Collect ``paths`` (and the W&B project, if named) and write the report into ``out_dir``.
    Raises DataError when there is nothing to report, LatexError when pdflatex fails."""
    check_backbone(paper_backbone)
    results = collect(paths, wandb_project=wandb_project, wandb_api=wandb_api)
    sources = [str(p) for p in paths] + ([f"wandb:{wandb_project}"] if wandb_project else [])
    if results.empty:
        why = f" ({'; '.join(results.warnings)})" if results.warnings else ""
        raise DataError(f"no readable metrics.json or speed.json under {', '.join(sources) or '(nothing)'}{why}")
    out = ReportOutput(Path(out_dir), results)
    tdir, fdir = out.out_dir / "tables", out.out_dir / "figures"

    def write(path: Path, text: str) -> None:
        out.files.append(atomic_write_text(path, text))

    write(out.out_dir / "results.csv", results.records.to_csv(index=False))
    write(out.out_dir / "speed.csv", results.speed.to_csv(index=False))

    write(out.out_dir / "preamble.tex", latex.preamble())
    for old in tables.OLD_TABLE_NAMES:
        _remove_stale(tdir, old, ("tex", "md", "csv"))
    built = {t.name: t for t in tables.all_tables(results, paper_backbone, baseline)}
    markdown = []
    for name in tables.TABLE_NAMES:
        t = built.get(name)
        if t is None:
            out.missing.append(name)
            _remove_stale(tdir, name, ("tex", "md", "csv"))
            continue
        write(tdir / f"{name}.tex", t.to_latex())
        write(tdir / f"{name}.md", t.to_markdown())
        write(tdir / f"{name}.csv", t.to_csv())
        markdown.append(t.to_markdown())
        out.tables.append(name)

    drawn = {stem: (caption, fig) for stem, caption, fig in figs.all_figures(results)}
    not_drawn = figs.why_not(results, list(drawn))
    captions = []
    for stem, caption, _ in figs.FIGURES:
        if stem not in drawn:
            log.info("figure %s not written: %s", stem, not_drawn[stem])
            out.missing.append(stem)
            _remove_stale(fdir, stem, ("pdf", "png"))
            continue
        out.files += figs.save_figure(drawn[stem][1], fdir, stem)
        out.figures.append(stem)
        captions.append((f"figures/{stem}.pdf", caption, f"fig:{stem}"))
        markdown.append(f"![{caption}](figures/{stem}.png)\n")

    summary = _summary(results, sources, paper_backbone, out.missing, not_drawn)
    write(out.out_dir / "report.md", "# LightRetriever suite report\n\n" + "\n".join(f"{s}  " for s in summary)
          + "\n\n" + "\n".join(markdown))
    write(out.out_dir / "findings.md", findings_markdown(findings(results)) + "\n")
    tex = out.out_dir / "report.tex"
    write(tex, latex.report_tex("LightRetriever suite report", summary,
                                [f"tables/{n}.tex" for n in out.tables], captions))
    if pdf:
        out.pdf = latex.compile_pdf(tex, timeout=latex_timeout)
        out.pages = latex.pdf_page_count(out.pdf)
        out.files += [out.pdf, out.out_dir / "report.log"]
        if page_images:  # pages/page-<n>.png: the compiled report, readable without a PDF viewer
            out.page_images = latex.page_images(out.pdf, out.out_dir / "pages")
            out.files += out.page_images
    return out
