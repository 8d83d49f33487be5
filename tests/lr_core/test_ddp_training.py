"""End-to-end data parallelism through the Lightning Trainer: 2 gloo processes on the CPU
(``strategy=ddp``, the tiny Llama) against one process with the same global batch.

What must hold: each step the two ranks train on disjoint halves of one global batch, whose
concatenation in rank order is the single-process batch of that step; after the run the
LoRA weights are those of the single-process run; a run stopped in the middle of an epoch
resumes with the same sequence and ends at the same weights.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import torch

from tests.helpers import REPO
from tests.lr_core import ddp_fit

# 20 examples in 2 sources, global batch 4: 4 batches per epoch; 6 steps cross an epoch boundary.
STEPS = 6
BASE = ["model.backbone=tiny-llama", f"trainer.max_steps={STEPS}", "data.batch_size=4", "data.n_negatives=1",
        "data.max_doc_len=48", "data.max_query_tokens=16", "model.lora.dropout=0.0", "trainer.checkpoint_every_n_steps=1",
        "trainer.accelerator=cpu", "trainer.log_every_n_steps=1"]
DDP = ["trainer.devices=2", "trainer.strategy=ddp"]


def launch(tmp_path, name, extra, tag, stop_at=None):
    """One `fit` under Lightning's DDP launcher (this script is rank 0; it starts rank 1)."""
    args = {"overrides": [*BASE, *extra, f"run_dir={tmp_path / name}"], "out": str(tmp_path), "tag": tag,
            "stop_at": stop_at}
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    for var in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "NODE_RANK", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_JOB_ID"):
        env.pop(var, None)
    # its own session, so that a time-out ends rank 1 too (Lightning starts it as our child's child)
    proc = subprocess.Popen([sys.executable, "-m", "tests.lr_core.ddp_fit", json.dumps(args)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=2400)  # generous: about 1 min each unloaded, much longer niced on a busy CPU
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"{tag}: timed out\n{out[-3000:]}{err[-5000:]}") from None
    assert proc.returncode == 0, out[-3000:] + err[-5000:]
    return tmp_path / name


def records(tmp_path, tag, rank):
    return json.loads((tmp_path / f"{tag}-rank{rank}.json").read_text())


def per_step(rec):
    out = {}
    for b in rec["batches"]:
        assert b["step"] not in out, "two batches for one optimizer step (no accumulation configured)"
        out[b["step"]] = b["queries"]
    return out


def adapters(run_dir):
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False, map_location="cpu")["state_dict"]


def assert_same_weights(a_dir, b_dir):
    a, b = adapters(a_dir), adapters(b_dir)
    assert a.keys() == b.keys() and len(a) > 0
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=2e-5, rtol=1e-4, msg=lambda m: f"{k}: {m}")


def test_two_ranks_train_like_one_process_and_resume_mid_epoch(tmp_path):
    single_dir = ddp_fit.run({"overrides": [*BASE, f"run_dir={tmp_path / 'single'}"], "out": str(tmp_path),
                              "tag": "single"})
    single = per_step(records(tmp_path, "single", 0))
    assert sorted(single) == list(range(STEPS)) and all(len(q) == 4 for q in single.values())

    # two ranks, pre-empted after step 3 of an epoch of 4, then a resumed session: together the two
    # sessions must be the single process's run, split by rank (one launch fewer than an uninterrupted
    # DDP run plus a resumed one, and the stronger check: resumption keeps the global sequence)
    stopped = launch(tmp_path, "resumed", DDP, "first", stop_at=3)
    assert torch.load(stopped / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 3
    assert not (stopped / "train_done.json").exists()
    launch(tmp_path, "resumed", DDP, "second")
    ranks = []
    for rank in (0, 1):
        first, second = records(tmp_path, "first", rank), records(tmp_path, "second", rank)
        assert first["world_size"] == second["world_size"] == 2
        first, second = per_step(first), per_step(second)
        assert sorted(first) == [0, 1, 2] and sorted(second) == [3, 4, 5]
        ranks.append({**first, **second})
    r0, r1 = ranks
    for step in range(STEPS):
        assert len(r0[step]) == len(r1[step]) == 2
        assert not set(r0[step]) & set(r1[step]), f"step {step}: the ranks share queries"
        assert r0[step] + r1[step] == single[step], f"step {step}: rank slices are not the global batch"
    assert_same_weights(single_dir, stopped)
    done = json.loads((stopped / "train_done.json").read_text())
    assert done["global_step"] == STEPS and done["resumed_from"]
