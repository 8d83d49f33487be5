"""A training run through :func:`lr_core.train.fit` that records what each rank trained on.

Run as a script so that Lightning's DDP launcher can start the other ranks by running it
again (``python -m tests.lr_core.ddp_fit ARGS_JSON``); ``run`` is also called in-process
for single-device references. ARGS_JSON: ``{"overrides": [...], "out": dir, "tag": str,
"stop_at": step | null}``. Each rank writes ``<out>/<tag>-rank<r>.json``: the queries of
every batch it trained on, keyed by the optimizer step.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import lightning as L

import ablations  # noqa: F401  (the variant catalog; this script is its own entry point)

REPO = Path(__file__).resolve().parents[2]


class Recorder(L.Callback):
    def __init__(self, out: Path, tag: str):
        self.out, self.tag, self.batches = out, tag, []

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self.batches.append({"step": trainer.global_step, "queries": list(batch.queries)})

    def on_train_end(self, trainer, module):
        from lr_core.io import atomic_write_text

        atomic_write_text(self.out / f"{self.tag}-rank{trainer.global_rank}.json",
                          json.dumps({"world_size": trainer.world_size, "batches": self.batches}))


class StopAt(L.Callback):
    """Stop cleanly after optimizer step ``step`` (a pre-emption in the middle of an epoch)."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step >= self.step:
            trainer.should_stop = True


def run(args: dict) -> Path:
    import torch

    from lr_core.config import load_config
    from lr_core.train import fit

    torch.set_num_threads(1)
    cfg = load_config(REPO / "experiments" / "tiny.yaml", args["overrides"])
    callbacks = [Recorder(Path(args["out"]), args["tag"])]
    if args.get("stop_at"):
        callbacks.append(StopAt(args["stop_at"]))
    return fit(cfg, extra_callbacks=callbacks)


if __name__ == "__main__":
    run(json.loads(sys.argv[1]))
