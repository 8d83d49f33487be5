"""Sweeps: a YAML grid expanded into runs, submitted to Slurm as one job array, resubmittable.

Spec (``experiments/sweeps/*.yaml``)::

    name: tiny-grid
    base_config: experiments/tiny.yaml          # relative to the spec file's directory or the cwd
    out: runs/sweeps/tiny-grid                  # default runs/sweeps/<name>
    grid:                                       # any config key; variant / backbone / seed are shortcuts
      variant: [lightretriever, symmetric, bm25, untrained]
      seed: [1, 2]
    overrides: [trainer.max_steps=20]           # applied to every run
    evaluate: {datasets: [scifact], data_dir: null, split: null,   # split null: each set's test split; val: lr_core/validation.py
               representations: null,           # a list for every run, or {variant: [...]}; null: the variant's own
               mrl_dims: [],                    # runs of the mrl variant are also evaluated (dense) at these widths
               sparse_top_k: [],                # runs evaluated as sparse / hybrid are also evaluated so with each
                                                # document cut to its k largest term weights, per k: <run>/eval-top<k>
               device: cpu, batch_size: 16,     # auto / cuda: encode on the GPU (bf16); documents per forward pass
               cache_batch_size: null,          # vocabulary ids per forward pass building the cache (null: 256)
               query_batch_size: 64}            # queries per forward pass (full-LLM queries, A3)
    speed: {run: variant-lightretriever, a3_run: null, args: [--threads, "2"]}   # optional: lr bench speed
    adapters: reports/results/x/adapters       # optional: publish each trained run as <adapters>/<run name>
    wandb: {project: lightretriever-suite, mode: auto}
    slurm: {partition: debug, time: "01:00:00", cpus_per_task: 2, mem: 8G, gpus_per_node: 0,
            nodes: 1, ntasks_per_node: 0, array_throttle: 8, signal_seconds: 120, max_requeues: 5, extra: []}

A spec may start from another one: ``extends: other.yaml`` (relative to this file) takes every
key of that spec except ``name`` and ``out``; a key given here replaces the inherited one, except
``overrides``, which are merged by key (``trainer.max_steps=300`` here replaces ``=40`` there).

Every grid point becomes a run directory ``<out>/<name from its settings>``; ``<out>/manifest.json``
lists them. ``bm25`` and ``untrained`` are baselines, not variants: their runs train nothing and
are evaluated on the same data sets. This module reads, checks and expands a spec; submitting it
is :mod:`slurm.submit`, running one of its runs :mod:`slurm.task`.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from lr_core.config import load_config
from lr_core.devices import PRECISIONS
from lr_core.errors import ConfigError
from lr_core.io import atomic_write_text
from lr_core.pipeline.run import EvalPlan


SHORTCUTS = {"variant": "variant", "backbone": "model.backbone", "seed": "trainer.seed"}
BASELINES = {"bm25": "BM25 (Lucene, Anserini defaults k1=0.9 b=0.4): nothing trained",
             "untrained": "the backbone without training, full LLM on both sides (dense)"}
SPEED_DIR = "speed"
DONE_FILE = "eval_done.json"
STATUS_FILE = "status.json"


@dataclass
class SlurmSettings:
    partition: str = ""
    time: str = "04:00:00"
    cpus_per_task: int = 4
    mem: str = "32G"
    gpus_per_node: int = 0
    nodes: int = 1
    ntasks_per_node: int = 0  # data-parallel ranks per node; 0: one per GPU (gpus_per_node), at least 1
    max_requeues: int = 5  # a run requeues itself on USR1 at most this often; then `lr sweep` resubmits it
    array_throttle: int = 8
    signal_seconds: int = 120  # USR1 this long before the time limit: checkpoint + requeue
    job_name: str = ""
    extra: list[str] = field(default_factory=list)  # more "#SBATCH ..." option strings, e.g. "--account=x"


@dataclass
class SweepSpec:
    name: str
    base_config: Path
    out: Path
    grid: dict[str, list]
    overrides: list[str]
    datasets: list[str]
    data_dir: str | None
    representations: list[str] | dict[str, list[str]] | None
    wandb: dict
    slurm: SlurmSettings
    source: Path
    mrl_dims: list[int] = field(default_factory=list)
    speed: dict | None = None  # {run: NAME, a3_run: NAME | None, args: [...]}
    eval_device: str = "cpu"  # evaluate.device: cpu, auto or cuda[:N]
    eval_batch_size: int = 16  # evaluate.batch_size: documents per forward pass
    split: str | None = None  # None: each data set's evaluation split (test); "val": the held-out train queries
    eval_cache_batch_size: int | None = None  # evaluate.cache_batch_size: vocabulary ids per forward pass (None: 256)
    eval_query_batch_size: int = 64  # evaluate.query_batch_size: queries per forward pass
    eval_precision: str = "auto"  # evaluate.precision: inference autocast (auto: bf16 on CUDA, float32 on CPU)
    adapters: Path | None = None  # adapters: publish each trained run here as <adapters>/<run name> (lr_core.adapters)
    sparse_top_ks: list[int] = field(default_factory=list)  # evaluate.sparse_top_k: document top-k term cuts

    def representations_for(self, variant: str) -> list[str] | None:
        """What runs of ``variant`` are evaluated as (None: what the variant declares)."""
        if isinstance(self.representations, dict):
            return self.representations.get(variant)
        return self.representations

    def eval_plan(self, variant: str) -> EvalPlan:
        """The ``evaluate`` block for a run of ``variant``, as the shared pipeline takes it."""
        reps = self.representations_for(variant)
        return EvalPlan(tuple(self.datasets), self.data_dir, self.split, tuple(reps) if reps else None,
                        self.eval_device, self.eval_batch_size, tuple(self.mrl_dims), self.eval_cache_batch_size,
                        self.eval_query_batch_size, tuple(self.sparse_top_ks), self.eval_precision)


@dataclass
class SweepRun:
    index: int
    name: str
    run_dir: str
    overrides: list[str]


def spec_error(path: Path, field_name: str, msg: str) -> ConfigError:
    return ConfigError(f"{path}: {field_name}: {msg}")


def _read_spec(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    """The spec's YAML mapping, with an ``extends`` chain resolved (see the module docstring)."""
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    parent_name = raw.pop("extends", None)
    if parent_name is None:
        return raw
    parent_path = (path.parent / str(parent_name)).resolve()
    if not parent_path.is_file():
        raise spec_error(path, "extends", f"{parent_name} not found (relative to {path.parent})")
    if parent_path in seen + (path.resolve(),):
        raise spec_error(path, "extends", f"{parent_name} extends this spec again (a cycle)")
    parent = _read_spec(parent_path, seen + (path.resolve(),))
    parent.pop("name", None)
    parent.pop("out", None)  # each spec names its own runs: inheriting them would mix two grids
    if isinstance(parent.get("base_config"), str):  # relative to the file that names it
        parent["base_config"] = str(parent_path.parent / parent["base_config"])
    merged = {**parent, **raw}
    if isinstance(parent.get("overrides"), list) and isinstance(raw.get("overrides"), list):
        by_key = {str(o).split("=", 1)[0]: o for o in parent["overrides"]}
        by_key.update({str(o).split("=", 1)[0]: o for o in raw["overrides"]})
        merged["overrides"] = list(by_key.values())
    return merged


def load_spec(path: str | os.PathLike) -> SweepSpec:
    """Read and check a sweep spec (structure only; :func:`validate` checks it against the suite)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"sweep spec not found: {path}")
    raw = _read_spec(path)
    known = {"name", "base_config", "out", "grid", "overrides", "evaluate", "wandb", "slurm", "speed", "adapters"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise spec_error(path, ", ".join(unknown), f"unknown key(s); allowed: {', '.join(sorted(known))}")
    name = raw.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name or ""):
        raise spec_error(path, "name", "required: letters, digits, '.', '_' or '-'")
    base = raw.get("base_config")
    if not isinstance(base, str):
        raise spec_error(path, "base_config", "required: path of an experiment config")
    base_path = next((p for p in (path.parent / base, Path(base)) if p.is_file()), None)
    if base_path is None:
        raise spec_error(path, "base_config", f"{base} not found (relative to {path.parent} or the working directory)")
    grid = raw.get("grid")
    if not isinstance(grid, dict) or not grid:
        raise spec_error(path, "grid", "required: a mapping of config keys to lists of values (an empty grid has no runs)")
    for k, v in grid.items():
        if not isinstance(v, list) or not v:
            raise spec_error(path, f"grid.{k}", "must be a non-empty list of values: an empty grid has no runs")
        if len(set(map(json.dumps, v))) != len(v):
            raise spec_error(path, f"grid.{k}", "repeats a value")
    overrides = raw.get("overrides") or []
    if not isinstance(overrides, list) or not all(isinstance(o, str) and "=" in o for o in overrides):
        raise spec_error(path, "overrides", "must be a list of 'key.sub=value' strings")
    ev = raw.get("evaluate") or {}
    eval_keys = ("datasets", "data_dir", "representations", "mrl_dims", "sparse_top_k", "split", "device",
                 "batch_size", "cache_batch_size", "query_batch_size", "precision")
    if not isinstance(ev, dict) or set(ev) - set(eval_keys):
        raise spec_error(path, "evaluate", f"allowed keys: {', '.join(eval_keys)}")
    if not isinstance(ev.get("split"), (str, type(None))):
        raise spec_error(path, "evaluate.split", "a split name (e.g. val) or null for each data set's test split")
    eval_device = ev.get("device", "cpu")
    eval_precision = ev.get("precision", "auto")
    if eval_precision not in PRECISIONS:
        raise spec_error(path, "evaluate.precision", f"auto, bfloat16 or float32, got {eval_precision!r}")
    if eval_device not in ("cpu", "auto") and not re.fullmatch(r"cuda(:\d+)?", str(eval_device)):
        raise spec_error(path, "evaluate.device", f"cpu, auto or cuda[:N], got {eval_device!r}")
    batches = {}
    for key, default in (("batch_size", 16), ("cache_batch_size", None), ("query_batch_size", 64)):
        value = batches[key] = ev.get(key, default)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise spec_error(path, f"evaluate.{key}", f"a positive integer, got {value!r}")
    eval_batch = batches["batch_size"]
    if eval_batch is None:
        raise spec_error(path, "evaluate.batch_size", "a positive integer, got None")
    datasets = ev.get("datasets") or []
    if not isinstance(datasets, list) or not datasets:
        raise spec_error(path, "evaluate.datasets", "required: a non-empty list of data sets")
    reps = ev.get("representations")
    if not (reps is None or (isinstance(reps, list) and all(isinstance(r, str) for r in reps)) or
            (isinstance(reps, dict) and all(isinstance(v, list) for v in reps.values()))):
        raise spec_error(path, "evaluate.representations", "a list of representations, or a mapping variant -> list")
    mrl_dims = ev.get("mrl_dims") or []
    if not isinstance(mrl_dims, list) or not all(isinstance(d, int) and d > 0 for d in mrl_dims):
        raise spec_error(path, "evaluate.mrl_dims", "a list of positive integers (dense widths)")
    top_ks = ev.get("sparse_top_k")
    top_ks = [] if top_ks is None else top_ks  # not `or []`: a bare 0 is an error, not "none"
    if not isinstance(top_ks, list) or not all(isinstance(k, int) and not isinstance(k, bool) and k > 0
                                                for k in top_ks):
        raise spec_error(path, "evaluate.sparse_top_k", f"a list of positive integers (document terms kept), "
                                                        f"got {top_ks!r}")
    if len(set(top_ks)) != len(top_ks):
        raise spec_error(path, "evaluate.sparse_top_k", f"repeats a value: {top_ks!r}")
    speed = raw.get("speed")
    if speed is not None:
        if not isinstance(speed, dict) or set(speed) - {"run", "a3_run", "args"} or not isinstance(speed.get("run"), str):
            raise spec_error(path, "speed", "a mapping with run (a run name of the grid), optional a3_run and args")
        if not isinstance(speed.get("args") or [], list):
            raise spec_error(path, "speed.args", "a list of `lr bench speed` arguments")
    slurm_raw = raw.get("slurm") or {}
    from lr_core.config import _build

    slurm = _build(SlurmSettings, slurm_raw, f"{path}: slurm")  # partition: checked by submit (not needed --local)
    wandb = raw.get("wandb") or {}
    if not isinstance(wandb, dict):
        raise spec_error(path, "wandb", "must be a mapping")
    out = Path(raw.get("out") or f"runs/sweeps/{name}")
    adapters = raw.get("adapters")
    if adapters is not None and not isinstance(adapters, str):
        raise spec_error(path, "adapters", f"a directory path, got {adapters!r}")
    return SweepSpec(name, base_path, out, {SHORTCUTS.get(k, k): v for k, v in grid.items()}, overrides, datasets,
                     ev.get("data_dir"), reps, wandb, slurm, path, mrl_dims, speed, eval_device, eval_batch,
                     ev.get("split"), eval_cache_batch_size=batches["cache_batch_size"],
                     eval_query_batch_size=batches["query_batch_size"], sparse_top_ks=top_ks,
                     adapters=Path(adapters) if adapters else None, eval_precision=eval_precision)


def _slug(value) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-")[:40] or "x"


def expand(spec: SweepSpec) -> list[SweepRun]:
    """Every grid point as a run; its directory name is made from its settings (stable across submissions)."""
    keys = list(spec.grid)
    runs = []
    for i, values in enumerate(itertools.product(*(spec.grid[k] for k in keys))):
        parts = [f"{k.split('.')[-1]}-{_slug(v)}" for k, v in zip(keys, values)]
        name = "_".join(parts)
        if len(name) > 120:
            name = name[:100] + "-" + hashlib.sha256(name.encode()).hexdigest()[:8]
        point = [f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in zip(keys, values)]
        runs.append(SweepRun(i, name, str(spec.out / name), [*spec.overrides, *point]))
    if len({r.name for r in runs}) != len(runs):
        raise spec_error(spec.source, "grid", "two grid points give the same run name; make the values distinct")
    return runs


def tasks_per_node(s: SlurmSettings) -> int:
    """Ranks (``srun`` tasks) per node: ``ntasks_per_node``, else one per GPU, else one."""
    return s.ntasks_per_node or max(1, s.gpus_per_node)


def run_config(spec: SweepSpec, run: SweepRun):
    """The full experiment config of one run (W&B tags and group filled in)."""
    from lr_core.config import WandbConfig, _build

    devices = []
    tasks = tasks_per_node(spec.slurm)
    if spec.slurm.gpus_per_node or tasks * spec.slurm.nodes > 1:
        # Lightning reads ranks from Slurm; devices x nodes must match the tasks of the allocation
        devices = [f"trainer.devices={tasks}", f"trainer.num_nodes={spec.slurm.nodes}",
                   f"trainer.accelerator={'gpu' if spec.slurm.gpus_per_node else 'cpu'}"]
        if tasks * spec.slurm.nodes > 1:
            devices.append("trainer.strategy=ddp")
    cfg = load_config(spec.base_config, [*devices, *run.overrides, f"run_dir={run.run_dir}"])
    wb = _build(WandbConfig, {**spec.wandb}, f"{spec.source}: wandb")
    wb.enabled = spec.wandb.get("enabled", True)
    wb.group = wb.group or spec.name
    wb.tags = list(dict.fromkeys([*wb.tags, *(f"{k.split('.')[-1]}:{v}" for k, v in
                                              (o.split("=", 1) for o in run.overrides[len(spec.overrides):]))]))
    cfg.wandb = wb
    return cfg


def partition_exists(partition: str) -> bool:
    if shutil.which("sinfo") is None:
        raise ConfigError("sinfo not found: Slurm is not installed here (slurm/local_slurm.sh start sets one up)")
    out = subprocess.run(["sinfo", "-h", "-p", partition, "-o", "%P"], capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise ConfigError(f"sinfo failed: {out.stderr.strip()}")
    return bool(out.stdout.strip())


def validate(spec: SweepSpec, runs: list[SweepRun], check_partition: bool = True) -> None:
    """Everything that can be checked before submitting: configs, variants, data sets, partition."""
    from lr_core.data.beir import resolve_dataset_dir
    from lr_core.retrieval.evaluate import REPRESENTATIONS
    from lr_core.variants import get_variant

    for run in runs:
        try:
            cfg = run_config(spec, run)
            if cfg.variant not in BASELINES:
                get_variant(cfg.variant)
        except ConfigError as exc:
            raise ConfigError(f"{spec.source}: run {run.name}: {exc}") from None
    from lr_core.errors import DataError

    for ds in spec.datasets:
        try:
            resolve_dataset_dir(ds, spec.data_dir)
        except DataError as exc:
            raise spec_error(spec.source, "evaluate.datasets", str(exc)) from None
    named = spec.representations.values() if isinstance(spec.representations, dict) else [spec.representations or []]
    bad = {r for reps in named for r in reps} - set(REPRESENTATIONS)
    if bad:
        raise spec_error(spec.source, "evaluate.representations", f"unknown {sorted(bad)}; known: {REPRESENTATIONS}")
    if spec.speed:
        names = {r.name for r in runs}
        for key in ("run", "a3_run"):
            if spec.speed.get(key) and spec.speed[key] not in names:
                raise spec_error(spec.source, f"speed.{key}", f"{spec.speed[key]!r} is not a run of this sweep "
                           f"({', '.join(sorted(names))})")
    if check_partition and not partition_exists(spec.slurm.partition):
        raise spec_error(spec.source, "slurm.partition", f"partition {spec.slurm.partition!r} does not exist (see sinfo)")


def write_manifest(spec: SweepSpec, runs: list[SweepRun]) -> Path:
    spec.out.mkdir(parents=True, exist_ok=True)
    path = spec.out / "manifest.json"
    data = {"name": spec.name, "spec": str(spec.source.resolve()), "base_config": str(spec.base_config.resolve()),
            "datasets": spec.datasets, "data_dir": spec.data_dir, "representations": spec.representations,
            "mrl_dims": spec.mrl_dims, "sparse_top_k": spec.sparse_top_ks, "speed": spec.speed, "wandb": spec.wandb,
            "overrides": spec.overrides,
            "runs": [asdict(r) for r in runs]}
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")
    return path


# --------------------------------------------------------------------------- state


def run_state(run_dir: Path) -> dict:
    """What the run directory says: done / failed / interrupted / not started (+ step, message)."""
    run_dir = Path(run_dir)
    if (run_dir / DONE_FILE).is_file():
        return {"state": "done"}
    status = {}
    if (run_dir / STATUS_FILE).is_file():
        try:
            status = json.loads((run_dir / STATUS_FILE).read_text())
        except json.JSONDecodeError:
            status = {}
    if not (run_dir / "config.yaml").exists() and not status:
        return {"state": "not started"}
    return {"state": status.get("state", "interrupted"), "message": status.get("message", "")}
