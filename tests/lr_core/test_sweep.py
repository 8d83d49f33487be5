"""Sweeps on a real (local, single-node) Slurm: submission, idempotent resubmission,
pre-emption (USR1 -> checkpoint -> requeue -> resume), cancellation + resubmission, W&B offline.

Nothing is skipped: `slurm/local_slurm.sh start` installs (as root, with apt) and starts
munged + slurmctld + slurmd; a machine where that fails fails these tests.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from lr_core import sweep
from lr_core.cli import main
from lr_core.errors import ConfigError
from lr_core.variants import list_variants

from tests.helpers import REPO, write_subset

SMALL = ["data.batch_size=2", "data.n_negatives=1", "data.max_doc_len=32", "data.max_query_tokens=16"]


@pytest.fixture(scope="module")
def local_slurm():
    proc = subprocess.run([str(REPO / "slurm" / "local_slurm.sh"), "start"], capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return True


@pytest.fixture(scope="module")
def tiny_beir(shared_data, tmp_path_factory):
    return write_subset(shared_data, "scifact", tmp_path_factory.mktemp("beir"), n_queries=4, n_extra_docs=20).parent


def write_spec(path: Path, name: str, grid: dict, overrides: list[str], data_dir: Path, **extra) -> Path:
    spec = {"name": name, "base_config": str(REPO / "experiments" / "tiny.yaml"), "out": str(path.parent / name),
            "grid": grid, "overrides": overrides, "wandb": {"mode": "offline"},
            "evaluate": {"datasets": ["scifact"], "data_dir": str(data_dir), "representations": ["symmetric"]},
            "slurm": {"partition": "debug", "time": "00:30:00", "cpus_per_task": 1, "mem": "3G",
                      "array_throttle": 2, "signal_seconds": 30}}
    for key, value in extra.items():
        spec[key] = {**spec.get(key, {}), **value} if isinstance(value, dict) else value
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def squeue_ids(job_id: str) -> list[str]:
    out = subprocess.run(["squeue", "-h", "-r", "-j", job_id, "-o", "%i %T"], capture_output=True, text=True)
    return out.stdout.split("\n") if out.stdout.strip() else []


def wait_until(cond, timeout: float, what: str, every: float = 1.0):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def slurm_log(out: Path) -> str:
    return "\n".join(p.read_text()[-3000:] for p in sorted((out / "slurm").glob("*.out")))


def test_grid_runs_logs_and_resubmits_nothing(local_slurm, tiny_beir, tmp_path, monkeypatch, capsys):
    spec = write_spec(tmp_path / "grid.yaml", "grid", {"variant": ["lightretriever", "symmetric"], "seed": [1, 2]},
                      ["trainer.max_steps=3", "trainer.checkpoint_every_n_steps=1", *SMALL], tiny_beir,
                      speed={"run": "variant-lightretriever_seed-1",
                             "args": ["--queries", "8", "--batch-size", "4", "--top-k", "5", "--query-datasets",
                                      "scifact", "--query-data-dir", str(tiny_beir)]})
    out = tmp_path / "grid"
    job = sweep.submit(spec)
    assert job and job.isdigit()
    speed_job = (out / "slurm" / "speed_job.txt").read_text().strip()
    assert f"--dependency=afterany:{job}" in (out / "slurm" / "speed.sbatch").read_text()
    wait_until(lambda: not squeue_ids(job) and not squeue_ids(speed_job), 900, "the 2 x 2 sweep and its speed job")
    speed = json.loads((out / "speed" / "speed.json").read_text())  # after the array: the run it times is finished
    assert speed["N"] == 8 and speed["model"]["checkpoint"].startswith(str(out / "variant-lightretriever_seed-1"))
    runs = sorted(p for p in out.iterdir() if p.is_dir() and p.name.startswith("variant-"))
    assert len(runs) == 4, slurm_log(out)
    metrics = sorted(out.glob("*/eval/scifact/symmetric/metrics.json"))
    assert len(metrics) == 4, slurm_log(out)
    for m in metrics:
        rec = json.loads(m.read_text())
        assert rec["num_queries"] == 4 and 0 <= rec["ndcg@10"] <= 1
    for run in runs:
        rid = (run / "wandb_id.txt").read_text().strip()
        offline = list((run / "wandb").glob(f"offline-run-*-{rid}"))
        assert len(offline) == 1, run
        # the offline record (synced later with `wandb sync`) holds the tags and the final metrics
        record = (offline[0] / f"run-{rid}.wandb").read_bytes()
        assert b"scifact/symmetric/ndcg@10" in record and b"variant:" in record
        cfg = yaml.safe_load((run / "config.yaml").read_text())
        assert cfg["wandb"]["group"] == "grid" and cfg["trainer"]["seed"] in (1, 2)
        assert json.loads((run / sweep.DONE_FILE).read_text())["metrics"]["scifact/symmetric/ndcg@10"] >= 0
    # the same command again submits nothing
    assert sweep.submit(spec) is None
    assert len(json.loads((out / "submissions.json").read_text())) == 1
    assert main(["sweep", "status", str(spec)]) == 0
    assert "done: 5" in capsys.readouterr().out  # four runs and the speed benchmark


def test_cancelled_run_is_interrupted_and_resumes_when_resubmitted(local_slurm, tiny_beir, tmp_path, capsys):
    """scancel (SIGTERM): nothing requeues the run, its status says "interrupted", and submitting the spec
    again resumes it from its checkpoint into the same W&B run. (USR1 -> checkpoint -> requeue -> resume
    is the two-task test below.)"""
    spec = write_spec(tmp_path / "long.yaml", "long", {"variant": ["lightretriever"]},
                      ["trainer.max_steps=60", "trainer.checkpoint_every_n_steps=5", *SMALL], tiny_beir)
    out = tmp_path / "long"
    run = out / "variant-lightretriever"
    ckpt = run / "checkpoints" / "last.ckpt"
    job = sweep.submit(spec)
    wait_until(lambda: ckpt.exists(), 600, "the first checkpoint", every=0.3)
    subprocess.run(["scancel", job], check=True)
    wait_until(lambda: not squeue_ids(job), 300, "the cancelled job to leave the queue")
    assert not (run / "train_done.json").exists(), "training finished before the cancellation: raise max_steps"
    assert json.loads((run / "status.json").read_text())["state"] == "interrupted"
    assert main(["sweep", "status", str(spec)]) == 0
    assert "interrupted" in capsys.readouterr().out
    job2 = sweep.submit(spec)
    assert job2 and job2 != job
    wait_until(lambda: not squeue_ids(job2), 900, "the resubmitted run")
    done = json.loads((run / "train_done.json").read_text())
    assert done["global_step"] == 60 and done["resumed_from"], slurm_log(out)
    assert (run / sweep.DONE_FILE).exists(), slurm_log(out)
    # one W&B run id throughout: every offline directory continues it
    rid = (run / "wandb_id.txt").read_text().strip()
    dirs = list((run / "wandb").glob("offline-run-*"))
    assert len(dirs) >= 2 and all(d.name.endswith(rid) for d in dirs)
    log = (run / "logs" / "metrics.csv").read_text().splitlines()
    steps = [int(r.split(",")[list(map(str.strip, log[0].split(","))).index("step")]) for r in log[1:] if r.strip()]
    assert max(steps) >= 55 and min(steps) == 0  # one log across both sessions


@pytest.mark.parametrize("change, match", [
    ({"grid": {"variant": ["nope"]}}, "unknown variant"),
    ({"grid": {"variant": []}}, "empty grid"),
    ({"overrides": ["trainer.bogus=1"]}, "unknown key"),
    ({"slurm": {"partition": "no-such-partition"}}, "does not exist"),
    ({"slurm": {"partition": ""}}, "slurm.partition"),
    ({"slurm": {"gpus": 1}}, "unknown key"),
    ({"evaluate": {"datasets": ["no-such-set"]}}, "not found"),
])
def test_bad_specs_fail_before_submitting(local_slurm, tiny_beir, tmp_path, change, match):
    base = {"grid": {"variant": ["lightretriever"]}, "overrides": SMALL}
    spec = write_spec(tmp_path / "bad.yaml", "bad", base["grid"], base["overrides"], tiny_beir)
    raw = yaml.safe_load(spec.read_text())
    for key, value in change.items():
        raw[key] = {**raw[key], **value} if isinstance(value, dict) and key in ("slurm", "evaluate") else value
    spec.write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(ConfigError, match=match):
        sweep.submit(spec)
    assert not (tmp_path / "bad" / "submissions.json").exists()


def test_dry_run_prints_the_array_script(tiny_beir, tmp_path, capsys):
    spec = write_spec(tmp_path / "d.yaml", "d", {"variant": ["lightretriever", "symmetric"], "seed": [1, 2, 3]}, SMALL,
                      tiny_beir, slurm={"gpus_per_node": 4, "nodes": 2})
    assert main(["sweep", str(spec), "--dry-run"]) == 0
    script = capsys.readouterr().out
    assert "#SBATCH --array=0,1,2,3,4,5%2" in script and "#SBATCH --gpus-per-node=4" in script
    assert "#SBATCH --ntasks-per-node=4" in script and "#SBATCH --signal=USR1@30" in script and "srun " in script
    runs = sweep.expand(sweep.load_spec(spec))
    cfg = sweep.run_config(sweep.load_spec(spec), runs[0])
    assert (cfg.trainer.devices, cfg.trainer.num_nodes, cfg.trainer.strategy) == (4, 2, "ddp")
    assert [r.name for r in runs][:2] == ["variant-lightretriever_seed-1", "variant-lightretriever_seed-2"]
    assert not (tmp_path / "d").exists()  # a dry run writes nothing


def test_local_sweep_with_baselines_mrl_widths_and_speed(tiny_beir, tmp_path, capsys):
    """`lr sweep SPEC --local`: no Slurm; BM25 and the untrained backbone are evaluated without training,
    per-variant representations, MRL at a smaller width, then the speed benchmark on a finished run;
    a second invocation redoes nothing."""
    spec = write_spec(tmp_path / "local.yaml", "local", {"variant": ["bm25", "untrained", "mrl"]},
                      ["trainer.max_steps=2", "loss.mrl_dims=[16]", *SMALL], tiny_beir,
                      evaluate={"representations": {"mrl": ["dense"]}, "mrl_dims": [16]},
                      speed={"run": "variant-mrl", "args": ["--queries", "16", "--batch-size", "8", "--top-k", "5",
                                                            "--query-datasets", "scifact",
                                                            "--query-data-dir", str(tiny_beir)]})
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
    done = json.loads((mrl / sweep.DONE_FILE).read_text())["metrics"]
    assert {"scifact/dense/ndcg@10", "scifact/dense@16/ndcg@10"} <= set(done)
    speed = json.loads((out / "speed" / "speed.json").read_text())
    assert speed["N"] == 16 and speed["model"]["checkpoint"].startswith(str(mrl))
    for run in ("variant-bm25", "variant-untrained", "variant-mrl", "speed"):
        assert json.loads((out / run / "wall_time.json").read_text())["total_seconds"] > 0
    before = (mrl / "eval" / "scifact" / "dense" / "metrics.json").stat().st_mtime_ns
    capsys.readouterr()
    assert main(["sweep", str(spec), "--local"]) == 0
    assert "3 of 3 runs done" in capsys.readouterr().out
    assert (mrl / "eval" / "scifact" / "dense" / "metrics.json").stat().st_mtime_ns == before
    assert main(["sweep", "status", str(spec)]) == 0
    assert "done: 4" in capsys.readouterr().out  # three runs and the speed benchmark


@pytest.mark.parametrize("change, match", [
    ({"speed": {"run": "variant-nope"}}, "speed.run"),
    ({"speed": {"args": ["--threads", "2"]}}, "speed"),
    ({"evaluate": {"mrl_dims": [0]}}, "evaluate.mrl_dims"),
    ({"evaluate": {"representations": {"lightretriever": ["magic"]}}}, "unknown"),
    ({"evaluate": {"cache_batch_size": 0}}, "evaluate.cache_batch_size"),
    ({"evaluate": {"query_batch_size": "64"}}, "evaluate.query_batch_size"),
    ({"evaluate": {"batch_size": None}}, "evaluate.batch_size"),
])
def test_bad_speed_and_evaluate_settings_fail_before_running(tiny_beir, tmp_path, change, match):
    spec = write_spec(tmp_path / "bad.yaml", "bad", {"variant": ["lightretriever", "bm25"]}, SMALL, tiny_beir, **change)
    with pytest.raises(ConfigError, match=match):
        sweep.run_local(spec)
    assert not (tmp_path / "bad" / "variant-bm25").exists()


def test_evaluation_batch_sizes_shards_and_devices_follow_the_spec_and_the_ranks(tiny_beir, tmp_path, monkeypatch):
    """The spec's batch sizes reach the evaluation settings; with several ranks (srun's environment) the
    corpus is encoded in one shard per rank and each rank evaluates on its own GPU."""
    import lr_core.evaluate

    path = write_spec(tmp_path / "b.yaml", "b", {"variant": ["lightretriever", "untrained"]}, SMALL, tiny_beir,
                      evaluate={"batch_size": 8, "cache_batch_size": 512, "query_batch_size": 32, "device": "cuda"})
    spec = sweep.load_spec(path)
    trained, untrained = (sweep.run_config(spec, run) for run in sweep.expand(spec))
    for var in ("WORLD_SIZE", "SLURM_STEP_NUM_TASKS", "LOCAL_RANK", "SLURM_LOCALID"):
        monkeypatch.delenv(var, raising=False)
    s = sweep._eval_settings(spec, trained)
    assert (s.batch_size, s.cache_batch_size, s.query_batch_size, s.num_shards, s.representations) == \
        (8, 512, 32, 1, ("symmetric",))
    default = sweep.load_spec(write_spec(tmp_path / "d.yaml", "d", {"variant": ["untrained"]}, SMALL, tiny_beir))
    s = sweep._eval_settings(default, untrained)
    assert (s.batch_size, s.cache_batch_size, s.query_batch_size) == (16, None, 64)
    devices = []
    monkeypatch.setattr(lr_core.evaluate, "load_model_for_eval", lambda *a, device, **kw: devices.append(device))
    sweep._eval_model(spec, trained, tmp_path)
    monkeypatch.setenv("SLURM_STEP_NUM_TASKS", "4")
    monkeypatch.setenv("SLURM_LOCALID", "3")
    sweep._eval_model(spec, untrained, tmp_path)
    assert devices == ["cuda", "cuda:3"]
    assert sweep._eval_settings(spec, trained).num_shards == 4


# Specs whose evaluation sets are downloaded by the user (not in the offline data): tested below with stand-ins.
PAPER_SPEC = REPO / "experiments" / "sweeps" / "paper_llama32_1b.yaml"


@pytest.mark.parametrize("path", sorted(p for p in (REPO / "experiments" / "sweeps").glob("*.yaml") if p != PAPER_SPEC),
                         ids=lambda p: p.name)
def test_every_sweep_spec_in_the_repository_is_valid(path, shared_data, monkeypatch):
    """Each shipped spec expands and validates (variants, override keys, data sets, speed runs)."""
    monkeypatch.setenv("LR_DATA_DIR", str(shared_data))
    spec = sweep.load_spec(path)
    runs = sweep.expand(spec)
    sweep.validate(spec, runs, check_partition=False)
    assert len(runs) >= 1
    for run in runs:
        cfg = sweep.run_config(spec, run)
        assert cfg.variant in sweep.BASELINES or cfg.variant in list_variants()


def test_a_spec_extends_another(tiny_beir, tmp_path):
    """``extends`` inherits everything but name and out; overrides merge by key."""
    sub = tmp_path / "base"
    sub.mkdir()
    base = write_spec(sub / "base.yaml", "base", {"variant": ["symmetric"]}, [*SMALL, "trainer.max_steps=40"],
                      tiny_beir, evaluate={"mrl_dims": [16]})
    raw = yaml.safe_load(base.read_text())
    raw["base_config"] = "../tiny.yaml"  # relative to base.yaml: must stay so when inherited
    (tmp_path / "tiny.yaml").write_text((REPO / "experiments" / "tiny.yaml").read_text())
    base.write_text(yaml.safe_dump(raw))
    child = tmp_path / "child.yaml"
    child.write_text(yaml.safe_dump({"extends": "base/base.yaml", "name": "child", "out": str(tmp_path / "c"),
                                     "overrides": ["trainer.max_steps=300", "loss.flops_warmup_steps=100"]}))
    spec = sweep.load_spec(child)
    assert spec.name == "child" and spec.out == tmp_path / "c"
    assert spec.base_config.resolve() == (tmp_path / "tiny.yaml").resolve()
    assert spec.overrides == [*SMALL, "trainer.max_steps=300", "loss.flops_warmup_steps=100"]
    assert spec.mrl_dims == [16] and spec.datasets == ["scifact"] and spec.slurm.partition == "debug"
    # a child without its own name is refused (it would share the parent's runs)
    child.write_text(yaml.safe_dump({"extends": "base/base.yaml"}))
    with pytest.raises(ConfigError, match="name"):
        sweep.load_spec(child)
    child.write_text(yaml.safe_dump({"extends": "missing.yaml", "name": "x"}))
    with pytest.raises(ConfigError, match="extends: missing.yaml not found"):
        sweep.load_spec(child)
    child.write_text(yaml.safe_dump({"extends": "child.yaml", "name": "x"}))
    with pytest.raises(ConfigError, match="cycle"):
        sweep.load_spec(child)


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
                       *SMALL[1:]], tiny_beir, slurm={"ntasks_per_node": 2, "mem": "6G"},
                      evaluate={"representations": ["dense", "hybrid"]})
    out = tmp_path / "ddp"
    run = out / "variant-lightretriever"
    ckpt = run / "checkpoints" / "last.ckpt"
    cfg = sweep.run_config(sweep.load_spec(spec), sweep.expand(sweep.load_spec(spec))[0])
    assert (cfg.trainer.devices, cfg.trainer.strategy, cfg.trainer.accelerator) == (2, "ddp", "cpu")
    job = sweep.submit(spec)
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
    monkeypatch.setattr(sweep.subprocess, "run", lambda cmd, **kw: calls.append(cmd) or
                        subprocess.CompletedProcess(cmd, 0, "", ""))
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    monkeypatch.setenv("SLURM_PROCID", "0")
    monkeypatch.delenv("SLURM_ARRAY_JOB_ID", raising=False)
    monkeypatch.setenv("SLURM_RESTART_COUNT", "2")
    assert sweep._requeue(tmp_path, max_requeues=3) is True
    assert calls == [["scontrol", "requeue", "77"]]
    assert json.loads((tmp_path / "status.json").read_text())["state"] == "requeued"
    monkeypatch.setenv("SLURM_RESTART_COUNT", "3")
    assert sweep._requeue(tmp_path, max_requeues=3) is False
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


def test_paper_spec_dry_run_prints_the_multi_node_gpu_script(tmp_path, monkeypatch, capsys):
    """experiments/sweeps/paper_llama32_1b.yaml: the paper's hyper-parameters, 2 nodes x 8 GPUs, and its
    sbatch script (GPUs, nodes, tasks per node, srun, signal, requeue). Its BEIR sets are downloaded by users:
    without them validation names the missing set; with stand-in directories it validates."""
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("LR_DATA_DIR", str(tmp_path))
    with pytest.raises(ConfigError, match="evaluate.datasets.*arguana"):
        sweep.submit(PAPER_SPEC, dry_run=True)
    spec = sweep.load_spec(PAPER_SPEC)
    for ds in spec.datasets:
        (tmp_path / ds).mkdir()
    assert main(["sweep", str(PAPER_SPEC), "--dry-run"]) == 0
    script = capsys.readouterr().out
    for line in ("#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=8", "#SBATCH --gpus-per-node=8",
                 "#SBATCH --signal=USR1@600", "#SBATCH --requeue", "#SBATCH --array=0,1,2,3%4"):
        assert line in script, line
    assert "\nsrun " in script and "sweep-task" in script
    runs = sweep.expand(spec)
    assert [r.name for r in runs] == ["variant-symmetric", "variant-lightretriever", "variant-a2-embedding-query",
                                      "variant-kl"]
    cfg = sweep.run_config(spec, runs[1])
    assert (cfg.trainer.devices, cfg.trainer.num_nodes, cfg.trainer.strategy, cfg.trainer.accelerator) == \
        (8, 2, "ddp", "gpu")
    assert cfg.model.backbone == "meta-llama/Llama-3.2-1B" and cfg.model.gradient_checkpointing
    assert (cfg.data.batch_size, cfg.data.n_negatives, cfg.data.max_doc_len, cfg.data.max_query_tokens) == (128, 7, 512, 512)
    assert (cfg.trainer.max_steps, cfg.optim.lr, cfg.trainer.precision, cfg.loss.flops_warmup_steps) == \
        (12000, 2e-5, "bf16-mixed", 4000)
    assert cfg.data.batch_size % (8 * 2) == 0  # the global batch splits evenly over the 16 ranks
    assert len({s.get("source") for s in cfg.data.train}) == len(cfg.data.train) >= 2  # a multi-dataset mix
    assert not (REPO / spec.out).exists()  # a dry run writes nothing
