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
               device: cpu, batch_size: 16,     # auto / cuda: encode on the GPU (bf16); documents per forward pass
               cache_batch_size: null,          # vocabulary ids per forward pass building the cache (null: 256)
               query_batch_size: 64}            # queries per forward pass (full-LLM queries, A3)
    speed: {run: variant-lightretriever, a3_run: null, args: [--threads, "2"]}   # optional: lr bench speed
    wandb: {project: lightretriever-suite, mode: auto}
    slurm: {partition: debug, time: "01:00:00", cpus_per_task: 2, mem: 8G, gpus_per_node: 0,
            nodes: 1, ntasks_per_node: 0, array_throttle: 8, signal_seconds: 120, max_requeues: 5, extra: []}

A spec may start from another one: ``extends: other.yaml`` (relative to this file) takes every
key of that spec except ``name`` and ``out``; a key given here replaces the inherited one, except
``overrides``, which are merged by key (``trainer.max_steps=300`` here replaces ``=40`` there).

Every grid point becomes a run directory ``<out>/<name from its settings>``; ``<out>/manifest.json``
lists them. ``bm25`` and ``untrained`` are baselines, not variants: their runs train nothing and
are evaluated on the same data sets (BM25 with Lucene; the backbone without training, full LLM
dense on both sides). ``speed`` runs ``lr bench speed`` on a finished run of the grid (and an A3
run, if named) once the array is done; its ``speed.json`` goes to ``<out>/speed``.
``lr sweep SPEC --local`` runs everything here, one run after the other, without Slurm. ``lr sweep SPEC`` validates everything first (variant, keys, data sets, partition),
then submits an array of only the runs that are neither finished (``eval_done.json``) nor
already queued; running it again after failures, time-outs or cancellations resubmits
exactly those, and each resumes from its checkpoint. On the pre-emption warning (``USR1``) a
run checkpoints and requeues itself (at most ``slurm.max_requeues`` times), continuing the
same W&B run.

Several ranks per run (``gpus_per_node`` or ``ntasks_per_node`` > 1, or ``nodes`` > 1):
``srun`` starts one task per rank and Lightning trains with DDP. Global rank 0 owns every side
effect: ``status.json``, the W&B run, the done files, evaluation and the requeue; the other
ranks train and exit. A USR1 that reaches any rank stops all of them after the same step (the
flag is all-reduced each step), so there is one checkpoint to resume from. At evaluation every
rank encodes its share of the corpus shards (``num_shards`` = the number of ranks; on GPUs each
rank on its own, ``cuda:<local rank>``), then rank 0 merges them, builds the vocabulary cache and
scores (:func:`lr_core.evaluate.encode_corpus_shards_on_ranks`).
"""
from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import yaml

from lr_core.config import load_config
from lr_core.errors import ConfigError
from lr_core.io import atomic_write_text

log = logging.getLogger(__name__)

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

    def representations_for(self, variant: str) -> list[str] | None:
        """What runs of ``variant`` are evaluated as (None: what the variant declares)."""
        if isinstance(self.representations, dict):
            return self.representations.get(variant)
        return self.representations


@dataclass
class SweepRun:
    index: int
    name: str
    run_dir: str
    overrides: list[str]


def _err(path: Path, field_name: str, msg: str) -> ConfigError:
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
        raise _err(path, "extends", f"{parent_name} not found (relative to {path.parent})")
    if parent_path in seen + (path.resolve(),):
        raise _err(path, "extends", f"{parent_name} extends this spec again (a cycle)")
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
    known = {"name", "base_config", "out", "grid", "overrides", "evaluate", "wandb", "slurm", "speed"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise _err(path, ", ".join(unknown), f"unknown key(s); allowed: {', '.join(sorted(known))}")
    name = raw.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name or ""):
        raise _err(path, "name", "required: letters, digits, '.', '_' or '-'")
    base = raw.get("base_config")
    if not isinstance(base, str):
        raise _err(path, "base_config", "required: path of an experiment config")
    base_path = next((p for p in (path.parent / base, Path(base)) if p.is_file()), None)
    if base_path is None:
        raise _err(path, "base_config", f"{base} not found (relative to {path.parent} or the working directory)")
    grid = raw.get("grid")
    if not isinstance(grid, dict) or not grid:
        raise _err(path, "grid", "required: a mapping of config keys to lists of values (an empty grid has no runs)")
    for k, v in grid.items():
        if not isinstance(v, list) or not v:
            raise _err(path, f"grid.{k}", "must be a non-empty list of values: an empty grid has no runs")
        if len(set(map(json.dumps, v))) != len(v):
            raise _err(path, f"grid.{k}", "repeats a value")
    overrides = raw.get("overrides") or []
    if not isinstance(overrides, list) or not all(isinstance(o, str) and "=" in o for o in overrides):
        raise _err(path, "overrides", "must be a list of 'key.sub=value' strings")
    ev = raw.get("evaluate") or {}
    eval_keys = ("datasets", "data_dir", "representations", "mrl_dims", "split", "device", "batch_size",
                 "cache_batch_size", "query_batch_size")
    if not isinstance(ev, dict) or set(ev) - set(eval_keys):
        raise _err(path, "evaluate", f"allowed keys: {', '.join(eval_keys)}")
    if not isinstance(ev.get("split"), (str, type(None))):
        raise _err(path, "evaluate.split", "a split name (e.g. val) or null for each data set's test split")
    eval_device = ev.get("device", "cpu")
    if eval_device not in ("cpu", "auto") and not re.fullmatch(r"cuda(:\d+)?", str(eval_device)):
        raise _err(path, "evaluate.device", f"cpu, auto or cuda[:N], got {eval_device!r}")
    batches = {}
    for key, default in (("batch_size", 16), ("cache_batch_size", None), ("query_batch_size", 64)):
        value = batches[key] = ev.get(key, default)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise _err(path, f"evaluate.{key}", f"a positive integer, got {value!r}")
    eval_batch = batches["batch_size"]
    if eval_batch is None:
        raise _err(path, "evaluate.batch_size", "a positive integer, got None")
    datasets = ev.get("datasets") or []
    if not isinstance(datasets, list) or not datasets:
        raise _err(path, "evaluate.datasets", "required: a non-empty list of data sets")
    reps = ev.get("representations")
    if not (reps is None or (isinstance(reps, list) and all(isinstance(r, str) for r in reps)) or
            (isinstance(reps, dict) and all(isinstance(v, list) for v in reps.values()))):
        raise _err(path, "evaluate.representations", "a list of representations, or a mapping variant -> list")
    mrl_dims = ev.get("mrl_dims") or []
    if not isinstance(mrl_dims, list) or not all(isinstance(d, int) and d > 0 for d in mrl_dims):
        raise _err(path, "evaluate.mrl_dims", "a list of positive integers (dense widths)")
    speed = raw.get("speed")
    if speed is not None:
        if not isinstance(speed, dict) or set(speed) - {"run", "a3_run", "args"} or not isinstance(speed.get("run"), str):
            raise _err(path, "speed", "a mapping with run (a run name of the grid), optional a3_run and args")
        if not isinstance(speed.get("args") or [], list):
            raise _err(path, "speed.args", "a list of `lr bench speed` arguments")
    slurm_raw = raw.get("slurm") or {}
    from lr_core.config import _build

    slurm = _build(SlurmSettings, slurm_raw, f"{path}: slurm")  # partition: checked by submit (not needed --local)
    wandb = raw.get("wandb") or {}
    if not isinstance(wandb, dict):
        raise _err(path, "wandb", "must be a mapping")
    out = Path(raw.get("out") or f"runs/sweeps/{name}")
    return SweepSpec(name, base_path, out, {SHORTCUTS.get(k, k): v for k, v in grid.items()}, overrides, datasets,
                     ev.get("data_dir"), reps, wandb, slurm, path, mrl_dims, speed, eval_device, eval_batch,
                     ev.get("split"), eval_cache_batch_size=batches["cache_batch_size"],
                     eval_query_batch_size=batches["query_batch_size"])


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
        raise _err(spec.source, "grid", "two grid points give the same run name; make the values distinct")
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
    from lr_core.beir import resolve_dataset_dir
    from lr_core.evaluate import REPRESENTATIONS
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
            raise _err(spec.source, "evaluate.datasets", str(exc)) from None
    named = spec.representations.values() if isinstance(spec.representations, dict) else [spec.representations or []]
    bad = {r for reps in named for r in reps} - set(REPRESENTATIONS)
    if bad:
        raise _err(spec.source, "evaluate.representations", f"unknown {sorted(bad)}; known: {REPRESENTATIONS}")
    if spec.speed:
        names = {r.name for r in runs}
        for key in ("run", "a3_run"):
            if spec.speed.get(key) and spec.speed[key] not in names:
                raise _err(spec.source, f"speed.{key}", f"{spec.speed[key]!r} is not a run of this sweep "
                           f"({', '.join(sorted(names))})")
    if check_partition and not partition_exists(spec.slurm.partition):
        raise _err(spec.source, "slurm.partition", f"partition {spec.slurm.partition!r} does not exist (see sinfo)")


def write_manifest(spec: SweepSpec, runs: list[SweepRun]) -> Path:
    spec.out.mkdir(parents=True, exist_ok=True)
    path = spec.out / "manifest.json"
    data = {"name": spec.name, "spec": str(spec.source.resolve()), "base_config": str(spec.base_config.resolve()),
            "datasets": spec.datasets, "data_dir": spec.data_dir, "representations": spec.representations,
            "mrl_dims": spec.mrl_dims, "speed": spec.speed, "wandb": spec.wandb, "overrides": spec.overrides,
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


def queued(spec: SweepSpec) -> dict[int, str]:
    """Array indices of this sweep now pending or running in Slurm -> state."""
    subs = _submissions(spec)
    if not subs or shutil.which("squeue") is None:
        return {}
    out = subprocess.run(["squeue", "-h", "-r", "-o", "%F %K %T", "-j", ",".join(s["job_id"] for s in subs)],
                         capture_output=True, text=True, timeout=60)
    states = {}
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1].isdigit():
            states[int(parts[1])] = parts[2].lower()
    return states


def _submissions(spec: SweepSpec) -> list[dict]:
    path = spec.out / "submissions.json"
    return json.loads(path.read_text()) if path.is_file() else []


def status(spec: SweepSpec) -> list[dict]:
    runs = expand(spec)
    q = queued(spec)
    rows = []
    for r in runs:
        st = run_state(Path(r.run_dir))
        if st["state"] != "done" and r.index in q:
            st = {"state": q[r.index]}
        elif st["state"] in ("running", "requeued", "interrupted"):  # not in the queue: killed or cancelled
            st = {"state": "interrupted", "message": f"last seen {st['state']}; resubmit to resume"}
        rows.append({"index": r.index, "name": r.name, **st})
    if spec.speed:
        state = "done" if speed_done(spec) else "pending" if speed_queued(spec) else "not started"
        rows.append({"index": SPEED_DIR, "name": SPEED_DIR, "state": state})
    return rows


# --------------------------------------------------------------------------- submission


# sbatch exports the submitting shell's environment. A W&B service token in it (set by any process that
# called wandb.init, e.g. a notebook or a test session) would make every job attach to that process's
# W&B service, where a killed job's run id stays "in use" and its requeued session cannot reopen it.
_CLEAN_ENV = ["unset WANDB_SERVICE"]


def sbatch_script(spec: SweepSpec, manifest: Path, indices: list[int]) -> str:
    s = spec.slurm
    tasks = tasks_per_node(s)  # one task per device (Lightning DDP under srun)
    lines = ["#!/bin/bash",
             f"#SBATCH --job-name={s.job_name or 'lr-' + spec.name}",
             f"#SBATCH --partition={s.partition}",
             f"#SBATCH --time={s.time}",
             f"#SBATCH --nodes={s.nodes}",
             f"#SBATCH --ntasks-per-node={tasks}",
             f"#SBATCH --cpus-per-task={s.cpus_per_task}",
             f"#SBATCH --mem={s.mem}",
             f"#SBATCH --array={','.join(map(str, indices))}%{s.array_throttle}",
             f"#SBATCH --output={(spec.out / 'slurm' / '%A_%a.out').resolve()}",
             f"#SBATCH --signal=USR1@{s.signal_seconds}",
             "#SBATCH --requeue",
             "#SBATCH --open-mode=append"]
    if s.gpus_per_node:
        lines.append(f"#SBATCH --gpus-per-node={s.gpus_per_node}")
    lines += [f"#SBATCH {x}" for x in s.extra]
    env = f"export LR_DATA_DIR={os.environ['LR_DATA_DIR']}\n" if os.environ.get("LR_DATA_DIR") else ""
    lines += ["", "set -euo pipefail", f"cd {Path.cwd().resolve()}", env.rstrip(), *_CLEAN_ENV,
              "# one run per array task; srun starts one process per device with the Slurm environment Lightning reads",
              f"srun {sys.executable} -m lr_core.cli sweep-task {manifest.resolve()} \"$SLURM_ARRAY_TASK_ID\""]
    return "\n".join(x for x in lines if x is not None) + "\n"


def speed_script(spec: SweepSpec, manifest: Path, after: str | None) -> str:
    """The speed benchmark as one job that starts when the array ``after`` has ended."""
    s = spec.slurm
    lines = ["#!/bin/bash", f"#SBATCH --job-name={s.job_name or 'lr-' + spec.name}-speed",
             f"#SBATCH --partition={s.partition}", f"#SBATCH --time={s.time}", "#SBATCH --nodes=1",
             "#SBATCH --ntasks=1", f"#SBATCH --cpus-per-task={s.cpus_per_task}", f"#SBATCH --mem={s.mem}",
             f"#SBATCH --output={(spec.out / 'slurm' / 'speed-%j.out').resolve()}"]
    if after:
        lines.append(f"#SBATCH --dependency=afterany:{after}")
    if s.gpus_per_node:
        lines.append("#SBATCH --gpus-per-node=1")
    lines += [f"#SBATCH {x}" for x in s.extra]
    env = [f"export LR_DATA_DIR={os.environ['LR_DATA_DIR']}"] if os.environ.get("LR_DATA_DIR") else []
    lines += ["", "set -euo pipefail", f"cd {Path.cwd().resolve()}", *env, *_CLEAN_ENV,
              f"{sys.executable} -m lr_core.cli sweep-task {manifest.resolve()} {SPEED_DIR}"]
    return "\n".join(lines) + "\n"


def _sbatch(spec: SweepSpec, script: str, name: str) -> str:
    (spec.out / "slurm").mkdir(parents=True, exist_ok=True)
    script_path = spec.out / "slurm" / name
    atomic_write_text(script_path, script)
    out = subprocess.run(["sbatch", "--parsable", str(script_path)], capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise ConfigError(f"sbatch failed: {out.stderr.strip()}")
    return out.stdout.strip().split(";")[0]


def submit(spec_path: str | os.PathLike, dry_run: bool = False, check_partition: bool = True) -> str | None:
    """Validate, then submit the runs that are neither done nor queued (and the speed job, after
    them, if the spec has one and it is not done); returns the array's job id (or None)."""
    spec = load_spec(spec_path)
    if not spec.slurm.partition:
        raise _err(spec.source, "slurm.partition", "required to submit to Slurm (sinfo lists the partitions; "
                   "`lr sweep SPEC --local` runs without it)")
    runs = expand(spec)
    validate(spec, runs, check_partition=check_partition and not dry_run)
    todo = [r.index for r in runs if run_state(Path(r.run_dir))["state"] != "done"]
    if not dry_run:
        q = queued(spec)
        todo = [i for i in todo if i not in q]
    if not todo:
        print(f"sweep {spec.name}: nothing to submit ({len(runs)} runs done or queued)")
        if spec.speed and not dry_run and not speed_done(spec) and not queued(spec) and not speed_queued(spec):
            _submit_speed(spec, write_manifest(spec, runs), None)
        return None
    manifest = write_manifest(spec, runs) if not dry_run else spec.out / "manifest.json"
    script = sbatch_script(spec, manifest, todo)
    if dry_run:
        print(script)
        if spec.speed:
            print(speed_script(spec, manifest, "<array job id>"))
        return None
    name = f"submit-{len(_submissions(spec))}.sbatch"
    job_id = _sbatch(spec, script, name)
    subs = _submissions(spec) + [{"job_id": job_id, "indices": todo, "script": str(spec.out / "slurm" / name)}]
    atomic_write_text(spec.out / "submissions.json", json.dumps(subs, indent=2) + "\n")
    print(f"sweep {spec.name}: submitted job array {job_id} ({len(todo)} of {len(runs)} runs)")
    if spec.speed and not speed_done(spec):
        if speed_queued(spec):  # waiting on an older array: it must wait for this one too
            subprocess.run(["scancel", (spec.out / "slurm" / "speed_job.txt").read_text().strip()], timeout=60)
        _submit_speed(spec, manifest, job_id)
    return job_id


# --------------------------------------------------------------------------- one array task


class _Preemption:
    """SIGUSR1 (Slurm's warning before the time limit or pre-emption) -> stop at the next step;
    SIGTERM (scancel, the time limit) -> record the run as interrupted and exit."""

    def __init__(self, run_dir: Path, owner: bool = True):
        self.requested = False
        self.run_dir = run_dir
        self.owner = owner  # global rank 0: the only rank that writes status.json

    def install(self):
        signal.signal(signal.SIGUSR1, self._handle)
        signal.signal(signal.SIGTERM, self._terminate)

    def _handle(self, signum, frame):
        log.warning("received SIGUSR1: checkpointing and requeueing")
        self.requested = True

    def _terminate(self, signum, frame):
        if self.owner and not self.requested:  # after our own requeue the SIGTERM is expected: stay "requeued"
            _write_status(self.run_dir, "interrupted", message="SIGTERM (cancelled or out of time); resubmit to resume")
        raise SystemExit(128 + signum)

    def callback(self):
        import lightning as L

        flag = self

        class StopOnSignal(L.Callback):
            """Stop every rank after the same step when any of them got USR1 (an all-reduced flag)."""

            def on_train_batch_end(self, trainer, *args):
                from lr_core.distributed import any_rank

                if any_rank(flag.requested, trainer.strategy.root_device):
                    if not trainer.should_stop:
                        print(f"lr: USR1 stop after step {trainer.global_step} on rank {trainer.global_rank}",
                              flush=True)
                    flag.requested = True  # also on ranks the signal did not reach: their SIGTERM is expected
                    trainer.should_stop = True

        return StopOnSignal()


def _write_status(run_dir: Path, state: str, **extra) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    payload = {"state": state, "job": os.environ.get("SLURM_JOB_ID"),
               "array_job": os.environ.get("SLURM_ARRAY_JOB_ID"), "restarts": os.environ.get("SLURM_RESTART_COUNT", "0"),
               **extra}
    atomic_write_text(run_dir / STATUS_FILE, json.dumps(payload, indent=2) + "\n")


def _eval_settings(spec: SweepSpec, cfg):
    """What a run (or the ``untrained`` baseline) is evaluated with; with several ranks the corpus
    is encoded in one shard per rank."""
    from lr_core.distributed import launch_world_size
    from lr_core.evaluate import EvalSettings

    reps = spec.representations_for(cfg.variant)
    if cfg.variant == "untrained":
        reps = reps or ["symmetric"]
    return EvalSettings(split=spec.split, representations=tuple(reps) if reps else None,
                        batch_size=spec.eval_batch_size, cache_batch_size=spec.eval_cache_batch_size,
                        query_batch_size=spec.eval_query_batch_size, num_shards=max(1, launch_world_size()))


def _eval_model(spec: SweepSpec, cfg, run_dir: Path):
    """The model a run (or the ``untrained`` baseline) is evaluated as, on this rank's device."""
    from lr_core.devices import rank_device
    from lr_core.distributed import launch_world_size, local_rank
    from lr_core.evaluate import load_model_for_eval

    device = rank_device(spec.eval_device, local_rank()) if launch_world_size() > 1 else spec.eval_device
    if cfg.variant == "untrained":
        return load_model_for_eval(backbone=cfg.model.backbone, work_dir=run_dir, max_doc_len=cfg.data.max_doc_len,
                                   device=device)
    return load_model_for_eval(run_dir, device=device)


def encode_run_corpora(spec: SweepSpec, cfg, run_dir: Path):
    """Every rank: its share of each data set's corpus shards, then a wait for the others; returns
    the loaded model (rank 0 evaluates it). Nothing for BM25 or a single rank (returns None)."""
    from lr_core.corpus_encoding import rank_shards
    from lr_core.distributed import launch_rank, launch_world_size
    from lr_core.evaluate import encode_corpus_shards_on_ranks

    world = launch_world_size()
    if cfg.variant == "bm25" or world <= 1:
        return None
    model = _eval_model(spec, cfg, run_dir)
    settings = _eval_settings(spec, cfg)
    print(f"lr: rank {launch_rank()} encodes corpus shards {rank_shards(settings.num_shards, launch_rank(), world)} "
          f"of {settings.num_shards}", flush=True)
    encode_corpus_shards_on_ranks(model, spec.datasets, settings, spec.data_dir)
    return model


def evaluate_run(spec: SweepSpec, cfg, run_dir: Path, model=None) -> dict:
    """Evaluate a finished run (or a baseline) on every data set of the spec; the W&B summary values.
    ``model``: the one :func:`encode_run_corpora` loaded (None: load it here)."""
    from lr_core.evaluate import evaluate, evaluate_bm25

    records = []
    if cfg.variant == "bm25":
        records = [evaluate_bm25(ds, run_dir / "eval", split=spec.split, data_dir=spec.data_dir) for ds in spec.datasets]
    else:
        model = model or _eval_model(spec, cfg, run_dir)
        settings = _eval_settings(spec, cfg)
        for ds in spec.datasets:
            records += evaluate(model, ds, run_dir / "eval", settings, spec.data_dir)
        if cfg.variant == "mrl":  # the same model served at smaller widths (dense only)
            for dim in spec.mrl_dims:
                for ds in spec.datasets:
                    records += [{**r, "representation": f"{r['representation']}@{dim}"} for r in
                                evaluate(model, ds, run_dir / f"eval-mrl{dim}",
                                         replace(settings, representations=("dense",), mrl_dim=dim), spec.data_dir)]
    return {f"{r['dataset']}/{r['representation']}/{m}": r[m] for r in records
            for m in ("ndcg@10", "recall@20", "recall@50", "recall@100")}


def run_task(manifest_path: str | os.PathLike, index: int) -> int:
    """Train (or resume) and evaluate run ``index`` of a sweep manifest; requeue on SIGUSR1.
    Baselines (``bm25``, ``untrained``) are only evaluated."""
    from lr_core.distributed import launch_rank
    from lr_core.tracking import log_summary
    from lr_core.train import fit

    manifest = json.loads(Path(manifest_path).read_text())
    entry = manifest["runs"][int(index)]
    spec = load_spec(manifest["spec"])
    run = SweepRun(**entry)
    run_dir = Path(run.run_dir)
    if (run_dir / DONE_FILE).is_file():
        print(f"{run.name}: already done")
        return 0
    cfg = run_config(spec, run)
    if os.environ.get("SLURM_CPUS_PER_TASK"):  # torch would otherwise use every core of the node
        import torch

        torch.set_num_threads(int(os.environ["SLURM_CPUS_PER_TASK"]))
    rank = launch_rank()
    owner = rank == 0  # the one rank with side effects (status, W&B, evaluation, requeue)
    preempt = _Preemption(run_dir, owner)
    preempt.install()
    if owner:
        _write_status(run_dir, "running")
    try:
        if cfg.variant not in BASELINES:
            fit(cfg, extra_callbacks=[preempt.callback()])
            # fit returns on every rank only after rank 0 wrote train_done.json (a barrier)
            if preempt.requested or not (run_dir / "train_done.json").is_file():
                if owner:
                    _requeue(run_dir, spec.slurm.max_requeues)
                return 0
        model = encode_run_corpora(spec, cfg, run_dir)  # several ranks: each encodes its corpus shards
        if not owner:
            return 0
        print(f"lr: rank {rank} evaluates {run.name}", flush=True)
        summary = evaluate_run(spec, cfg, run_dir, model)
        log_summary(cfg, run_dir, summary)
        atomic_write_text(run_dir / DONE_FILE, json.dumps({"metrics": summary}, indent=2) + "\n")
        _write_status(run_dir, "done")
        return 0
    except Exception as exc:
        if not owner:  # the Slurm log has it; rank 0 fails too, in its next collective, and records it
            raise
        if json.loads((run_dir / STATUS_FILE).read_text()).get("state") != "interrupted":
            _write_status(run_dir, "failed", message=f"{type(exc).__name__}: {exc}"[:500])
        raise


def speed_task(manifest_path: str | os.PathLike) -> int:
    """``lr bench speed`` on the spec's finished run (and A3 run): ``<out>/speed/speed.json``."""
    from experiments.benchmarks import speed

    manifest = json.loads(Path(manifest_path).read_text())
    spec = load_spec(manifest["spec"])
    runs = {r["name"]: Path(r["run_dir"]) for r in manifest["runs"]}
    cfg = spec.speed
    needed = [cfg["run"], *([cfg["a3_run"]] if cfg.get("a3_run") else [])]
    missing = [n for n in needed if not (runs[n] / DONE_FILE).is_file()]
    if missing:
        raise ConfigError(f"sweep {spec.name}: speed needs finished runs {missing}; run `lr sweep` again when they are")
    argv = ["--run-dir", str(runs[cfg["run"]]), "--dataset", spec.datasets[0], "--out", str(spec.out / SPEED_DIR)]
    if spec.data_dir:
        argv += ["--data-dir", spec.data_dir]
    if cfg.get("a3_run"):
        argv += ["--a3-run-dir", str(runs[cfg["a3_run"]])]
    return speed.main([*argv, *map(str, cfg.get("args") or [])])


def speed_done(spec: SweepSpec) -> bool:
    return (spec.out / SPEED_DIR / "speed.json").is_file()


def speed_queued(spec: SweepSpec) -> bool:
    """Whether the speed job last submitted for this sweep is still pending or running in Slurm."""
    path = spec.out / "slurm" / "speed_job.txt"
    if not path.is_file() or shutil.which("squeue") is None:
        return False
    out = subprocess.run(["squeue", "-h", "-j", path.read_text().strip(), "-o", "%T"], capture_output=True, text=True,
                         timeout=60)
    return bool(out.stdout.strip())


def _submit_speed(spec: SweepSpec, manifest: Path, after: str | None) -> None:
    job = _sbatch(spec, speed_script(spec, manifest, after), "speed.sbatch")
    atomic_write_text(spec.out / "slurm" / "speed_job.txt", job + "\n")
    print(f"sweep {spec.name}: speed benchmark submitted as job {job}" + (f", after array {after}" if after else ""))


def run_local(spec_path: str | os.PathLike) -> int:
    """Every run that is not done, one after the other in this process (no Slurm), then the speed
    benchmark; rerunning resumes (finished runs are skipped, a killed run resumes from its checkpoint)."""
    spec = load_spec(spec_path)
    runs = expand(spec)
    validate(spec, runs, check_partition=False)
    manifest = write_manifest(spec, runs)
    failed = []
    for run in runs:
        if run_state(Path(run.run_dir))["state"] == "done":
            print(f"sweep {spec.name}: {run.name} done")
            continue
        print(f"sweep {spec.name}: {run.name} ({run.index + 1}/{len(runs)})", flush=True)
        start = time.perf_counter()
        try:
            run_task(manifest, run.index)
        except Exception as exc:  # recorded in its status.json; the other runs still go
            log.error("run %s failed: %s", run.name, exc)
            failed.append(run.name)
        _record_wall_time(Path(run.run_dir), time.perf_counter() - start)
    if spec.speed and not speed_done(spec) and not failed:
        start = time.perf_counter()
        if speed_task(manifest) != 0:
            failed.append(SPEED_DIR)
        else:
            _record_wall_time(spec.out / SPEED_DIR, time.perf_counter() - start)
    print(f"sweep {spec.name}: {len(runs) - len([f for f in failed if f != SPEED_DIR])} of {len(runs)} runs done"
          + (f"; failed: {', '.join(failed)} (see their status.json)" if failed else ""))
    return 1 if failed else 0


def _record_wall_time(run_dir: Path, seconds: float) -> None:
    """Append this invocation's wall seconds to ``RUN/wall_time.json`` (a resumed run has several)."""
    path = run_dir / "wall_time.json"
    old = json.loads(path.read_text()) if path.is_file() else {"invocations": []}
    old["invocations"].append({"seconds": round(seconds, 1), "end": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    old["total_seconds"] = round(sum(i["seconds"] for i in old["invocations"]), 1)
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(old, indent=2) + "\n")


def _requeue(run_dir: Path, max_requeues: int) -> bool:
    """Requeue this array task (rank 0 only) unless it has been requeued ``max_requeues`` times already;
    records the outcome in ``status.json``. Returns whether a requeue was asked for."""
    restarts = int(os.environ.get("SLURM_RESTART_COUNT") or 0)
    if restarts >= max_requeues:
        _write_status(run_dir, "interrupted", message=f"requeue limit reached ({restarts} of slurm.max_requeues="
                      f"{max_requeues}); run `lr sweep` again to resubmit it")
        return False
    _write_status(run_dir, "requeued")
    job = os.environ.get("SLURM_JOB_ID")
    if os.environ.get("SLURM_ARRAY_JOB_ID"):
        job = f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ['SLURM_ARRAY_TASK_ID']}"
    if not job or os.environ.get("SLURM_PROCID", "0") != "0":
        return False
    out = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        log.warning("scontrol requeue %s failed (%s); rerun `lr sweep` to resubmit", job, out.stderr.strip())
        return False
    return True
