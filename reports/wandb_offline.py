"""Read W&B run directories written offline (``WANDB_MODE=offline``): config and summary of
every ``run-<id>.wandb`` under a directory, with no network and no W&B account.

    from reports.wandb_offline import offline_runs
    for run in offline_runs("runs/sweeps/grid"):     # run.config, run.summary, run.path, run.id
        ...

``lr report --wandb DIR`` uses this when DIR is a directory, and ``wandb.Api().runs()`` when it
is ENTITY/PROJECT; both yield objects shaped alike, so ``reports.collect.wandb_records`` builds
the same tables from either.

The ``.wandb`` file is a LevelDB-style log (what ``wandb sync`` uploads): a 7-byte header
(``:W&B``, magic 0xBEE1, version 0), then 32 KiB blocks of chunks, each with a 7-byte header
(CRC-32C, little-endian 16-bit length, type FULL / FIRST / MIDDLE / LAST); the chunks of one
record, joined, are a protobuf ``wandb.proto.wandb_internal_pb2.Record``. Run records carry the
config, summary records the summary updates (later updates win).
"""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path

from lr_core.errors import DataError

HEADER = b":W&B" + struct.pack("<HB", 0xBEE1, 0)
BLOCK = 32 * 1024
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


@dataclass
class OfflineRun:
    """What ``wandb.Api().runs()`` gives the reports: id, path, config, summary, group."""

    id: str
    path: list[str]
    config: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    group: str | None = None


def records(path: str | Path) -> list[bytes]:
    """The raw records (protobuf bytes) of one ``.wandb`` file."""
    data = Path(path).read_bytes()
    if not data.startswith(HEADER):
        raise DataError(f"{path}: not a W&B datastore file (bad header)")
    out, pending, pos = [], b"", len(HEADER)
    while pos + 7 <= len(data):
        left = BLOCK - pos % BLOCK
        if left < 7:  # a block tail too short for a chunk header is padding
            pos += left
            continue
        length, kind = struct.unpack("<HB", data[pos + 4:pos + 7])
        chunk = data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind == 0 and length == 0:  # zero padding at the end of a block
            pos += BLOCK - pos % BLOCK if pos % BLOCK else 0
            continue
        if kind == FULL:
            out.append(chunk)
        elif kind == FIRST:
            pending = chunk
        elif kind == MIDDLE:
            pending += chunk
        elif kind == LAST:
            out.append(pending + chunk)
            pending = b""
        else:
            raise DataError(f"{path}: unknown chunk type {kind} at byte {pos}")
    return out


def _set(target: dict, keys: list[str], value) -> None:
    for k in keys[:-1]:
        target = target.setdefault(k, {})
    target[keys[-1]] = value


def read_run(path: str | Path) -> OfflineRun:
    """Config and summary of one offline run (its ``run-<id>.wandb`` file)."""
    from wandb.proto import wandb_internal_pb2 as pb  # only when asked: reports work without W&B

    run = OfflineRun(id=Path(path).stem.removeprefix("run-"), path=[])
    for raw in records(path):
        rec = pb.Record()
        try:
            rec.ParseFromString(raw)
        except Exception as exc:  # a torn last record (a killed job) must not lose the others
            raise DataError(f"{path}: unreadable record ({exc})") from exc
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            r = rec.run
            run.id = r.run_id or run.id
            run.path = [r.entity or "offline", r.project or "offline", run.id]
            run.group = r.run_group or None
            for item in r.config.update:
                _set(run.config, [item.key], json.loads(item.value_json))
        elif kind == "config":
            for item in rec.config.update:
                _set(run.config, list(item.nested_key) or [item.key], json.loads(item.value_json))
        elif kind == "summary":
            for item in rec.summary.update:
                _set(run.summary, list(item.nested_key) or [item.key], json.loads(item.value_json))
    run.config.pop("_wandb", None)
    # W&B stores each top-level config key as {"value": ..., "desc": ...}
    run.config = {k: (v["value"] if isinstance(v, dict) and "value" in v else v) for k, v in run.config.items()}
    return run


def offline_runs(directory: str | Path) -> list[OfflineRun]:
    """Every offline run under ``directory`` (``**/run-*.wandb``), sorted by path."""
    return [read_run(p) for p in sorted(Path(directory).glob("**/run-*.wandb"))]
