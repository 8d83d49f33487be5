"""Report figures (matplotlib, no display needed), each saved as PDF and PNG.

    from reports.collect import collect
    from reports import figures
    results = collect(["runs/demo"])
    fig = figures.fig5_representations(results)       # None when there is nothing to plot
    figures.save_figure(fig, "out/figures", "fig5_representations")   # -> [pdf, png]
    figures.all_figures(results)                      # [(stem, caption, Figure)] that have data

- Figure 5 style: LightRetriever dense / sparse / hybrid nDCG@10 per backbone (one panel per data set).
- Figure 6 style: nDCG@10 against the MRL dimension (``settings.mrl_dim``) and against the
  sparse top-k (``settings.sparse_top_k``), one line per backbone / variant / representation / data set.
- Speed vs quality: queries per second (log scale) against nDCG@10, from speed.json files.

Figures are built with ``matplotlib.figure.Figure`` directly (no pyplot), so nothing global
changes and no window can open; the backend is Agg all the same.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before anything imports pyplot: batch jobs and CI have no display

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter, ScalarFormatter

from lr_core.io import atomic_path
from reports.collect import Results, speed_with_quality

REPS = ("dense", "sparse", "hybrid")


def _default_settings(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["mrl_dim"].isna() & df["sparse_top_k"].isna()] if not df.empty else df


def fig5_representations(results: Results) -> Figure | None:
    """Grouped bars: for each backbone, LightRetriever's dense, sparse and hybrid nDCG@10 x 100
    (several results of one key are averaged, as in the tables)."""
    df = _default_settings(results.records)
    if df.empty:
        return None
    df = df[(df["setting"] == "lightretriever") & df["representation"].isin(REPS)]
    if df.empty:
        return None
    datasets = sorted(df["dataset"].unique())
    backbones = sorted(df["backbone"].unique())
    fig = Figure(figsize=(max(4.0, 3.2 * len(datasets)), 3.4), layout="constrained")
    axes = fig.subplots(1, len(datasets), squeeze=False)[0]
    width = 0.8 / len(REPS)
    for ax, d in zip(axes, datasets):
        sub = df[df["dataset"] == d].groupby(["backbone", "representation"])["ndcg@10"].mean()
        for k, rep in enumerate(REPS):
            ys = [100 * sub.get((b, rep), float("nan")) for b in backbones]
            ax.bar([i + (k - 1) * width for i in range(len(backbones))], ys, width, label=rep)
        ax.set_xticks(range(len(backbones)), backbones, rotation=15, fontsize=8)
        ax.set_title(d)
        ax.set_ylabel("nDCG@10 x 100")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=len(REPS), fontsize=8)
    return fig


def fig6_mrl_topk(results: Results) -> Figure | None:
    """Two panels: nDCG@10 vs the MRL dimension, and vs the sparse top-k (log2 x axes)."""
    df = results.records
    if df.empty:
        return None
    panels = (("mrl_dim", "MRL dense dimension"), ("sparse_top_k", "sparse top-k (document terms)"))
    if all(df[col].isna().all() for col, _ in panels):
        return None
    fig = Figure(figsize=(8.0, 4.2), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, (col, xlabel) in zip(axes, panels):
        sub = df[df[col].notna()]
        ax.set_xlabel(xlabel)
        ax.set_ylabel("nDCG@10 x 100")
        if sub.empty:
            ax.text(0.5, 0.5, "no results", ha="center", va="center", transform=ax.transAxes)
            continue
        line_key = ["backbone", "variant", "representation", "dataset"]
        for key, g in sub.groupby(line_key):
            pts = g.groupby(col)["ndcg@10"].mean().sort_index()
            ax.plot(pts.index.astype(int), 100 * pts.to_numpy(), marker="o", label=" / ".join(key))
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(sub[col].dropna().astype(int).unique()))
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        # below the panel: line names (backbone / variant / representation / data set) are long
        ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.22))
    return fig


def speed_quality(results: Results) -> Figure | None:
    """Scatter of queries per second (log x) against nDCG@10 x 100, one labelled point per model."""
    pts = speed_with_quality(results)
    pts = pts[pts["ndcg@10"].notna()] if not pts.empty else pts
    if pts.empty:
        return None
    fig = Figure(figsize=(5.0, 3.6), layout="constrained")
    ax = fig.subplots()
    ax.scatter(pts["qps"], 100 * pts["ndcg@10"])
    for _, r in pts.iterrows():
        ax.annotate(r["model"], (r["qps"], 100 * r["ndcg@10"]), textcoords="offset points", xytext=(4, 4),
                    fontsize=7)
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())  # the default labels every minor tick: unreadable
    ax.margins(x=0.25, y=0.15)  # room for the point labels
    ax.set_xlabel("queries per second (log scale)")
    ax.set_ylabel("nDCG@10 x 100")
    return fig


def save_figure(fig: Figure, out_dir: str | Path, stem: str) -> list[Path]:
    """``stem.pdf`` and ``stem.png`` in ``out_dir``, each written atomically."""
    out = []
    for fmt in ("pdf", "png"):
        path = Path(out_dir) / f"{stem}.{fmt}"
        # no creation date: the same results give byte-identical PDFs
        meta = {"CreationDate": None} if fmt == "pdf" else {}
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=150, metadata=meta)
        out.append(path)
    return out


FIGURES = (
    ("fig5_representations", "Figure 5 style: LightRetriever dense / sparse / hybrid nDCG@10 per backbone.",
     fig5_representations),
    ("fig6_mrl_topk", "Figure 6 style: nDCG@10 against the MRL dimension and against the sparse top-k.",
     fig6_mrl_topk),
    ("speed_quality", "Speed vs quality: queries per second against nDCG@10.", speed_quality),
)


def all_figures(results: Results) -> list[tuple[str, str, Figure]]:
    """(stem, caption, figure) for every figure that has data, in the report's order."""
    built = [(stem, caption, fn(results)) for stem, caption, fn in FIGURES]
    return [b for b in built if b[2] is not None]
