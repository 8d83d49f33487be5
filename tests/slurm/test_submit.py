"""slurm.submit on a real (local, single-node) Slurm: submission, idempotent resubmission, W&B offline,
bad specs refused before submitting, the array and multi-node scripts (dry run).

Nothing is skipped: `slurm/local_slurm.sh start` (tests/slurm/conftest.py) must work.
"""
from __future__ import annotations

import json

import pytest
import yaml

from slurm import spec as sweep_spec
from slurm import submit
from lr_core.cli import main
from lr_core.errors import ConfigError

from tests.helpers import PAPER_SPEC, REPO, SWEEP_SMALL, slurm_log, squeue_ids, wait_until, write_spec


def test_grid_runs_logs_and_resubmits_nothing(local_slurm, tiny_beir, tmp_path, monkeypatch, capsys):
    spec = write_spec(tmp_path / "grid.yaml", "grid", {"variant": ["lightretriever", "symmetric"], "seed": [1, 2]},
                      ["trainer.max_steps=3", "trainer.checkpoint_every_n_steps=1", *SWEEP_SMALL], tiny_beir,
                      speed={"run": "variant-lightretriever_seed-1",
                             "args": ["--queries", "8", "--batch-size", "4", "--top-k", "5", "--query-datasets",
                                      "scifact", "--query-data-dir", str(tiny_beir)]})
    out = tmp_path / "grid"
    job = submit.submit(spec)
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
        assert json.loads((run / sweep_spec.DONE_FILE).read_text())["metrics"]["scifact/symmetric/ndcg@10"] >= 0
    # the same command again submits nothing
    assert submit.submit(spec) is None
    assert len(json.loads((out / "submissions.json").read_text())) == 1
    assert main(["sweep", "status", str(spec)]) == 0
    assert "done: 5" in capsys.readouterr().out  # four runs and the speed benchmark


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
    base = {"grid": {"variant": ["lightretriever"]}, "overrides": SWEEP_SMALL}
    spec = write_spec(tmp_path / "bad.yaml", "bad", base["grid"], base["overrides"], tiny_beir)
    raw = yaml.safe_load(spec.read_text())
    for key, value in change.items():
        raw[key] = {**raw[key], **value} if isinstance(value, dict) and key in ("slurm", "evaluate") else value
    spec.write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(ConfigError, match=match):
        submit.submit(spec)
    assert not (tmp_path / "bad" / "submissions.json").exists()


def test_dry_run_prints_the_array_script(tiny_beir, tmp_path, capsys):
    spec = write_spec(tmp_path / "d.yaml", "d", {"variant": ["lightretriever", "symmetric"], "seed": [1, 2, 3]}, SWEEP_SMALL,
                      tiny_beir, slurm={"gpus_per_node": 4, "nodes": 2})
    assert main(["sweep", str(spec), "--dry-run"]) == 0
    script = capsys.readouterr().out
    assert "#SBATCH --array=0,1,2,3,4,5%2" in script and "#SBATCH --gpus-per-node=4" in script
    assert "#SBATCH --ntasks-per-node=4" in script and "#SBATCH --signal=USR1@30" in script and "srun " in script
    runs = sweep_spec.expand(sweep_spec.load_spec(spec))
    cfg = sweep_spec.run_config(sweep_spec.load_spec(spec), runs[0])
    assert (cfg.trainer.devices, cfg.trainer.num_nodes, cfg.trainer.strategy) == (4, 2, "ddp")
    assert [r.name for r in runs][:2] == ["variant-lightretriever_seed-1", "variant-lightretriever_seed-2"]
    assert not (tmp_path / "d").exists()  # a dry run writes nothing


def test_paper_spec_dry_run_prints_the_multi_node_gpu_script(tmp_path, monkeypatch, capsys):
    """experiments/sweeps/paper_llama32_1b.yaml: the paper's hyper-parameters, 2 nodes x 8 GPUs, and its
    sbatch script (GPUs, nodes, tasks per node, srun, signal, requeue). Its BEIR sets are downloaded by users:
    without them validation names the missing set; with stand-in directories it validates."""
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("LR_DATA_DIR", str(tmp_path))
    with pytest.raises(ConfigError, match="evaluate.datasets.*arguana"):
        submit.submit(PAPER_SPEC, dry_run=True)
    spec = sweep_spec.load_spec(PAPER_SPEC)
    for ds in spec.datasets:
        (tmp_path / ds).mkdir()
    assert main(["sweep", str(PAPER_SPEC), "--dry-run"]) == 0
    script = capsys.readouterr().out
    for line in ("#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=8", "#SBATCH --gpus-per-node=8",
                 "#SBATCH --signal=USR1@600", "#SBATCH --requeue", "#SBATCH --array=0,1,2,3%4"):
        assert line in script, line
    assert "\nsrun " in script and "sweep-task" in script
    runs = sweep_spec.expand(spec)
    assert [r.name for r in runs] == ["variant-symmetric", "variant-lightretriever", "variant-a2-embedding-query",
                                      "variant-kl"]
    cfg = sweep_spec.run_config(spec, runs[1])
    assert (cfg.trainer.devices, cfg.trainer.num_nodes, cfg.trainer.strategy, cfg.trainer.accelerator) == \
        (8, 2, "ddp", "gpu")
    assert cfg.model.backbone == "meta-llama/Llama-3.2-1B" and cfg.model.gradient_checkpointing
    assert (cfg.data.batch_size, cfg.data.n_negatives, cfg.data.max_doc_len, cfg.data.max_query_tokens) == (128, 7, 512, 512)
    assert (cfg.trainer.max_steps, cfg.optim.lr, cfg.trainer.precision, cfg.loss.flops_warmup_steps) == \
        (12000, 2e-5, "bf16-mixed", 4000)
    assert cfg.data.batch_size % (8 * 2) == 0  # the global batch splits evenly over the 16 ranks
    assert len({s.get("source") for s in cfg.data.train}) == len(cfg.data.train) >= 2  # a multi-dataset mix
    assert not (REPO / spec.out).exists()  # a dry run writes nothing
