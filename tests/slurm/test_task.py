"""slurm.task: one sweep run on a real (local) Slurm, pre-emption (USR1 -> checkpoint -> requeue ->
resume), cancellation + resubmission, two ranks stopping at one step, the requeue cap, rank-0
side effects; and `lr sweep --local` (baselines, MRL widths, the speed benchmark).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from slurm import spec as sweep_spec
from slurm import submit, task
from lr_core.cli import main
from lr_core.errors import ConfigError

from tests.helpers import REPO, SWEEP_SMALL, slurm_log, squeue_ids, wait_until, write_spec


def test_cancelled_run_is_interrupted_and_resumes_when_resubmitted(local_slurm, tiny_beir, tmp_path, capsys):
    """scancel (SIGTERM): nothing requeues the run, its status says "interrupted", and submitting the spec
    again resumes it from its checkpoint into the same W&B run. (USR1 -> checkpoint -> requeue -> resume
    is the two-task test below.)"""
    spec = write_spec(tmp_path / "long.yaml", "long", {"variant": ["lightretriever"]},
                      ["trainer.max_steps=60", "trainer.checkpoint_every_n_steps=5", *SWEEP_SMALL], tiny_beir)
    out = tmp_path / "long"
    run = out / "variant-lightretriever"
    ckpt = run / "checkpoints" / "last.ckpt"
    job = submit.submit(spec)
    wait_until(lambda: ckpt.exists(), 600, "the first checkpoint", every=0.3)
    subprocess.run(["scancel", job], check=True)
    wait_until(lambda: not squeue_ids(job), 300, "the cancelled job to leave the queue")
    assert not (run / "train_done.json").exists(), "training finished before the cancellation: raise max_steps"
    assert json.loads((run / "status.json").read_text())["state"] == "interrupted"
    assert main(["sweep", "status", str(spec)]) == 0
    assert "interrupted" in capsys.readouterr().out
    job2 = submit.submit(spec)
    assert job2 and job2 != job
    wait_until(lambda: not squeue_ids(job2), 900, "the resubmitted run")
    done = json.loads((run / "train_done.json").read_text())
    assert done["global_step"] == 60 and done["resumed_from"], slurm_log(out)
    assert (run / sweep_spec.DONE_FILE).exists(), slurm_log(out)
    # one W&B run id throughout: every offline directory continues it
    rid = (run / "wandb_id.txt").read_text().strip()
    dirs = list((run / "wandb").glob("offline-run-*"))
    assert len(dirs) >= 2 and all(d.name.endswith(rid) for d in dirs)
    log = (run / "logs" / "metrics.csv").read_text().splitlines()
    steps = [int(r.split(",")[list(map(str.strip, log[0].split(","))).index("step")]) for r in log[1:] if r.strip()]
    assert max(steps) >= 55 and min(steps) == 0  # one log across both sessions


def test_local_sweep_with_baselines_mrl_widths_and_speed(tiny_beir, tmp_path, capsys):
    """`lr sweep SPEC --local`: no Slurm; BM25 and the untrained backbone are evaluated without training,
    per-variant representations, MRL at a smaller width, then the speed benchmark on a finished run;
    a second invocation redoes nothing."""
    spec = write_spec(tmp_path / "local.yaml", "local", {"variant": ["bm25", "untrained", "mrl"]},
                      ["trainer.max_steps=2", "loss.mrl_dims=[16]", *SWEEP_SMALL], tiny_beir,
                      evaluate={"representations": {"mrl": ["dense"]}, "mrl_dims": [16]},
                      speed={"run": "variant-mrl", "args": ["--queries", "16", "--batch-size", "8", "--top-k", "5",
                                                            "--query-datasets", "scifact",
                                                            "--query-data-dir", str(tiny_beir)]},
                      adapters=str(tmp_path / "adapters"))
    out = tmp_path / "local"
    assert main(["sweep", str(spec), "--local"]) == 0
    bm25 = json.loads((out / "variant-bm25" / "eval" / "scifact" / "bm25" / "metrics.json").read_text())
    assert bm25["num_queries"] == 4 and 0 < bm25["ndcg@10"] <= 1
    assert not (out / "variant-bm25" / "checkpoints").exists() and not (out / "variant-untrained" / "checkpoints").exists()
    untrained = json.loads((out / "variant-untrained" / "eval" / "scifact" / "symmetric" / "metrics.json").read_text())
    assert untrained["variant"] == "untrained" and untrained["checkpoint_hash"] == "untrained"
    mrl = out / "variant-mrl"
    assert sorted(p.name for p in (mrl / "eval" / "scifact").iterdir()) == ["dense"]  # the mapping, not the default
    full = json.loads((mrl / "eval" / "scifact" / "dense" / "metrics.json").read_text())
    small = json.loads((mrl / "eval-mrl16" / "scifact" / "dense" / "metrics.json").read_text())
    assert full["settings"]["mrl_dim"] is None and small["settings"]["mrl_dim"] == 16
    assert full["checkpoint_hash"] == small["checkpoint_hash"] != "untrained"
    done = json.loads((mrl / sweep_spec.DONE_FILE).read_text())["metrics"]
    assert {"scifact/dense/ndcg@10", "scifact/dense@16/ndcg@10"} <= set(done)
    speed = json.loads((out / "speed" / "speed.json").read_text())
    assert speed["N"] == 16 and speed["model"]["checkpoint"].startswith(str(mrl))
    # every trained run is published (spec `adapters`), baselines are not
    assert [p.name for p in (tmp_path / "adapters").iterdir()] == ["variant-mrl"]
    info = json.loads((tmp_path / "adapters" / "variant-mrl" / "adapter_info.json").read_text())
    assert info["variant"] == "mrl" and info["source_run"] == str(mrl)
    for run in ("variant-bm25", "variant-untrained", "variant-mrl", "speed"):
        assert json.loads((out / run / "wall_time.json").read_text())["total_seconds"] > 0
    before = (mrl / "eval" / "scifact" / "dense" / "metrics.json").stat().st_mtime_ns
    capsys.readouterr()
    assert main(["sweep", str(spec), "--local"]) == 0
    assert "3 of 3 runs done" in capsys.readouterr().out
    assert (mrl / "eval" / "scifact" / "dense" / "metrics.json").stat().st_mtime_ns == before
    assert main(["sweep", "status", str(spec)]) == 0
    assert "done: 4" in capsys.readouterr().out  # three runs and the speed benchmark
    # on another machine the run's checkpoint is gone (not committed): the speed job times its published adapter
    shutil.rmtree(mrl / "checkpoints")
    shutil.rmtree(out / "speed")
    assert main(["sweep", str(spec), "--local"]) == 0
    speed = json.loads((out / "speed" / "speed.json").read_text())
    assert speed["model"]["checkpoint"] == str(tmp_path / "adapters" / "variant-mrl")
    assert any((mrl / "adapter-work" / "cache").iterdir())  # not the run's own cache: other weights
    shutil.rmtree(tmp_path / "adapters")
    shutil.rmtree(out / "speed")
    with pytest.raises(ConfigError, match="checkpoints/last.ckpt or a published adapter"):
        task.speed_task(out / "manifest.json", lambda argv: 0)


@pytest.mark.parametrize("change, match", [
    ({"speed": {"run": "variant-nope"}}, "speed.run"),
    ({"speed": {"args": ["--threads", "2"]}}, "speed"),
    ({"evaluate": {"mrl_dims": [0]}}, "evaluate.mrl_dims"),
    ({"evaluate": {"representations": {"lightretriever": ["magic"]}}}, "unknown"),
    ({"evaluate": {"cache_batch_size": 0}}, "evaluate.cache_batch_size"),
    ({"evaluate": {"query_batch_size": "64"}}, "evaluate.query_batch_size"),
    ({"evaluate": {"batch_size": None}}, "evaluate.batch_size"),
    ({"evaluate": {"precision": "fp16"}}, "evaluate.precision"),
])
def test_bad_speed_and_evaluate_settings_fail_before_running(tiny_beir, tmp_path, change, match):
    spec = write_spec(tmp_path / "bad.yaml", "bad", {"variant": ["lightretriever", "bm25"]}, SWEEP_SMALL, tiny_beir, **change)
    with pytest.raises(ConfigError, match=match):
        task.run_local(spec)
    assert not (tmp_path / "bad" / "variant-bm25").exists()


# --------------------------------------------------------------------------- data-parallel runs


def rank_pids(manifest: Path) -> dict[int, int]:
    """Global rank -> pid of the `sweep-task` processes of ``manifest`` now running (read from /proc)."""
    out = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
            env = dict(kv.split(b"=", 1) for kv in (proc / "environ").read_bytes().split(b"\0") if b"=" in kv)
        except OSError:
            continue
        if b"sweep-task" in cmd and str(manifest).encode() in cmd and b"SLURM_PROCID" in env:
            out[int(env[b"SLURM_PROCID"])] = int(proc.name)
    return out


def test_two_task_job_stops_both_ranks_at_one_step_and_evaluates_once(local_slurm, tiny_beir, tmp_path,
                                                                   monkeypatch):
    """`--ntasks-per-node=2` (gloo on the CPU): USR1 reaches only rank 1, yet both ranks stop after the same
    step with one checkpoint; the requeued job resumes, rank 0 alone evaluates (one metrics.json per
    representation), and there is one W&B run and one status. The submitting shell holds a W&B service
    token (as any process that called wandb.init does): the jobs must not attach to that service."""
    monkeypatch.setenv("WANDB_SERVICE", "not-a-service-token")  # wandb.init fails on it if a job inherits it
    spec = write_spec(tmp_path / "ddp.yaml", "ddp", {"variant": ["lightretriever"]},
                      ["trainer.max_steps=20", "trainer.checkpoint_every_n_steps=5", "data.batch_size=4",
                       *SWEEP_SMALL[1:]], tiny_beir, slurm={"ntasks_per_node": 2, "mem": "6G"},
                      evaluate={"representations": ["dense", "hybrid"]})
    out = tmp_path / "ddp"
    run = out / "variant-lightretriever"
    ckpt = run / "checkpoints" / "last.ckpt"
    cfg = sweep_spec.run_config(sweep_spec.load_spec(spec), sweep_spec.expand(sweep_spec.load_spec(spec))[0])
    assert (cfg.trainer.devices, cfg.trainer.strategy, cfg.trainer.accelerator) == (2, "ddp", "cpu")
    job = submit.submit(spec)
    assert "#SBATCH --ntasks-per-node=2" in (out / "slurm" / "submit-0.sbatch").read_text()
    wait_until(lambda: ckpt.exists(), 600, "the first checkpoint", every=0.3)
    pids = rank_pids(out / "manifest.json")
    assert sorted(pids) == [0, 1], slurm_log(out)
    os.kill(pids[1], 10)  # SIGUSR1 to rank 1 only
    wait_until(lambda: not squeue_ids(job) or json.loads((run / "status.json").read_text())["state"] in ("done", "failed"),
               1800, "the requeued run to finish", every=1.0)  # generous: a busy shared CPU starves niced jobs
    assert json.loads((run / "status.json").read_text())["state"] == "done", slurm_log(out)
    text = "\n".join(p.read_text(errors="replace") for p in sorted((out / "slurm").glob("*.out")))
    assert text.count("received SIGUSR1") == 1  # the signal reached one rank only
    stops = re.findall(r"lr: USR1 stop after step (\d+) on rank (\d+)", text)
    assert len(stops) == 2 and {r for _, r in stops} == {"0", "1"} and len({s for s, _ in stops}) == 1, text[-5000:]
    assert re.findall(r"lr: rank (\d+) evaluates", text) == ["0"], text[-5000:]
    # each rank encoded its own corpus shard (once, in the session that finished training); rank 0 merged them
    shards = re.findall(r"lr: rank (\d+) encodes corpus shards \[(\d+)\] of 2", text)
    assert sorted(shards) == [("0", "0"), ("1", "1")], text[-5000:]
    assert sorted(p.name for p in run.glob("corpus/*/shard-*.npz")) == ["shard-00000-of-00002.npz",
                                                                       "shard-00001-of-00002.npz"]
    done = json.loads((run / "train_done.json").read_text())
    assert done["global_step"] == 20 and done["resumed_from"], text[-5000:]
    # the resumed session started exactly at the stop step: every step is logged once across the two sessions
    import csv

    with open(run / "logs" / "metrics.csv") as fh:
        steps = [int(r["step"]) for r in csv.DictReader(fh) if r.get("train/loss")]
    assert steps == list(range(20)), steps
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "done" and int(status["restarts"]) == 1
    assert not list(run.glob("status*.json"))[1:]  # one status file
    reps = sorted(p.name for p in (run / "eval" / "scifact").iterdir())
    assert reps == ["dense", "hybrid"]
    for rep in reps:
        assert [p.name for p in (run / "eval" / "scifact" / rep).glob("metrics*.json")] == ["metrics.json"]
    rid = (run / "wandb_id.txt").read_text().strip()
    dirs = sorted((run / "wandb").glob("offline-run-*"))
    assert len(dirs) == 2 and all(d.name.endswith(rid) for d in dirs), dirs  # one per session, rank 0 only


def test_requeue_is_capped(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(task.subprocess, "run", lambda cmd, **kw: calls.append(cmd) or
                        subprocess.CompletedProcess(cmd, 0, "", ""))
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    monkeypatch.setenv("SLURM_PROCID", "0")
    monkeypatch.delenv("SLURM_ARRAY_JOB_ID", raising=False)
    monkeypatch.setenv("SLURM_RESTART_COUNT", "2")
    assert task._requeue(tmp_path, max_requeues=3) is True
    assert calls == [["scontrol", "requeue", "77"]]
    assert json.loads((tmp_path / "status.json").read_text())["state"] == "requeued"
    monkeypatch.setenv("SLURM_RESTART_COUNT", "3")
    assert task._requeue(tmp_path, max_requeues=3) is False
    assert len(calls) == 1
    st = json.loads((tmp_path / "status.json").read_text())
    assert st["state"] == "interrupted" and "requeue limit" in st["message"]


def test_only_rank_zero_has_side_effects(tmp_path, monkeypatch):
    """A non-zero rank (as srun announces it) opens no W&B run and writes no config or status."""
    from lr_core.distributed import is_rank_zero, launch_rank
    from lr_core.train import build_trainer

    assert launch_rank({"RANK": "3", "SLURM_PROCID": "0"}) == 3 and launch_rank({"LOCAL_RANK": "1"}) == 1
    assert is_rank_zero({}) and is_rank_zero({"SLURM_PROCID": "0"}) and not is_rank_zero({"NODE_RANK": "1"})
    from tests.helpers import fast_config

    cfg = fast_config(REPO / "experiments" / "tiny.yaml", tmp_path, ["wandb.enabled=true", "wandb.mode=offline"])
    opened = []
    monkeypatch.setattr("lr_core.tracking.wandb_logger", lambda *a: opened.append(a))
    monkeypatch.setenv("SLURM_PROCID", "1")
    trainer = build_trainer(cfg, tmp_path / "run")
    assert opened == [] and not any(type(lg).__name__ == "WandbLogger" for lg in trainer.loggers)
    assert not (tmp_path / "run" / "wandb_id.txt").exists()
    monkeypatch.setenv("SLURM_PROCID", "0")
    build_trainer(cfg, tmp_path / "run")
    assert len(opened) == 1
