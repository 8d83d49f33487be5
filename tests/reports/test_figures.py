"""reports.figures: each figure is drawn from the fixture ledger and saved as a non-empty PDF and PNG,
no two of its text boxes overlap (checked from matplotlib's text extents), zero values are visible,
legends use display names; without data there is no figure, and why_not says why."""
from __future__ import annotations

import itertools

import matplotlib
import pytest
from matplotlib.text import Text
from PIL import Image

from reports import figures
from reports.collect import collect
from tests.reports.ledger import SMOL, write_bench_speed, write_metrics, write_speed


@pytest.fixture
def results(ledger):
    return collect([ledger])


def _text_boxes(fig):
    """Window extents of every visible, non-empty text of a drawn figure (an annotation's own box,
    without its leader line)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    return [(t.get_text(), Text.get_window_extent(t, renderer)) for t in fig.findobj(Text)
            if t.get_visible() and t.get_text().strip()]


def _overlapping(fig) -> list[tuple[str, str]]:
    boxes = _text_boxes(fig)
    return [(a, b) for (a, ba), (b, bb) in itertools.combinations(boxes, 2)
            if ba.x0 < bb.x1 and bb.x0 < ba.x1 and ba.y0 < bb.y1 and bb.y0 < ba.y1]


def test_every_figure_is_saved_as_pdf_and_png_and_has_no_overlapping_text(results, tmp_path):
    assert matplotlib.get_backend().lower() == "agg"
    drawn = figures.all_figures(results)
    assert [stem for stem, _, _ in drawn] == ["fig5_representations", "fig6_mrl_topk", "speed_quality",
                                              "learning_curves"]
    for stem, _, fig in drawn:
        assert fig.axes and all(ax.has_data() for ax in fig.axes if ax.get_label() != "<colorbar>"), stem
        assert _overlapping(fig) == [], stem
        pdf, png = figures.save_figure(fig, tmp_path / "figs", stem)
        assert pdf.read_bytes().startswith(b"%PDF-") and pdf.stat().st_size > 1000
        with Image.open(png) as im:
            assert im.format == "PNG" and im.size[0] > 300 and im.size[1] > 200
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == sorted(
        f"{s}.{e}" for s, _, _ in drawn for e in ("pdf", "png"))  # no temporary files left behind


def test_figure_contents_follow_the_ledger(results):
    fig5 = figures.fig5_representations(results)
    ax = fig5.axes[0]  # NFCorpus: LightRetriever dense / sparse / hybrid bars for the one backbone
    assert ax.get_title() == "NFCorpus"
    assert [round(b.get_height(), 1) for b in ax.patches] == [28.1, 29.0, 30.5]
    assert [t.get_text() for t in ax.texts] == ["28.1", "29.0", "30.5"]  # each bar labelled with its value
    assert [t.get_text() for t in ax.get_xticklabels()] == ["SmolLM2-135M-Instruct"]
    assert [t.get_text() for t in fig5.legends[0].get_texts()] == ["Dense", "Sparse", "Hybrid"]
    mrl, topk = figures.fig6_mrl_topk(results).axes[:2]
    x, y = mrl.lines[0].get_data()
    assert list(x) == [64, 128, 256] and [round(v, 1) for v in y] == [45.0, 50.0, 53.0]
    assert [t.get_text() for t in mrl.get_legend().get_texts()] == ["LightRetriever + MRL (Dense), SciFact"]
    x, y = topk.lines[0].get_data()
    assert list(x) == [16, 64] and [round(v, 1) for v in y] == [40.0, 52.0]
    assert [t.get_text() for t in topk.get_legend().get_texts()] == ["LightRetriever (Sparse), SciFact"]
    scatter = figures.speed_quality(results).axes[0].collections[0].get_offsets()
    assert sorted((round(q), round(n, 1)) for q, n in scatter) == [(105, 61.2), (833, 60.3)]


def test_learning_curves_one_panel_per_loss_term_with_the_uniform_level(results):
    fig = figures.learning_curves(results)
    full, light, sparse = fig.axes
    assert [ax.get_title() for ax in fig.axes] == ["full dense", "light dense", "light sparse"]
    # full dense: LightRetriever, MRL and symmetric (in variant order); rolling means over 10 steps
    assert [line.get_label() for line in full.lines if not line.get_label().startswith("_")] == [
        "LightRetriever (seed 42)", "LightRetriever + MRL (seed 42)", "Full Symmetric (seed 42)"]
    x, y = full.lines[0].get_data()
    assert list(x) == list(range(60)) and y[0] == 5.0 and y[14] == (5 * 5.0 + 5 * 1.0) / 10 and y[-1] == 1.0
    # dashed uniform levels: ln 16 for everything, and 4 ln 16 for MRL's dense sums (three prefixes + full width)
    levels = lambda ax: sorted(float(a.get_text().removeprefix("uniform ")) for a in ax.texts)  # noqa: E731
    assert levels(full) == levels(light) == [2.77, 11.09] and levels(sparse) == [2.77]
    assert len(sparse.lines) == 2 + 1  # LightRetriever and MRL, and the uniform line


def test_zero_values_are_visible(tmp_path):
    for rep, v in (("dense", 0.0), ("sparse", 0.003), ("hybrid", 0.0)):
        write_metrics(tmp_path, "scifact", "lightretriever", SMOL, rep, v, run="lr")
    ax = figures.fig5_representations(collect([tmp_path])).axes[0]
    assert [t.get_text() for t in ax.texts] == ["0.0", "0.3", "0.0"]  # a zero-height bar still reads as 0.0
    assert ax.get_ylim()[1] >= 1.0  # not squeezed onto the axis line


def test_labels_of_points_at_one_height_do_not_overlap(tmp_path):
    """Three models at nDCG@10 = 0 with similar QPS: their labels used to print on top of each other."""
    for name, qps in (("model-a light dense", 9000.0), ("model-a light sparse", 5800.0),
                      ("model-a light hybrid", 1900.0)):
        write_speed(tmp_path, name.replace(" ", "-"), model=name, num_queries=100, tokenize_s=0.01, encode_s=0.01,
                    search_s=0.01, total_s=100 / qps, **{"ndcg@10": 0.0})
    fig = figures.speed_quality(collect([tmp_path]))
    assert _overlapping(fig) == []
    ax = fig.axes[0]
    assert ax.get_ylim()[0] < 0  # the points at 0 sit above the bottom of the axes


def test_fig6_draws_only_panels_with_data(tmp_path):
    write_metrics(tmp_path, "scifact", "mrl", SMOL, "dense", 0.45, run="mrl", mrl_dim=64)
    write_metrics(tmp_path, "scifact", "mrl", SMOL, "dense", 0.5, run="mrl", mrl_dim=128)
    fig = figures.fig6_mrl_topk(collect([tmp_path]))
    assert len(fig.axes) == 1 and fig.axes[0].get_xlabel() == "MRL dense dimension"
    assert not any("no results" in t.get_text() for t in fig.findobj(Text))


def test_no_data_no_figure_and_why(tmp_path):
    write_metrics(tmp_path, "scifact", "bm25", "bm25", "bm25", 0.665, run="bm25")
    r = collect([tmp_path])
    assert figures.all_figures(r) == []
    why = figures.why_not(r, [])
    assert set(why) == {"fig5_representations", "fig6_mrl_topk", "speed_quality", "learning_curves"}
    assert "MRL" in why["fig6_mrl_topk"]


def test_bench_speed_labels_do_not_overlap(tmp_path):
    write_bench_speed(tmp_path)
    write_metrics(tmp_path, "scifact", "lightretriever", SMOL, "sparse", 0.0, run="lr")
    fig = figures.speed_quality(collect([tmp_path]))
    assert fig is not None and _overlapping(fig) == []
