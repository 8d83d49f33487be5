"""What every benchmark report records: date, machine, versions, command; atomic JSON output."""
from __future__ import annotations

import datetime as _dt
import os
import platform
import sys
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
