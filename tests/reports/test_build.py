"""reports.build and `lr report`: the whole report from the fixture ledger compiles with pdflatex
(required, no skip) into one page per table and figure; user errors are exit code 2, one line."""
from __future__ import annotations

import re

import pytest

from lr_core.cli import main
from lr_core.errors import DataError
from reports.build import write_report
from reports.collect import SkippedResultWarning
from reports.latex import pages_in_log, pdf_page_count
from tests.reports.ledger import SMOL, write_metrics

TABLES = ["table1_speed", "table2_main", "table3_4_ablations", "table5_kl", "table9_11_per_dataset",
          "paper_vs_ours_main", "paper_vs_ours_per_dataset", "paper_vs_ours_ablations", "paper_vs_ours_kl",
          "paper_vs_ours_speed", "training_losses"]
FIGURES = ["fig5_representations", "fig6_mrl_topk", "speed_quality", "learning_curves"]


def test_full_report_compiles_with_one_page_per_table_and_figure(ledger, tmp_path):
    out_dir = tmp_path / "report"
    out = write_report([ledger], out_dir, paper_backbone="Llama3.1-8b", page_images=True)
    assert out.tables == TABLES and out.figures == FIGURES and out.missing == []
    # pdftoppm: one PNG per page, in page order
    assert [p.name for p in out.page_images] == [f"page-{i:02d}.png" for i in range(1, 17)]
    assert all(p.stat().st_size > 1000 for p in out.page_images)
    # 1 summary page + 11 tables + 4 figures, counted in the PDF itself and cross-checked with the log
    assert out.pages == pdf_page_count(out_dir / "report.pdf") == pages_in_log(out_dir / "report.log") == 16
    tex = (out_dir / "report.tex").read_text()
    inputs = re.findall(r"\\input\{(.+?)\}", tex)
    graphics = re.findall(r"\\includegraphics\[[^]]*\]\{(.+?)\}", tex)
    assert inputs == [f"tables/{n}.tex" for n in TABLES] and graphics == [f"figures/{f}.pdf" for f in FIGURES]
    # every table and figure has a caption and a stable label; the packages are the preamble snippet's
    assert re.findall(r"\\label\{(fig:.+?)\}", tex) == [f"fig:{f}" for f in FIGURES]
    for name in TABLES:
        assert f"\\label{{tab:{name}}}" in (out_dir / "tables" / f"{name}.tex").read_text()
        assert (out_dir / "tables" / f"{name}.tex").read_text().count("\\caption{") == 1
    assert (out_dir / "preamble.tex").read_text() in tex
    for name in TABLES:
        for ext in ("tex", "md", "csv"):
            assert (out_dir / "tables" / f"{name}.{ext}").stat().st_size > 0
        assert (out_dir / "tables" / f"{name}.md").read_text() in (out_dir / "report.md").read_text()
    for stem in FIGURES:
        assert (out_dir / "figures" / f"{stem}.png").stat().st_size > 0
    assert "Paper comparisons use the paper's Llama3.1-8b numbers" in tex
    assert (out_dir / "findings.md").read_text().count("\n## ") == 7  # reports.findings, tested in test_findings
    assert (out_dir / "results.csv").read_text().count("metrics.json") == 24
    assert "0 of 24 quality results record their seed and 0 keep per-query scores" in tex  # the fixture is old-style
    # atomic writes and the pdflatex build directory leave nothing behind
    assert not [p for p in out_dir.rglob("*") if p.name.startswith(".")]


def test_report_without_some_results_says_so_and_drops_stale_files(tmp_path):
    out_dir = tmp_path / "report"
    first = tmp_path / "first"
    write_metrics(first, "scifact", "kl", SMOL, "dense", 0.561, run="kl")
    write_metrics(first, "scifact", "lightretriever", SMOL, "dense", 0.552, run="lr")
    write_metrics(first, "scifact", "mrl", SMOL, "dense", 0.45, run="mrl", mrl_dim=64)
    before = write_report([first], out_dir, pdf=False)
    assert "table5_kl" in before.tables and "fig6_mrl_topk" in before.figures
    assert (out_dir / "tables" / "table5_kl.tex").exists() and (out_dir / "figures" / "fig6_mrl_topk.pdf").exists()
    only_bm25 = tmp_path / "bm25only"
    write_metrics(only_bm25, "scifact", "bm25", "bm25", "bm25", 0.665, run="bm25")
    out = write_report([only_bm25], out_dir, pdf=False)
    assert out.tables == ["table2_main", "table9_11_per_dataset", "paper_vs_ours_main", "paper_vs_ours_per_dataset"]
    assert "table5_kl" in out.missing and "fig6_mrl_topk" in out.missing
    assert not (out_dir / "tables" / "table5_kl.tex").exists() and not (out_dir / "figures" / "fig6_mrl_topk.pdf").exists()
    assert "Not produced (no results for them): table1" in (out_dir / "report.tex").read_text()
    assert "Figure fig6\\_mrl\\_topk not drawn: no result with an MRL dimension or a sparse top-k." in (
        out_dir / "report.tex").read_text()
    assert out.pdf is None and not (out_dir / "report.pdf").exists()


def run_cli(capsys, *argv):
    code = main(["report", *argv])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_cli_report_with_a_corrupt_file_warns_and_finishes(tmp_path, capsys):
    runs = tmp_path / "runs"
    write_metrics(runs, "scifact", "bm25", "bm25", "bm25", 0.665, run="bm25")
    write_metrics(runs, "scifact", "lightretriever", SMOL, "hybrid", 0.603, run="lr")
    broken = runs / "broken" / "metrics.json"
    broken.parent.mkdir()
    broken.write_text("{")
    code, out, err = run_cli(capsys, str(runs), "--out", str(tmp_path / "r"), "--no-pdf")
    assert code == 0
    assert err.strip() == f"warning: skipped {broken}: invalid JSON at line 1 column 2 (Expecting property name " \
                          "enclosed in double quotes)"
    assert out.splitlines()[:2] == [("tables: table2_main, table9_11_per_dataset, paper_vs_ours_main, "
                                     "paper_vs_ours_per_dataset"), "figures: fig5_representations"]
    assert f"report: {tmp_path / 'r' / 'report.tex'}" in out
    assert str(broken) in (tmp_path / "r" / "tables" / "table2_main.md").read_text()


@pytest.mark.parametrize("argv, message", [
    ([], "give at least one RESULTS_DIR"),
    (["{missing}"], "results path not found"),
    (["{empty}"], "no readable metrics.json or speed.json under"),
    (["{ledger}", "--paper-backbone", "Llama9"], "unknown paper backbone 'Llama9'"),
    (["{ledger}", "--wandb", "no-slash"], "--wandb expects ENTITY/PROJECT"),
    (["{ledger}", "--wandb", "{empty}"], "no offline run (run-*.wandb) under"),
    (["{ledger}", "--baseline", "symmetric"], "--baseline expects VARIANT:REPRESENTATION"),
])
def test_cli_user_errors_are_one_line_exit_2(argv, message, ledger, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    paths = {"missing": tmp_path / "missing", "empty": tmp_path / "empty", "ledger": ledger}
    code, _, err = run_cli(capsys, *[a.format(**paths) for a in argv], "--out", str(tmp_path / "r"), "--no-pdf")
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_only_corrupt_files_is_a_data_error_naming_them(tmp_path):
    bad = tmp_path / "runs" / "metrics.json"
    bad.parent.mkdir()
    bad.write_text("[1, 2]")
    with pytest.warns(SkippedResultWarning), pytest.raises(DataError, match=f"{bad}: expected a JSON object"):
        write_report([tmp_path / "runs"], tmp_path / "r", pdf=False)
