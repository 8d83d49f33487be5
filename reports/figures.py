"""Report figures (matplotlib, no display needed), each saved as vector PDF and PNG.

    from reports.collect import collect
    from reports import figures
    results = collect(["runs/demo"])
    fig = figures.fig5_representations(results)       # None when there is nothing to plot
    figures.save_figure(fig, "out/figures", "fig5_representations")   # -> [pdf, png]
    figures.all_figures(results)                      # [(stem, caption, Figure)] that have data
    figures.why_not(results)                          # {stem: reason} for the figures not drawn

- Figure 5 style: LightRetriever dense / sparse / hybrid nDCG@10 per backbone (one panel per data set);
  every bar carries its value, so a bar of height 0 still reads as 0.0.
- Figure 6 style: nDCG@10 against the MRL dimension (``settings.mrl_dim``) and against the
  sparse top-k (``settings.sparse_top_k``), one line per backbone / variant / representation / data
  set; a panel without results is not drawn (the figure has one panel then).
- Speed vs quality: queries per second (log scale) against nDCG@10, from speed.json files; point
  labels are placed so that no two overlap (``place_labels``).
- Learning curves: each contrastive training loss against the step, one line per run, with the
  uniform-guess level dashed (``results.logs``, reports.training_logs).

Names are the registered display names (``reports.names``). A figure without data is not
drawn; ``why_not`` says why, and ``lr report`` logs it and lists it on the report's first page.
Figures are built with ``matplotlib.figure.Figure`` directly (no pyplot), so nothing global
changes and no window can open; the backend is Agg all the same.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before anything imports pyplot: batch jobs and CI have no display

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.ticker import MaxNLocator, NullFormatter, ScalarFormatter

from lr_core.io import atomic_path
from reports import names
from reports.collect import Results, speed_with_quality
from reports.training_logs import CE_TERMS, TERM_NAMES

REPS = ("dense", "sparse", "hybrid")
FIG5_SETTING = "lightretriever"
SMOOTH = 10  # learning curves: steps per rolling mean (one step of 4 queries is noisy)


def _new_figure(**kw) -> Figure:
    """A Figure with an Agg canvas of its own (text extents need a renderer; no pyplot)."""
    fig = Figure(**kw)
    FigureCanvasAgg(fig)
    return fig


def _default_settings(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["mrl_dim"].isna() & df["sparse_top_k"].isna()] if not df.empty else df


def _fig5_data(results: Results) -> pd.DataFrame:
    df = _default_settings(results.records)
    if df.empty:
        return df
    return df[(df["setting"] == FIG5_SETTING) & df["representation"].isin(REPS)]


def fig5_representations(results: Results) -> Figure | None:
    """Grouped bars: for each backbone, LightRetriever's dense, sparse and hybrid nDCG@10 x 100
    (several results of one key are averaged, as in the tables), each bar labelled with its value."""
    df = _fig5_data(results)
    if df.empty:
        return None
    datasets = sorted(df["dataset"].unique())
    backbones = sorted(df["backbone"].unique())
    fig = _new_figure(figsize=(max(4.0, 3.2 * len(datasets)), 3.6), layout="constrained")
    axes = fig.subplots(1, len(datasets), squeeze=False)[0]
    width = 0.8 / len(REPS)
    top = 100 * float(df["ndcg@10"].max())
    for ax, d in zip(axes, datasets):
        sub = df[df["dataset"] == d].groupby(["backbone", "representation"])["ndcg@10"].mean()
        for k, rep in enumerate(REPS):
            ys = [100 * sub.get((b, rep), float("nan")) for b in backbones]
            xs = [i + (k - 1) * width for i in range(len(backbones))]
            bars = ax.bar(xs, ys, width, label=names.representation(rep))
            # the value on every bar: a zero-height bar is otherwise invisible
            for x, y, bar in zip(xs, ys, bars):
                if y == y:  # not NaN (no result: no bar, no label)
                    ax.annotate(f"{y:.1f}", (x, y), xytext=(0, 2), textcoords="offset points", ha="center",
                                va="bottom", rotation=90, fontsize=6, color=bar.get_facecolor())
        ax.set_xticks(range(len(backbones)), [names.backbone(b) for b in backbones], fontsize=8)
        ax.set_ylim(0, max(1.0, top) * 1.35)  # room for the value labels above the tallest bar
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_title(names.dataset(d))
        ax.set_ylabel("nDCG@10 x 100")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=len(REPS), fontsize=8)
    return fig


FIG6_PANELS = (("mrl_dim", "MRL dense dimension"), ("sparse_top_k", "sparse top-k (document terms)"))


def _line_label(key: tuple, multi_backbone: bool) -> str:
    backbone, variant, rep, dataset = key
    text = f"{names.variant(variant)} ({names.representation(rep)}), {names.dataset(dataset)}"
    return f"{names.backbone(backbone)}: {text}" if multi_backbone else text


def fig6_mrl_topk(results: Results) -> Figure | None:
    """nDCG@10 vs the MRL dimension, and vs the sparse top-k (log2 x axes): one panel for each
    that has results, none for one that has not."""
    df = results.records
    if df.empty:
        return None
    panels = [(col, xlabel) for col, xlabel in FIG6_PANELS if df[col].notna().any()]
    if not panels:
        return None
    fig = _new_figure(figsize=(4.6 * len(panels), 4.4), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (col, xlabel) in zip(axes, panels):
        sub = df[df[col].notna()]
        multi = sub["backbone"].nunique() > 1  # name the backbone only when lines differ in it
        ax.set_xlabel(xlabel)
        ax.set_ylabel("nDCG@10 x 100")
        for key, g in sub.groupby(["backbone", "variant", "representation", "dataset"]):
            pts = g.groupby(col)["ndcg@10"].mean().sort_index()
            ax.plot(pts.index.astype(int), 100 * pts.to_numpy(), marker="o", label=_line_label(key, multi))
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(sub[col].dropna().astype(int).unique()))
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_ylim(bottom=min(0.0, ax.get_ylim()[0]))  # zero on the axis: values near 0 read as such
        # below the panel: line names are long
        ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.2))
    return fig


def _overlaps(a, b, pad: float = 4.0) -> bool:
    return not (a.x1 + pad <= b.x0 or b.x1 + pad <= a.x0 or a.y1 + pad <= b.y0 or b.y1 + pad <= a.y0)


def place_labels(fig: Figure, texts: list, step_points: float = 9.0, tries: int = 40) -> None:
    """Move annotation labels (offsets in points) until no two overlap. Each label, in order of
    its point's height, tries the four corners around its point (right side first; left side
    first for points in the right half of the axes, so labels stay inside), then moves further
    up and down by ``step_points`` until it is clear of every label placed before it and, where
    possible, inside its axes. The layout engine is frozen first, so positions stay put."""
    fig.canvas.draw()  # runs the layout once
    fig.set_layout_engine("none")
    renderer = fig.canvas.get_renderer()
    # every other text of the figure (tick labels, axis labels, titles) is an obstacle too
    placed = [Text.get_window_extent(t, renderer) for t in fig.findobj(Text)
              if t not in texts and t.get_visible() and t.get_text().strip()]
    for text in sorted(texts, key=lambda t: (t.xy[1], t.xy[0])):
        ax_box = text.axes.get_window_extent(renderer)
        point_x = text.axes.transData.transform(text.xy)[0]
        right = [(5, 3, "left"), (5, -11, "left")]
        left = [(-5, 3, "right"), (-5, -11, "right")]
        corners = (left + right) if point_x > (ax_box.x0 + ax_box.x1) / 2 else (right + left)
        shifts = [step_points * k * sign for k in range(1, tries) for sign in (1, -1)]
        candidates = corners + [(dx, dy + s, ha) for s in shifts for dx, dy, ha in corners[:1]]
        best = None
        for dx, dy, ha in candidates:
            text.xyann = (dx, dy)
            text.set_ha(ha)
            box = Text.get_window_extent(text, renderer)  # the text alone, not its leader line
            if any(_overlaps(box, other) for other in placed):
                continue
            inside = ax_box.x0 <= box.x0 and box.x1 <= ax_box.x1 and ax_box.y0 <= box.y0 and box.y1 <= ax_box.y1
            if inside:
                best = (dx, dy, ha)
                break
            best = best or (dx, dy, ha)  # clear of the others, though outside the axes
        dx, dy, ha = best or candidates[0]
        text.xyann = (dx, dy)
        text.set_ha(ha)
        placed.append(Text.get_window_extent(text, renderer))


def _common_prefix(labels: list[str]) -> str:
    """The backbone name all labels start with ("SmolLM2-135M-Instruct "), or ""."""
    first = labels[0].split(" ", 1)[0] + " " if labels and " " in labels[0] else ""
    return first if first and len(labels) > 1 and all(x.startswith(first) for x in labels) else ""


def speed_quality(results: Results) -> Figure | None:
    """Scatter of queries per second (log x) against nDCG@10 x 100, one labelled point per model;
    a backbone name shared by every label moves to the title."""
    pts = speed_with_quality(results)
    pts = pts[pts["ndcg@10"].notna()] if not pts.empty else pts
    if pts.empty:
        return None
    fig = _new_figure(figsize=(5.6, 4.0), layout="constrained")
    ax = fig.subplots()
    ax.scatter(pts["qps"], 100 * pts["ndcg@10"])
    prefix = _common_prefix(list(pts["model"]))
    devices = sorted({d for d in pts["device"] if isinstance(d, str)})
    title = ", ".join(x for x in (prefix.strip(), "; ".join(devices)) if x)
    if title:
        ax.set_title(title, fontsize=9)
    # a thin leader line from each label to its point: a label moved away still says whose it is
    leader = {"arrowstyle": "-", "lw": 0.5, "color": "0.5", "shrinkA": 1, "shrinkB": 3}
    labels = [ax.annotate(r["model"][len(prefix):], (r["qps"], 100 * r["ndcg@10"]), textcoords="offset points",
                          xytext=(5, 3), fontsize=7, annotation_clip=False, arrowprops=leader)
              for _, r in pts.iterrows()]
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())  # the default labels every minor tick: unreadable
    ax.margins(x=0.3, y=0.3)  # room for the point labels
    lo, hi = ax.get_ylim()
    ax.set_ylim(min(lo, -1.0), hi)  # points at nDCG 0 sit above the axis, not on it
    ax.set_xlabel("queries per second (log scale)")
    ax.set_ylabel("nDCG@10 x 100")
    place_labels(fig, labels)
    return fig


def learning_curves(results: Results) -> Figure | None:
    """Each contrastive training loss against the step (a rolling mean over ``SMOOTH`` steps), one
    panel per term and one line per run (a colour per variant, a line style per seed), with the
    uniform-guess level ln N dashed (reports.training_logs)."""
    logs = results.logs
    if logs.empty:
        return None
    terms = [t for t in CE_TERMS if t in set(logs["term"])]
    fig = _new_figure(figsize=(4.2 * len(terms), 4.2), layout="constrained")
    fig.get_layout_engine().set(wspace=0.08)  # room between panels for their end tick labels
    axes = fig.subplots(1, len(terms), squeeze=False, sharey=True)[0]
    variants = list(dict.fromkeys(logs.sort_values(["variant", "seed"])["variant"]))
    colours = {v: f"C{i % 10}" for i, v in enumerate(variants)}
    seeds = sorted({s for s in logs["seed"].dropna()})
    styles = {s: ("-", "--", ":", "-.")[i % 4] for i, s in enumerate(seeds)}
    for ax, term in zip(axes, terms):
        sub = logs[logs["term"] == term]
        for (variant, seed, _), g in sub.groupby(["variant", "seed", "source"], dropna=False, sort=True):
            g = g.sort_values("step")
            label = names.variant(variant) + ("" if pd.isna(seed) else f" (seed {seed})")
            ax.plot(g["step"], g["value"].rolling(SMOOTH, min_periods=1).mean(), lw=1.0, color=colours[variant],
                    ls=styles.get(seed, "-"), label=label)
        for level in sorted(set(sub["uniform"].round(4))):
            ax.axhline(level, color="0.4", lw=0.8, ls=(0, (4, 3)))
            ax.annotate(f"uniform {level:.2f}", (1.0, level), xycoords=("axes fraction", "data"), ha="right",
                        va="bottom", fontsize=6, color="0.3")
        ax.set_title(TERM_NAMES[term], fontsize=9)
        ax.set_xlabel("training step")
        ax.set_xlim(0, max(1, int(sub["step"].max())))
        ax.xaxis.set_major_locator(MaxNLocator(5, integer=True))  # tick labels of neighbouring panels stay apart
        ax.set_ylim(bottom=0.0)
    axes[0].set_ylabel(f"cross-entropy (rolling mean, {SMOOTH} steps)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=6, loc="outside lower center", ncol=min(4, len(labels)))
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
    ("fig5_representations", "Figure 5 style: LightRetriever dense / sparse / hybrid nDCG@10 x 100 per backbone "
     "and data set (each bar labelled with its value).", fig5_representations),
    ("fig6_mrl_topk", "Figure 6 style: nDCG@10 x 100 against the MRL dense dimension and against the sparse "
     "top-k kept per document.", fig6_mrl_topk),
    ("speed_quality", "Speed vs quality: queries per second (log scale, our hardware) against nDCG@10 x 100.",
     speed_quality),
    ("learning_curves", "Learning curves: each contrastive training loss against the step, one line per run; "
     "dashed: a uniform guess over the batch's documents (ln N; MRL's dense terms sum one CE per width).",
     learning_curves),
)
WHY_NOT = {
    "fig5_representations": f"no {FIG5_SETTING} dense / sparse / hybrid result at default settings",
    "fig6_mrl_topk": "no result with an MRL dimension or a sparse top-k",
    "speed_quality": "no speed.json with an nDCG@10 (its own, or a matching ledger result)",
    "learning_curves": "no run directory with logs/metrics.csv and config.yaml",
}


def all_figures(results: Results) -> list[tuple[str, str, Figure]]:
    """(stem, caption, figure) for every figure that has data, in the report's order."""
    built = [(stem, caption, fn(results)) for stem, caption, fn in FIGURES]
    return [b for b in built if b[2] is not None]


def why_not(results: Results, drawn: list[str]) -> dict[str, str]:
    """{stem: why it was not drawn} for every figure not in ``drawn``."""
    return {stem: WHY_NOT[stem] for stem, _, _ in FIGURES if stem not in drawn}
