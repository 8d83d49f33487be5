"""reports.latex: escaping, the booktabs rendering of a small table, and pdflatex failures that
name the log file and leave the previous PDF in place. pdflatex is required (no skip)."""
from __future__ import annotations

import pytest

from lr_core.errors import ConfigError
from reports.latex import LatexError, compile_pdf, escape, pages_in_log, pdf_page_count, preamble, report_tex
from reports.table_model import Cell, Column, Row, Table


def test_escape():
    assert escape("a_b & 50% #1 {x} ~ ^") == r"a\_b \& 50\% \#1 \{x\} \textasciitilde{} \textasciicircum{}"
    assert escape("\u0394 \u2020") == r"$\Delta$ \textsuperscript{\dag}"
    assert escape("/runs/a_b/m.json", breakable=True) == r"/\allowbreak{}runs/\allowbreak{}a\_b/\allowbreak{}m.json"


def test_table_to_latex_groups_sections_and_notes():
    t = Table("t_x", "Caption & more", ["Model"], [Column("nDCG@10", "max", group="sci_fact"),
                                                   Column("\u0394", None, group="sci_fact"),
                                                   Column("QPS", "max")])
    t.rows = [Row(["a"], [Cell(61.24), Cell(-1.25, "delta", rank=False), Cell(12.0, "qps")], "s1"),
              Row(["b_2"], [Cell(None), Cell(None, "delta", rank=False), Cell(1500.4, "qps", marks="\u2020")], "s2")]
    t.notes = ["\u2020 see runs/x_y"]
    assert t.to_latex() == r"""% t_x: needs the packages of reports.latex.preamble() (booktabs, graphicx)
\begin{table}[!htbp]
\centering
\caption{Caption \& more}\label{tab:t_x}
\smallskip
\resizebox{\ifdim\width>\linewidth\linewidth\else\width\fi}{!}{%
\begin{tabular}{lrrr}
\toprule
 & \multicolumn{2}{c}{sci\_fact} &  \\
\cmidrule(lr){2-3}
Model & nDCG@10 & $\Delta$ & QPS \\
\midrule
a & \textbf{61.2} & $-$1.2 & 12.0 \\
\midrule
b\_2 & -- & -- & \textbf{1500}\textsuperscript{\dag} \\
\bottomrule
\end{tabular}}
\par\smallskip
\begin{minipage}{\linewidth}\footnotesize\raggedright
\textsuperscript{\dag} see runs/\allowbreak{}x\_y\par
\end{minipage}
\end{table}
"""


def _doc(body: str) -> str:
    return ("\\documentclass{article}\n\\ifdefined\\pdfobjcompresslevel\\pdfobjcompresslevel=0\\fi\n"
            f"\\begin{{document}}\n{body}\n\\end{{document}}\n")


def test_compile_and_count_pages(tmp_path):
    tex = tmp_path / "doc.tex"
    tex.write_text(_doc("one\\clearpage two\\clearpage three"))
    pdf = compile_pdf(tex)
    assert pdf == tmp_path / "doc.pdf" and pdf_page_count(pdf) == 3 == pages_in_log(tmp_path / "doc.log")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["doc.log", "doc.pdf", "doc.tex"]  # build dir removed


def test_page_count_refuses_compressed_object_streams(tmp_path):
    tex = tmp_path / "doc.tex"
    tex.write_text("\\documentclass{article}\\begin{document}one\\clearpage two\\end{document}\n")
    pdf = compile_pdf(tex)
    assert pages_in_log(tmp_path / "doc.log") == 2
    with pytest.raises(ValueError, match="compressed object streams"):
        pdf_page_count(pdf)  # better no answer than a wrong one (0)


def test_failure_names_the_log_and_keeps_the_old_pdf(tmp_path):
    tex = tmp_path / "doc.tex"
    tex.write_text(_doc("\\undefinedcommandhere"))
    (tmp_path / "doc.pdf").write_bytes(b"old")
    with pytest.raises(LatexError) as err:
        compile_pdf(tex)
    assert str(tmp_path / "doc.log") in str(err.value) and "Undefined control sequence" in str(err.value)
    assert "Undefined control sequence" in (tmp_path / "doc.log").read_text()
    assert (tmp_path / "doc.pdf").read_bytes() == b"old"


def test_timeout_is_a_latex_error(tmp_path):
    tex = tmp_path / "doc.tex"
    tex.write_text(_doc("x"))
    with pytest.raises(LatexError, match=r"timed out after 0\.001 s.*doc\.log"):
        compile_pdf(tex, timeout=0.001)


def test_missing_pdflatex_is_a_config_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigError, match="pdflatex not found"):
        compile_pdf(tmp_path / "doc.tex")


def test_a_table_compiles_with_the_preamble_snippet_alone(tmp_path):
    """What a paper pastes: preamble() plus tables/<name>.tex, in a bare article (no geometry)."""
    t = Table("wide", "A wide table", ["Model"], [Column(f"c{i}", "max", group="g") for i in range(14)])
    t.rows = [Row(["m_1"], [Cell(50.0 + i, std=1.25, n=3) for i in range(14)])]
    (tmp_path / "wide.tex").write_text(t.to_latex())
    tex = tmp_path / "doc.tex"
    tex.write_text("\\documentclass{article}\n" + preamble() +
                   "\\ifdefined\\pdfobjcompresslevel\\pdfobjcompresslevel=0\\fi\n"
                   "\\begin{document}\n\\input{wide.tex}\n\\end{document}\n")
    compile_pdf(tex)
    log = (tmp_path / "doc.log").read_text(encoding="latin-1")
    assert "Overfull \\hbox" not in log  # \resizebox shrank it to the line
    assert "(1 page" in log  # compiled: -halt-on-error stops at any error, e.g. a package missing
    assert preamble().splitlines() == ["\\usepackage{booktabs}  % \\toprule, \\midrule, \\cmidrule, \\bottomrule",
                                       "\\usepackage{graphicx}  % \\resizebox (wide tables) and \\includegraphics "
                                       "(figures)"]


def test_report_tex_uses_only_the_preamble_and_labels_figures():
    tex = report_tex("T", ["s"], ["tables/a.tex"], [("figures/f.pdf", "A figure", "fig:f")])
    uses = [line for line in tex.splitlines() if line.startswith("\\usepackage")]
    assert uses == ["\\usepackage[margin=2cm]{geometry}", *preamble().splitlines()]
    assert "\\caption{A figure}\\label{fig:f}" in tex
