"""Collect results into pandas DataFrames: the metrics.json ledger, speed.json files, and W&B.

    from reports.collect import collect
    results = collect(["runs/demo", "runs/ablations-scifact-cpu"])
    results.records      # one row per metrics.json (see RECORD_COLUMNS)
    results.speed        # one row per timed model / pipeline (see SPEED_COLUMNS)
    results.logs         # training losses: one row per run, logged step and contrastive term (LOG_COLUMNS)
    results.warnings     # "PATH: why it was skipped", one per unreadable file

Quality results are the ``metrics.json`` files that ``lr evaluate`` / ``lr bm25`` write
(schema: ``lr_core.retrieval.evaluate.metrics_record``), found recursively (``**/metrics.json``), so a
run directory (``RUN/eval/<dataset>/<rep>/metrics.json``) and an evaluation output directory
(``OUT/<dataset>/<rep>/metrics.json``) are both fine. Metrics stay fractions 0-1 here; tables
multiply by 100.

Each file is parsed and checked by :mod:`reports.records` (the two speed.json shapes are
documented there).

Besides the metrics.json fields, each row carries ``seed`` (the run's ``trainer.seed`` as
``lr evaluate`` records it; null for BM25, an untrained backbone, and results written before
seeds were recorded), ``per_query`` (the path of ``per_query.json.gz`` beside the metrics.json,
or None for older results: no significance test for them) and ``steps`` (the run's
``train_done.json`` global step: the training budget captions name).

A file that is not valid JSON, or lacks a required field, is skipped with a
``SkippedResultWarning`` naming the path and the field; ``warnings`` keeps the same lines so
that every table can repeat them in a footnote. Several results with the same key (``KEY``)
are seeds of one experiment when each records a different seed (``are_seeds``; tables show
mean +- std over them); otherwise they are all kept and flagged (``duplicate`` is True):
dropping one silently would hide it.

W&B (optional, only when asked): ``collect(paths, wandb_project="ENTITY/PROJECT")`` (network)
or ``wandb_project=DIR`` (offline run directories, no network) adds the run summaries that
``lr sweep-task`` logs (``<dataset>/<representation>/<metric>``, with ``variant``,
``model.backbone`` and ``trainer.seed`` from the run config) as rows with the same columns;
``wandb_records`` is the conversion alone, for any objects shaped like ``wandb.Api().runs()``.
"""
from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from lr_core.errors import ConfigError, DataError
from lr_core.retrieval.metrics import PER_QUERY_FILE
from reports.records import METRICS, SPEED_REQUIRED, record_row, speed_rows, training_steps
from reports.training_logs import read_run_log


# What makes two results "the same experiment": evaluation settings included, because an MRL
# prefix or a sparse top-k is a different measurement of the same model.
KEY = ("dataset", "split", "setting", "backbone", "representation", "mrl_dim", "sparse_top_k",
       "sparse_query_mode", "fusion")
RECORD_COLUMNS = ("source", "dataset", "split", "variant", "setting", "backbone", "representation", *METRICS,
                  "num_queries", "seed", "mrl_dim", "sparse_top_k", "sparse_query_mode", "fusion", "config_hash",
                  "checkpoint_hash", "git_commit", "date", "per_query", "steps", "duplicate")
LOG_COLUMNS = ("run", "source", "variant", "seed", "step", "term", "value", "uniform")
SPEED_COLUMNS = ("source", "model", "variant", "backbone", "dataset", "representation", "num_queries",
                 *SPEED_REQUIRED, "qps", "ndcg@10", "device")


class SkippedResultWarning(UserWarning):
    """A result file was unreadable or incomplete and was left out (the message names it)."""


@dataclass
class Results:
    """Everything one report is built from."""

    records: pd.DataFrame
    speed: pd.DataFrame
    warnings: list[str] = field(default_factory=list)
    # training losses per run, step and contrastive term (reports.training_logs; LOG_COLUMNS)
    logs: pd.DataFrame = field(default_factory=lambda: logs_frame([]))

    @property
    def empty(self) -> bool:
        return self.records.empty and self.speed.empty


def _read_json(path: Path):
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: unreadable ({exc})") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        what = "empty file" if not text.strip() else f"invalid JSON at line {exc.lineno} column {exc.colno}"
        raise DataError(f"{path}: {what} ({exc.msg})") from exc


def _files(paths: Iterable[str | Path], name: str) -> list[Path]:
    """Every ``name`` file under the given directories (or the files themselves), each once, sorted."""
    found = {}
    for p in map(Path, paths):
        if p.is_file():
            hits = [p] if p.name == name else []
        elif p.is_dir():
            hits = p.glob(f"**/{name}")
        else:
            raise ConfigError(f"results path not found: {p}")
        for h in hits:
            found.setdefault(h.resolve(), h)  # overlapping arguments must not double-count a file
    return sorted(found.values(), key=str)


def _skip(exc: DataError, problems: list[str]) -> None:
    msg = f"skipped {exc}"
    problems.append(msg)
    warnings.warn(msg, SkippedResultWarning, stacklevel=3)


def _load(files: list[Path], parse, problems: list[str]) -> list[dict]:
    """Rows of every file; a file with any bad part is skipped whole (half a file would mislead)."""
    rows = []
    for path in files:
        try:
            out = parse(_read_json(path), str(path))
        except DataError as exc:
            _skip(exc, problems)
            continue
        rows.extend(out if isinstance(out, list) else [out])
    return rows


def are_seeds(seeds: list) -> bool:
    """Several results of one key are seeds of one experiment when every one records a seed and
    no two share it; anything else (an unknown seed, a repeated one) is a duplicate."""
    known = [s for s in seeds if s is not None and not (isinstance(s, float) and math.isnan(s))]
    return len(known) == len(seeds) and len(set(known)) == len(known)


def flag_duplicates(df: pd.DataFrame) -> pd.DataFrame:
    """Set ``duplicate`` on every row whose ``KEY`` occurs more than once, unless the rows of that
    key are distinct seeds (``are_seeds``); all rows are kept either way."""
    df = df.copy()
    if df.empty:
        df["duplicate"] = pd.Series(dtype=bool)
        return df
    # None and NaN must compare equal inside a key; fill with a sentinel for the grouping only
    key = df[list(KEY)].astype(object).where(df[list(KEY)].notna(), "<none>").astype(str).agg("|".join, axis=1)
    dup = key.duplicated(keep=False).to_numpy().copy()
    seeds = df["seed"].astype(object).where(df["seed"].notna(), None).tolist() if "seed" in df else [None] * len(df)
    for k in set(key[dup]):
        idx = [i for i, kk in enumerate(key) if kk == k]
        if are_seeds([seeds[i] for i in idx]):
            dup[idx] = False
    df["duplicate"] = dup
    return df


def records_frame(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=[c for c in RECORD_COLUMNS if c != "duplicate"])
    for c in ("mrl_dim", "sparse_top_k", "num_queries", "seed", "steps"):
        df[c] = df[c].astype("Int64")  # nullable: "not set" must stay distinct from 0
    return flag_duplicates(df)


def speed_frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(SPEED_COLUMNS))


def logs_frame(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=list(LOG_COLUMNS))
    df["seed"] = df["seed"].astype("Int64")
    return df


def _training_logs(paths: list, problems: list[str]) -> list[dict]:
    """The rows of every run's ``logs/metrics.csv`` (beside its ``config.yaml``); a bad log is skipped whole."""
    rows = []
    for log in _files(paths, "metrics.csv"):
        if log.parent.name != "logs" or not (log.parent.parent / "config.yaml").is_file():
            continue
        try:
            rows += read_run_log(log)
        except DataError as exc:
            _skip(exc, problems)
    return rows


def collect(paths: Iterable[str | Path], wandb_project: str | None = None, wandb_api=None) -> Results:
    """Read every metrics.json, speed.json and training log under ``paths`` and, when ``wandb_project``
    (ENTITY/PROJECT) is given, the summaries of that W&B project's runs."""
    paths = list(paths)
    problems: list[str] = []
    rows = _load(_files(paths, "metrics.json"), record_row, problems)
    for row in rows:
        pq = Path(row["source"]).with_name(PER_QUERY_FILE)
        row["per_query"] = str(pq) if pq.is_file() else None
        row["steps"] = training_steps(Path(row["source"]))
    speed = _load(_files(paths, "speed.json"), speed_rows, problems)
    if wandb_project:
        rows += collect_wandb(wandb_project, api=wandb_api, problems=problems)
    logs = logs_frame(_training_logs(paths, problems))
    return Results(records_frame(rows), speed_frame(speed), problems, logs)


def speed_with_quality(results: Results) -> pd.DataFrame:
    """The speed rows, where a speed.json has no ``ndcg@10`` taking the ledger's (mean) result of
    the same variant, backbone, dataset and representation, when the speed.json names all four
    (at default evaluation settings)."""
    sp = results.speed.copy()
    recs = results.records
    if sp.empty or recs.empty:
        return sp
    recs = recs[recs["mrl_dim"].isna() & recs["sparse_top_k"].isna()]
    named = ("variant", "backbone", "dataset", "representation")
    for i, r in sp.iterrows():
        if pd.isna(r["ndcg@10"]) and all(isinstance(r[k], str) for k in named):
            hit = recs
            for k in named:
                hit = hit[hit[k] == r[k]]
            if len(hit):
                sp.at[i, "ndcg@10"] = float(hit["ndcg@10"].mean())
    return sp


# ---- W&B (optional; only used when asked, e.g. `lr report --wandb ENTITY/PROJECT`) ----

def _config_value(config: dict, dotted: str):
    """``model.backbone`` from a nested config, or from one W&B flattened into dotted keys."""
    if dotted in config:
        value = config[dotted]
    else:
        value = config
        for part in dotted.split("."):
            if not isinstance(value, dict) or part not in value:
                return None
            value = value[part]
    # very old W&B clients stored {"value": x, "desc": ...}
    return value["value"] if isinstance(value, dict) and "value" in value else value


def wandb_records(runs: Iterable, problems: list[str] | None = None) -> list[dict]:
    """Ledger rows from W&B runs (objects with ``config``, ``summary`` or ``summary_metrics``,
    ``path`` and ``id``, as ``wandb.Api().runs()`` yields). Summary keys are
    ``<dataset>/<representation>/<metric>`` (what ``lr sweep-task`` logs); other keys are ignored.
    A W&B summary holds no evaluation settings; those columns stay empty (the defaults).
    A run with a bad record is skipped with a warning (appended to ``problems``), as a bad file is."""
    problems = [] if problems is None else problems
    rows = []
    for run in runs:
        config = dict(getattr(run, "config", None) or {})
        summary = getattr(run, "summary_metrics", None)
        summary = dict(summary if summary is not None else getattr(run, "summary", {}) or {})
        path = getattr(run, "path", None)
        source = "wandb:" + ("/".join(path) if isinstance(path, (list, tuple)) else str(getattr(run, "id", "?")))
        variant, backbone = _config_value(config, "variant"), _config_value(config, "model.backbone")
        # baselines are only evaluated: their seed is not one (as in metrics.json)
        seed = None if variant in ("bm25", "untrained") else _config_value(config, "trainer.seed")
        grouped: dict[tuple[str, str], dict] = {}
        for key, value in summary.items():
            parts = key.split("/")
            if len(parts) == 3 and parts[2] in METRICS:
                grouped.setdefault((parts[0], parts[1]), {})[parts[2]] = value
        for (dataset, rep), metrics in sorted(grouped.items()):
            rec = {"dataset": dataset, "representation": rep, "variant": variant, "backbone": backbone,
                   "split": None, "seed": seed, **metrics}
            try:
                rows.append(record_row(rec, f"{source} ({dataset}/{rep})"))  # same checks as a metrics.json
            except DataError as exc:
                _skip(exc, problems)
    return rows


def collect_wandb(project: str, api=None, problems: list[str] | None = None) -> list[dict]:
    """Rows for every run of ``ENTITY/PROJECT`` (needs network and a W&B API key), or of the
    offline runs under a local directory (``reports.wandb_offline``; no network)."""
    if Path(project).is_dir():
        from reports.wandb_offline import offline_runs

        try:
            runs = offline_runs(project)
        except DataError as exc:
            raise ConfigError(f"W&B: cannot read the offline runs under {project} ({exc})") from exc
        if not runs:
            raise ConfigError(f"W&B: no offline run (run-*.wandb) under {project}")
        return wandb_records(runs, problems)
    if project.count("/") != 1 or not all(project.split("/")):
        raise ConfigError(f"--wandb expects ENTITY/PROJECT, got {project!r}")
    try:
        if api is None:
            import wandb  # imported only when asked: reports work offline without it

            api = wandb.Api(timeout=30)
        runs = list(api.runs(project))
    except Exception as exc:  # network, auth, unknown project: one clear line for the CLI
        raise ConfigError(f"W&B: cannot list the runs of {project} ({type(exc).__name__}: {exc})") from exc
    return wandb_records(runs, problems)
