"""Training logs of run directories: the per-step losses `lr fit` writes, and how far each
contrastive loss still is from a uniform guess.

A run directory holds ``config.yaml`` and ``logs/metrics.csv`` (one row per logged step, a
column ``train/<term>`` per loss term). Every contrastive term (``CE_TERMS``) is a softmax
cross-entropy over the global batch's documents, N = ``data.batch_size x (1 + data.n_negatives)``
(in-batch negatives; gathered across ranks, so N does not depend on the number of devices). A
model that ranks no better than chance scores ln N (k ln N for MRL's dense terms, a sum over k
prefix widths), so "how far from ln N" is the first thing to read off a curve that has not learned.

    from reports.training_logs import read_run_log, loss_windows
    rows = read_run_log(Path("runs/lr/logs/metrics.csv"))   # [{"run", "variant", "seed", "step", "term", "value", "uniform"}]
    loss_windows(Path("runs/lr/logs/metrics.csv"))          # {"light_dense": [mean over steps 0-49, ...], ...}

``lr report`` draws the curves (``reports.figures.learning_curves``) and tabulates the last
steps (``reports.tables.training_losses``); the recipe search tabulates ``loss_windows``.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path

import yaml

from lr_core.errors import DataError

CE_TERMS = ("full_dense", "light_dense", "light_sparse")  # in-batch softmax cross-entropies: chance is ln N
TERM_NAMES = {"full_dense": "full dense", "light_dense": "light dense", "light_sparse": "light sparse"}
WINDOWS = ((0, 50), (100, 150), (200, 250), (250, 300))
LAST_STEPS = 50  # the report's "where the run ended": mean over this many last logged steps


def uniform_ce(config: dict) -> float:
    """ln N, the cross-entropy of a uniform guess over the global batch's documents."""
    data = config.get("data") or {}
    try:
        return math.log(int(data["batch_size"]) * (1 + int(data["n_negatives"])))
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"data.batch_size and data.n_negatives are needed for ln N ({exc})") from exc


def summed_widths(config: dict, term: str) -> int:
    """How many CE terms a logged dense loss sums: MRL adds one per prefix width (``loss.mrl_dims``,
    assumed below the model's width, as in its docs, plus the full width), so its chance is k ln N."""
    if config.get("variant") != "mrl" or term not in ("full_dense", "light_dense"):
        return 1
    return 1 + len(set((config.get("loss") or {}).get("mrl_dims") or []))


def _rows(log: Path) -> list[dict]:
    try:
        with open(log, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{log}: unreadable ({exc})") from exc
    if rows and "step" not in rows[0]:
        raise DataError(f"{log}: line 1: no 'step' column")
    return [r for r in rows if r.get("train/loss")]  # rows of validation-only logging have no train loss


def _value(log: Path, line: int, key: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise DataError(f"{log}: line {line}: field {key}: not a number ({text!r})") from None


def read_run_log(log: Path) -> list[dict]:
    """One row per logged step and contrastive term of the run whose ``logs/metrics.csv`` is ``log``
    (a step logged twice keeps its last row); DataError (file, line, field) on a malformed file or config."""
    run_dir = log.parent.parent
    cfg_path = run_dir / "config.yaml"
    try:
        cfg = yaml.safe_load(cfg_path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise DataError(f"{cfg_path}: unreadable ({exc})") from exc
    try:
        uniform = uniform_ce(cfg)
    except DataError as exc:
        raise DataError(f"{cfg_path}: {exc}") from None
    seed = (cfg.get("trainer") or {}).get("seed")
    out = {}
    for line, r in enumerate(_rows(log), start=2):
        step = int(_value(log, line, "step", r["step"]))
        for term in CE_TERMS:
            text = r.get(f"train/{term}")
            if text:
                # a resumed run logs the steps after its checkpoint again: the later row is the one trained on
                out[step, term] = {"run": run_dir.name, "source": str(run_dir), "variant": cfg.get("variant"),
                                   "seed": seed, "step": step, "term": term,
                                   "value": _value(log, line, f"train/{term}", text),
                                   "uniform": uniform * summed_widths(cfg, term)}
    return sorted(out.values(), key=lambda r: (r["term"], r["step"]))


def loss_windows(log: Path, windows=WINDOWS, terms=CE_TERMS) -> dict[str, list[float | None]]:
    """Mean of each logged term (the contrastive losses by default; any ``train/<term>`` column,
    such as ``flops``) over ``[lo, hi)`` step windows (None where the run has no such steps)."""
    rows = list({r["step"]: r for r in _rows(log)}.values())  # a step logged twice (resume) counts once, its last row
    out = {}
    for name in terms:
        key = f"train/{name}"
        if not any(r.get(key) for r in rows):
            continue
        means = []
        for lo, hi in windows:
            vals = [float(r[key]) for r in rows if r.get(key) and lo <= int(r["step"]) < hi]
            means.append(sum(vals) / len(vals) if vals else None)
        out[name] = means
    return out
