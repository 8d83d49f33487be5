"""One run of a sweep: train (or resume), evaluate, record; and ``lr sweep SPEC --local``.

``lr sweep-task MANIFEST INDEX`` (what each array task runs) trains run INDEX and evaluates it
on the spec's data sets (baselines are only evaluated). On the pre-emption warning (``USR1``) a
run checkpoints and requeues itself (at most ``slurm.max_requeues`` times), continuing the same
W&B run. Global rank 0 owns every side effect: ``status.json``, the W&B run, the done files,
evaluation and the requeue; the other ranks train and exit. A USR1 that reaches any rank stops
all of them after the same step (the flag is all-reduced each step), so there is one checkpoint
to resume from. At evaluation every rank encodes its share of the corpus shards (``num_shards`` =
the number of ranks; on GPUs each rank on its own, ``cuda:<local rank>``), then rank 0 merges
them, builds the vocabulary cache and scores (:func:`lr_core.pipeline.run.encode_corpora_on_ranks`).
``lr sweep SPEC --local`` runs every run here, one after the other, without Slurm.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from lr_core.config import last_checkpoint
from lr_core.errors import ConfigError
from lr_core.io import atomic_write_text
from slurm.spec import (DONE_FILE, SPEED_DIR, STATUS_FILE, SweepRun, SweepSpec, expand, load_spec, run_config,
                        run_state, validate, write_manifest)
from slurm.submit import speed_done

log = logging.getLogger(__name__)


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


def run_task(manifest_path: str | os.PathLike, index: int) -> int:
    """Train (or resume) and evaluate run ``index`` of a sweep manifest; requeue on SIGUSR1.
    Baselines (``bm25``, ``untrained``) are only evaluated."""
    from lr_core.distributed import launch_rank
    from lr_core.pipeline.run import encode_corpora_on_ranks, evaluate_run, fit_run, is_baseline, summary_values
    from lr_core.retrieval.wandb_summary import log_summary

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
        if not is_baseline(cfg.variant):
            fit_run(cfg, [preempt.callback()])
            # fit returns on every rank only after rank 0 wrote train_done.json (a barrier)
            if preempt.requested or not (run_dir / "train_done.json").is_file():
                if owner:
                    _requeue(run_dir, spec.slurm.max_requeues)
                return 0
        if owner and spec.adapters and not is_baseline(cfg.variant):
            _publish(run_dir, spec.adapters / run.name)
        plan = spec.eval_plan(cfg.variant)
        model = encode_corpora_on_ranks(cfg, run_dir, plan)  # several ranks: each encodes its corpus shards
        if not owner:
            return 0
        print(f"lr: rank {rank} evaluates {run.name}", flush=True)
        summary = summary_values(evaluate_run(cfg, run_dir, plan, model))
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


def _publish(run_dir: Path, out: Path) -> None:
    """The trained run as a float16 adapter directory (once: a resumed task keeps the first export)."""
    from lr_core.adapters import export_adapter, is_adapter_dir
    from lr_core.train import load_trained

    if not is_adapter_dir(out):
        print(f"lr: publishing {run_dir.name} as {export_adapter(*load_trained(run_dir), run_dir, out)}", flush=True)


def speed_task(manifest_path: str | os.PathLike, bench: Callable[[list[str]], int]) -> int:
    """``lr bench speed`` on the spec's finished run (and A3 run): ``<out>/speed/speed.json``.

    ``bench`` is the speed benchmark's ``main(argv)``; the caller (the CLI, the outermost layer)
    passes it, so the sweep does not reach up into ``experiments/``."""
    manifest = json.loads(Path(manifest_path).read_text())
    spec = load_spec(manifest["spec"])
    runs = {r["name"]: Path(r["run_dir"]) for r in manifest["runs"]}
    cfg = spec.speed
    needed = [cfg["run"], *([cfg["a3_run"]] if cfg.get("a3_run") else [])]
    missing = [n for n in needed if not (runs[n] / DONE_FILE).is_file()]
    if missing:
        raise ConfigError(f"sweep {spec.name}: speed needs finished runs {missing}; run `lr sweep` again when they are")
    main_model, work_dir = _speed_model(spec, cfg["run"], runs[cfg["run"]])
    argv = ["--run-dir", str(main_model), "--work-dir", str(work_dir), "--dataset", spec.datasets[0],
            "--out", str(spec.out / SPEED_DIR)]
    if spec.data_dir:
        argv += ["--data-dir", spec.data_dir]
    if cfg.get("a3_run"):
        argv += ["--a3-run-dir", str(_speed_model(spec, cfg["a3_run"], runs[cfg["a3_run"]])[0])]
    return bench([*argv, *map(str, cfg.get("args") or [])])


def _speed_model(spec: SweepSpec, name: str, run_dir: Path) -> tuple[Path, Path]:
    """(model, work directory): the run with its checkpoint, or its published adapter where the checkpoint
    is gone. Checkpoints are not committed, so a sweep resumed on another machine times the adapter it
    published; the adapter's cache and corpus encoding go to ``<run>/adapter-work`` (its weights differ)."""
    from lr_core.adapters import is_adapter_dir

    if last_checkpoint(run_dir).is_file():
        return run_dir, run_dir
    if spec.adapters and is_adapter_dir(spec.adapters / name):
        return spec.adapters / name, run_dir / "adapter-work"
    raise ConfigError(f"sweep {spec.name}: speed needs {last_checkpoint(run_dir)} or a published adapter "
                      f"{(spec.adapters or Path('<adapters>')) / name}; neither exists")


def run_local(spec_path: str | os.PathLike, bench_speed: Callable[[list[str]], int] | None = None) -> int:
    """Every run that is not done, one after the other in this process (no Slurm), then the speed
    benchmark (``bench_speed``, see :func:`speed_task`); rerunning resumes (finished runs are
    skipped, a killed run resumes from its checkpoint)."""
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
        if bench_speed is None:
            raise ConfigError(f"sweep {spec.name}: the spec asks for the speed benchmark; pass bench_speed")
        if speed_task(manifest, bench_speed) != 0:
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
