"""A short real training run that is killed (SIGKILL) mid-way and resumed.

    lr bench train-resume [--config experiments/lightretriever_scifact.yaml] [--steps 50] [--kill-after 20]

Runs ``lr fit`` in a subprocess, kills it once a checkpoint at step >= ``--kill-after``
exists, runs the same command again (which resumes from ``last.ckpt``), and reports from
``logs/metrics.csv``: the step it resumed from, the final step, and the mean training loss
over the first and the last ten steps, total and contrastive part (the FLOPs term grows
during its quadratic warm-up, so the contrastive part is what shows learning).
"""
from __future__ import annotations

import argparse
import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from experiments.benchmarks.common import report_header, write_json_atomic
from lr_core.config import last_checkpoint


def _parser():
    p = argparse.ArgumentParser(prog="lr bench train-resume", description=__doc__.splitlines()[0])
    p.add_argument("--config", default="experiments/lightretriever_scifact.yaml")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--kill-after", type=int, default=20)
    p.add_argument("--run-dir", default="runs/bench-train-resume")
    p.add_argument("--out", type=Path, default=Path("reports/benchmarks/train_resume.json"))
    p.add_argument("--poll", type=float, default=5.0, help="seconds between checks for a new checkpoint")
    p.add_argument("overrides", nargs="*")
    return p


def _ckpt_step(path: Path) -> int:
    import torch

    try:
        return int(torch.load(path, map_location="cpu", weights_only=False)["global_step"])
    except Exception:  # mid-rename or absent
        return -1


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    run_dir = Path(args.run_dir)
    cmd = [sys.executable, "-m", "lr_core.cli", "fit", "--config", args.config, f"run_dir={run_dir}",
           f"trainer.max_steps={args.steps}", "trainer.checkpoint_every_n_steps=5", *args.overrides]
    last = last_checkpoint(run_dir)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    killed_at, seen = None, None
    while proc.poll() is None:
        time.sleep(args.poll)
        stamp = last.stat().st_mtime_ns if last.exists() else None
        if stamp is not None and stamp != seen and _ckpt_step(last) >= args.kill_after:  # load only new files
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            killed_at = _ckpt_step(last)
        seen = stamp
    first_s = time.perf_counter() - start
    if killed_at is None:
        raise SystemExit(f"the run ended (exit {proc.returncode}) before a checkpoint at step {args.kill_after}")
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    total_s = time.perf_counter() - start
    with open(run_dir / "logs" / "metrics.csv") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("train/loss")]
    by_step: dict[int, float] = {}
    ce_by_step: dict[int, float] = {}
    ce_keys = [k for k in ("train/full_dense", "train/light_dense", "train/light_sparse") if k in rows[0]]
    for r in rows:  # steps between the checkpoint and the kill were logged twice; the rerun's row wins
        by_step[int(r["step"])] = float(r["train/loss"])
        ce_by_step[int(r["step"])] = sum(float(r[k]) for k in ce_keys)
    steps = sorted(by_step)

    def mean(xs):
        return sum(xs) / len(xs)
    report = report_header("train_resume", argv)
    report.update({"config": args.config, "overrides": args.overrides, "run_dir": str(run_dir),
                   "killed_with": "SIGKILL", "resumed_from_step": killed_at, "final_step": _ckpt_step(last),
                   "logged_steps": len(steps), "loss_by_step": by_step, "contrastive_loss_by_step": ce_by_step,
                   "contrastive_terms": ce_keys,
                   "mean_loss_first_10": mean([by_step[s] for s in steps[:10]]),
                   "mean_loss_last_10": mean([by_step[s] for s in steps[-10:]]),
                   "mean_contrastive_first_10": mean([ce_by_step[s] for s in steps[:10]]),
                   "mean_contrastive_last_10": mean([ce_by_step[s] for s in steps[-10:]]),
                   "seconds_until_kill": round(first_s, 1), "seconds_total": round(total_s, 1)})
    write_json_atomic(args.out, report)
    print(f"killed at step {killed_at}, resumed to {report['final_step']}; mean contrastive loss first 10 steps "
          f"{report['mean_contrastive_first_10']:.3f} -> last 10 {report['mean_contrastive_last_10']:.3f}; "
          f"total loss (with FLOPs) {report['mean_loss_first_10']:.3f} -> {report['mean_loss_last_10']:.3f} -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
