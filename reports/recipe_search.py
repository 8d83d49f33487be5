"""The recipe-search table: every probe run, its settings, its training losses and its validation scores.

A probe is a sweep run directory (``config.yaml``, ``logs/metrics.csv``, ``wall_time.json`` and
``eval/<dataset>/<representation>/metrics.json``, evaluated on the ``val`` split). The table
shows, per run, what differs from the base recipe, the dense losses averaged over windows of
training steps (how far each still is from a uniform guess, ln of the in-batch documents),
validation nDCG@10 per representation, the sparse documents' mean number of terms (when the
evaluation recorded it), and wall time. Runs whose metrics are on another split
than ``val`` are refused: choosing a recipe never looks at test data.

    python -m reports.recipe_search reports/results/2026-12-01-recipe-search --out README-table.md
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from reports.training_logs import CE_TERMS, WINDOWS, loss_windows, uniform_ce


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and k != "term_weights":
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def probe_row(run_dir: Path, base: dict, windows=WINDOWS) -> dict:
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    flat = _flatten(cfg)
    changed = {k: v for k, v in flat.items() if base.get(k) != v and k not in ("name", "run_dir", "variant")
               and not k.startswith("wandb.")}
    metrics, terms = {}, None
    for path in sorted(run_dir.glob("eval/*/*/metrics.json")):
        rec = json.loads(path.read_text())
        if rec["split"] != "val":
            raise ValueError(f"{path}: split {rec['split']!r}; the recipe search reads the validation split only")
        metrics[rec["representation"]] = rec["ndcg@10"]
        if rec["representation"] == "sparse" and "sparse_docs" in rec:  # recorded since b5a310c
            terms = rec["sparse_docs"]["terms_mean"]
    wall = json.loads((run_dir / "wall_time.json").read_text())["total_seconds"] if (run_dir / "wall_time.json").is_file() else None
    return {"run": run_dir.parent.parent.name + "/" + run_dir.name, "variant": cfg["variant"], "changed": changed,
            "losses": (loss_windows(run_dir / "logs" / "metrics.csv", windows, (*CE_TERMS, "flops"))
                       if (run_dir / "logs" / "metrics.csv").is_file() else {}),
            "uniform": uniform_ce(cfg), "val": metrics, "sparse_terms": terms, "wall_s": wall}


def markdown(rows: list[dict], windows=WINDOWS) -> str:
    reps = ("dense", "sparse", "hybrid", "symmetric")
    win = " / ".join(f"{lo}-{hi - 1}" for lo, hi in windows)
    lines = [f"| run | variant | differs from the base | dense CE full; light (steps {win}) | training FLOPs "
             f"(steps {windows[-1][0]}-{windows[-1][1] - 1}) | val nDCG@10 x100 ({', '.join(reps)}) "
             "| sparse terms / doc | wall |", "|---|---|---|---|---|---|---|---|"]
    fmt = lambda xs: " / ".join("-" if x is None else f"{x:.2f}" for x in xs)
    for r in rows:
        changed = ", ".join(f"`{k}={v}`" for k, v in sorted(r["changed"].items())) or "-"
        losses = "; ".join(fmt(r["losses"][n]) for n in ("full_dense", "light_dense") if n in r["losses"])
        val = ", ".join("-" if rep not in r["val"] else f"{100 * r['val'][rep]:.1f}" for rep in reps)
        wall = "-" if r["wall_s"] is None else f"{r['wall_s'] / 60:.0f} min"
        terms = "-" if r["sparse_terms"] is None else f"{r['sparse_terms']:,.0f}"
        flops = (r["losses"].get("flops") or [None])[-1]
        flops = "-" if flops is None else f"{flops:.2g}"
        lines.append(f"| {r['run']} | {r['variant']} | {changed} | {losses} (ln {r['uniform']:.2f} uniform) | {flops} "
                     f"| {val} | {terms} | {wall} |")
    return "\n".join(lines) + "\n"


def collect(root: Path, base_config: Path, windows=WINDOWS, probes: str = "*") -> list[dict]:
    base = _flatten(yaml.safe_load(base_config.read_text()))
    return [probe_row(p.parent, base, windows) for p in sorted(root.glob(f"{probes}/runs/*/config.yaml"))]


def parse_windows(text: str) -> tuple[tuple[int, int], ...]:
    """``"0-20,20-50"`` -> ((0, 20), (20, 50)): half-open step windows ``[lo, hi)``.

    >>> parse_windows("0-20,80-100")
    ((0, 20), (80, 100))
    """
    out = []
    for part in text.split(","):
        try:
            lo, hi = (int(x) for x in part.split("-"))
        except ValueError:
            raise argparse.ArgumentTypeError(f"--windows: {part!r} is not LO-HI (steps, e.g. 0-50)") from None
        if not 0 <= lo < hi:
            raise argparse.ArgumentTypeError(f"--windows: {part!r} needs 0 <= LO < HI")
        out.append((lo, hi))
    return tuple(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m reports.recipe_search", description=__doc__.split("\n\n")[0])
    p.add_argument("root", type=Path, help="the recipe-search results directory (probe/runs/<run>/...)")
    p.add_argument("--base", type=Path, required=True, help="a resolved config.yaml every probe is compared with")
    p.add_argument("--out", type=Path, help="write the Markdown table here (default: stdout)")
    p.add_argument("--windows", type=parse_windows, default=WINDOWS,
                   help="step windows LO-HI,... to average the losses over (default: 0-50,100-150,200-250,250-300)")
    p.add_argument("--probes", default="*", help="which probe directories (a glob, e.g. 'r7-*'; default: all)")
    args = p.parse_args(argv)
    text = markdown(collect(args.root, args.base, args.windows, args.probes), args.windows)
    if args.out:
        args.out.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
