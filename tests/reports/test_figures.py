"""reports.figures: each figure is drawn from the fixture ledger and saved as a non-empty PDF and PNG;
without data there is no figure."""
from __future__ import annotations

import matplotlib
import pytest
from PIL import Image

from reports import figures
from reports.collect import collect
from tests.reports.ledger import write_metrics


@pytest.fixture
def results(ledger):
    return collect([ledger])


def test_every_figure_is_saved_as_pdf_and_png(results, tmp_path):
    assert matplotlib.get_backend().lower() == "agg"
    drawn = figures.all_figures(results)
    assert [stem for stem, _, _ in drawn] == ["fig5_representations", "fig6_mrl_topk", "speed_quality"]
    for stem, _, fig in drawn:
        pdf, png = figures.save_figure(fig, tmp_path / "figs", stem)
        assert pdf.read_bytes().startswith(b"%PDF-") and pdf.stat().st_size > 1000
        with Image.open(png) as im:
            assert im.format == "PNG" and im.size[0] > 300 and im.size[1] > 200
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == sorted(
        f"{s}.{e}" for s, _, _ in drawn for e in ("pdf", "png"))  # no temporary files left behind


def test_figure_contents_follow_the_ledger(results):
    fig5 = figures.fig5_representations(results)
    ax = fig5.axes[0]  # nfcorpus: LightRetriever dense / sparse / hybrid bars for the one backbone
    assert ax.get_title() == "nfcorpus"
    assert [round(b.get_height(), 1) for b in ax.patches] == [28.1, 29.0, 30.5]
    mrl, topk = figures.fig6_mrl_topk(results).axes[:2]
    x, y = mrl.lines[0].get_data()
    assert list(x) == [64, 128, 256] and [round(v, 1) for v in y] == [45.0, 50.0, 53.0]
    x, y = topk.lines[0].get_data()
    assert list(x) == [16, 64] and [round(v, 1) for v in y] == [40.0, 52.0]
    scatter = figures.speed_quality(results).axes[0].collections[0].get_offsets()
    assert sorted((round(q), round(n, 1)) for q, n in scatter) == [(105, 61.2), (833, 60.3)]


def test_no_data_no_figure(tmp_path):
    write_metrics(tmp_path, "scifact", "bm25", "bm25", "bm25", 0.665, run="bm25")
    r = collect([tmp_path])
    assert figures.all_figures(r) == []
