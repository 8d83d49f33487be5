"""What every benchmark report records: date, machine, versions, command; atomic JSON output."""
from __future__ import annotations

import datetime as _dt
import os
import platform
import sys
import tempfile
from pathlib import Path

from lr_core.io import atomic_write_json


def machine_info() -> dict:
    import torch

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def report_header(name: str, argv: list[str] | None) -> dict:
    cmd = " ".join(["lr", "bench", name.replace("_", "-"), *(argv if argv is not None else sys.argv[1:])])
    return {"benchmark": name, "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": machine_info(), "command": cmd}


def write_json_atomic(path: Path, data: dict) -> None:
    atomic_write_json(path, data)


def add_model_args(p, work_dir: str) -> None:
    """The model a query-side benchmark times: a trained run (the real numbers) or an untrained backbone."""
    p.add_argument("--run-dir", help="trained run directory (the real numbers)")
    p.add_argument("--backbone", help="an untrained backbone instead (tiny-llama for smoke tests)")
    p.add_argument("--work-dir", help=f"{work_dir} (default: the run dir; required with --backbone)")
    p.add_argument("--checkpoint", help="default: RUN_DIR/checkpoints/last.ckpt")


def run_or_user_error(prog: str, run, args, argv) -> dict | None:
    """``run(args, argv)``, or None after one line on stderr for a user error (a bad config or data
    set, a stale cache, a missing file): the caller then exits 2."""
    from lr_core.errors import CacheMismatchError, ConfigError, DataError

    try:
        return run(args, argv)
    except (ConfigError, DataError, CacheMismatchError, FileNotFoundError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return None


def lightretriever_batches(config: str, overrides: list[str]):
    """``(cfg, module, batches)``: a LightRetriever module in training mode, its LoRA initialised
    from the config's seed, and an iterator over the training batches the run would see."""
    import torch

    from lr_core.config import load_config
    from lr_core.data.datamodule import RetrievalDataModule
    from lr_core.modules import LightRetrieverModule

    with tempfile.TemporaryDirectory() as tmp:  # nothing of the run directory is kept
        cfg = load_config(config, [f"run_dir={tmp}", "variant=lightretriever", *overrides])
        torch.manual_seed(cfg.trainer.seed)
        module = LightRetrieverModule(cfg)
        module.train()
        data = RetrievalDataModule(cfg.data, module.tokenizer, seed=cfg.trainer.seed)
        data.setup()
        return cfg, module, iter(data.train_dataloader())
