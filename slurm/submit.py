"""Submitting a sweep to Slurm as one job array, and its progress.

``lr sweep SPEC`` validates everything first (variant, keys, data sets, partition), then submits
an array of only the runs that are neither finished (``eval_done.json``) nor already queued;
running it again after failures, time-outs or cancellations resubmits exactly those, and each
resumes from its checkpoint. ``speed`` (optional) runs ``lr bench speed`` on a finished run of
the grid (and an A3 run, if named) as one more job once the array is done; its ``speed.json``
goes to ``<out>/speed``. ``lr sweep SPEC --status`` shows every run's state.

Several ranks per run (``gpus_per_node`` or ``ntasks_per_node`` > 1, or ``nodes`` > 1): ``srun``
starts one task per rank and Lightning trains with DDP (:mod:`slurm.task`).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from lr_core.errors import ConfigError
from lr_core.io import atomic_write_text
from slurm.spec import (SPEED_DIR, SweepSpec, expand, load_spec, run_state, spec_error, tasks_per_node, validate,
                        write_manifest)


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
        raise spec_error(spec.source, "slurm.partition", "required to submit to Slurm (sinfo lists the partitions; "
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
