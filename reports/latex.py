"""LaTeX: tables (booktabs), the report document, and compiling it with pdflatex.

    from reports.latex import table_to_latex, report_tex, compile_pdf, pdf_page_count
    tex = table_to_latex(table)                     # a complete table environment
    pdf = compile_pdf(Path("out/report.tex"))       # -> out/report.pdf; LatexError names the log
    pdf_page_count(pdf)

The document needs only pdflatex with booktabs, geometry and graphicx (Debian:
texlive-latex-base, texlive-latex-recommended). Each table and each figure gets a page of its own, so a report of T
tables and F figures has 1 + T + F pages (the first lists the sources and what was left out),
which lets a test check the PDF rather than trust the log.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from lr_core.errors import ConfigError, DataError
from lr_core.io import atomic_write_text

# Characters that LaTeX reads as commands, and the few non-ASCII symbols the tables use.
_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
            "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
            "\N{DAGGER}": r"\textsuperscript{\dag}", "\N{DOUBLE DAGGER}": r"\textsuperscript{\ddag}", "\N{GREEK CAPITAL LETTER DELTA}": r"$\Delta$",
            "\N{MULTIPLICATION SIGN}": r"$\times$", "<": r"\textless{}", ">": r"\textgreater{}",
            "\N{PLUS-MINUS SIGN}": r"$\pm$", "*": r"\textsuperscript{*}"}

# Every package the tables and figures need, in one place: a paper that pastes tables/*.tex
# includes this (``preamble.tex`` beside the report); report.tex uses exactly this and nothing more.
PREAMBLE_PACKAGES = (
    ("booktabs", "\\toprule, \\midrule, \\cmidrule, \\bottomrule"),
    ("graphicx", "\\resizebox (wide tables) and \\includegraphics (figures)"),
)


def preamble() -> str:
    """The preamble snippet (one \\usepackage per line, with what needs it)."""
    return "".join(f"\\usepackage{{{name}}}  % {why}\n" for name, why in PREAMBLE_PACKAGES)


class LatexError(DataError):
    """pdflatex failed or is missing; the message names the log file to read."""


def escape(text: str, breakable: bool = False) -> str:
    """``text`` as LaTeX source; ``breakable`` lets long paths wrap after each slash."""
    out = "".join(_ESCAPES.get(ch, ch) for ch in str(text))
    if any(ord(ch) > 127 for ch in out):  # pdflatex would stop on a character it has no glyph for
        out = "".join(ch if ord(ch) < 128 else "?" for ch in out)
    return out.replace("/", r"/\allowbreak{}") if breakable else out


def _latex_number(text: str) -> str:
    """A minus sign rather than a hyphen; an en dash for a missing value."""
    if text == "-":
        return "--"
    text = text.replace("\N{PLUS-MINUS SIGN}", r"$\pm$")  # mean +- std over seeds
    return "$-$" + text[1:] if text.startswith("-") else text


def table_to_latex(table) -> str:
    """A booktabs ``table`` float: ``\\caption`` (what, which data, which budget) and ``\\label{tab:<name>}``,
    group headers (data sets) over their columns, best values bold, a rule between sections, notes under
    the tabular; wide tables shrink to the line width (``\\resizebox``: graphicx, see ``preamble``)."""
    n_lab, cols = len(table.label_headers), table.columns
    lines = [rf"% {table.name}: needs the packages of reports.latex.preamble() (booktabs, graphicx)",
             r"\begin{table}[!htbp]", r"\centering",
             rf"\caption{{{escape(table.caption)}}}\label{{{table.label}}}", r"\smallskip",
             r"\resizebox{\ifdim\width>\linewidth\linewidth\else\width\fi}{!}{%",
             rf"\begin{{tabular}}{{{'l' * n_lab}{'r' * len(cols)}}}", r"\toprule"]
    if any(c.group for c in cols):
        spans, rules = [], []
        j = 0
        while j < len(cols):
            k = j
            while k + 1 < len(cols) and cols[k + 1].group == cols[j].group:
                k += 1
            width = k - j + 1
            group = escape(cols[j].group or "")
            spans.append(rf"\multicolumn{{{width}}}{{c}}{{{group}}}" if width > 1 else group)
            if cols[j].group:
                rules.append(rf"\cmidrule(lr){{{n_lab + j + 1}-{n_lab + k + 1}}}")
            j = k + 1
        lines.append(" & ".join([""] * n_lab + spans) + r" \\")
        lines.append(" ".join(rules))
    lines.append(" & ".join(escape(h) for h in table.label_headers + [c.header for c in cols]) + r" \\")
    lines.append(r"\midrule")
    section = None
    for row, labels, flags in zip(table.rows, table.shown_labels(), table.bold()):
        if section is not None and row.section != section:
            lines.append(r"\midrule")
        section = row.section
        cells = []
        for c, bold in zip(row.cells, flags):
            text = _latex_number(c.text())
            text = rf"\textbf{{{text}}}" if bold else text
            cells.append(text + escape(c.marks))
        lines.append(" & ".join([escape(x) for x in labels] + cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}}"]
    if table.notes:
        lines.append(r"\par\smallskip")
        lines.append(r"\begin{minipage}{\linewidth}\footnotesize\raggedright")
        lines += [escape(n, breakable=True) + r"\par" for n in table.notes]
        lines.append(r"\end{minipage}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def report_tex(title: str, summary: list[str], tables: list[str], figures: list[tuple[str, str, str]]) -> str:
    """The report document: a first page (``summary`` lines, plain text), then each table file
    (``\\input`` paths relative to the report) and each figure (PDF path, caption, label) on its own
    page. The packages are ``preamble()`` and nothing else (plus the page geometry)."""
    lines = [r"\documentclass[11pt]{article}",
             r"\usepackage[margin=2cm]{geometry}",
             *preamble().splitlines(), r"\setlength{\parindent}{0pt}",
             # R1, R2, ...: LaTeX's own numbers must not read as the paper's (captions name those)
             r"\renewcommand{\thetable}{R\arabic{table}}", r"\renewcommand{\thefigure}{R\arabic{figure}}",
             # objects outside compressed object streams: pages can be counted in the PDF itself
             r"\ifdefined\pdfobjcompresslevel\pdfobjcompresslevel=0\fi",
             r"\begin{document}", rf"\section*{{{escape(title)}}}"]
    lines += [escape(s, breakable=True) + r"\par" for s in summary]
    lines.append(r"\clearpage")
    for path in tables:
        lines += [rf"\input{{{path}}}", r"\clearpage"]
    for path, caption, label in figures:
        lines += [r"\begin{figure}[!htbp]", r"\centering",
                  rf"\includegraphics[width=\linewidth,height=0.8\textheight,keepaspectratio]{{{path}}}",
                  rf"\caption{{{escape(caption)}}}\label{{{label}}}", r"\end{figure}", r"\clearpage"]
    lines.append(r"\end{document}")
    return "\n".join(line for line in lines if line) + "\n"


def _first_error(log: str) -> str:
    for line in log.splitlines():
        if line.startswith("!"):
            return line.lstrip("! ").strip()
    return "no '!' error line in the log"


def compile_pdf(tex_path: Path, timeout: float = 120.0) -> Path:
    """pdflatex ``tex_path`` (in its own directory, so relative \\input paths work) into
    ``<stem>.pdf`` beside it, atomically: the build happens in a temporary directory there and
    the PDF replaces any old one only on success. The log is kept as ``<stem>.log``."""
    tex_path = Path(tex_path)
    exe = shutil.which("pdflatex")
    if exe is None:
        raise ConfigError("pdflatex not found on PATH (Debian: apt-get install texlive-latex-base "
                          "texlive-latex-recommended texlive-fonts-recommended), or use --no-pdf")
    work = tex_path.parent
    log_path = work / f"{tex_path.stem}.log"
    build = Path(tempfile.mkdtemp(dir=work, prefix=".latex-"))
    try:
        cmd = [exe, "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape",
               f"-output-directory={build.name}", tex_path.name]
        try:
            # max_print_line: unwrapped log lines, so errors and the page count read in one piece
            proc = subprocess.run(cmd, check=False, cwd=work, capture_output=True, text=True, timeout=timeout,
                                  stdin=subprocess.DEVNULL,
                                  env={**os.environ, "max_print_line": "10000"})
            failed = proc.returncode != 0
            why = f"exit code {proc.returncode}"
        except subprocess.TimeoutExpired:
            failed, why = True, f"timed out after {timeout:g} s"
        built_log = build / f"{tex_path.stem}.log"
        log = built_log.read_text(encoding="latin-1") if built_log.is_file() else ""
        atomic_write_text(log_path, log)
        pdf = build / f"{tex_path.stem}.pdf"
        if failed or not pdf.is_file():
            raise LatexError(f"pdflatex failed on {tex_path} ({why}: {_first_error(log)}); see {log_path}")
        out = work / f"{tex_path.stem}.pdf"
        os.replace(pdf, out)
        return out
    finally:
        shutil.rmtree(build, ignore_errors=True)


_PAGE = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")


def pdf_page_count(pdf: Path) -> int:
    """Pages of a PDF written with uncompressed object streams (as ``report_tex`` asks pdflatex
    to): the number of ``/Type /Page`` objects. Figures embedded from PDF files become form
    XObjects, not pages, so they do not count."""
    data = Path(pdf).read_bytes()
    pages = len(_PAGE.findall(data))
    if pages == 0 and b"/ObjStm" in data:  # page objects hidden in compressed streams: cannot tell
        raise ValueError(f"{pdf}: page objects are in compressed object streams; compile with "
                         "\\pdfobjcompresslevel=0 to count pages")
    return pages


def pages_in_log(log: Path) -> int | None:
    """The page count pdflatex printed ("Output written on report.pdf (12 pages, ...)")."""
    m = re.search(r"\((\d+) pages?,", Path(log).read_text(encoding="latin-1"))
    return int(m.group(1)) if m else None


def page_images(pdf: Path, out_dir: Path, dpi: int = 90) -> list[Path]:
    """Every page of ``pdf`` as ``out_dir/page-<n>.png`` (pdftoppm, from poppler-utils), so a reader
    can see the compiled report without opening it; older page images there are removed first."""
    exe = shutil.which("pdftoppm")
    if exe is None:
        raise ConfigError("pdftoppm not found on PATH (Debian: apt-get install poppler-utils)")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("page-*.png"):
        old.unlink()
    proc = subprocess.run([exe, "-png", "-r", str(dpi), str(pdf), str(out_dir / "page")], capture_output=True,
                          text=True, timeout=300, stdin=subprocess.DEVNULL, check=False)
    if proc.returncode != 0:
        raise LatexError(f"pdftoppm failed on {pdf} (exit code {proc.returncode}: {proc.stderr.strip()[:200]})")
    return sorted(out_dir.glob("page-*.png"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
