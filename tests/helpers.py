"""Helpers shared by tests (not fixtures)."""
from __future__ import annotations

import json
import random
import subprocess
import time
from pathlib import Path

import yaml

from lr_core.data.beir import load_beir
from lr_core.config import ExperimentConfig, load_config

REPO = Path(__file__).resolve().parents[1]
EXPERIMENT_CONFIGS = sorted((REPO / "experiments").glob("*.yaml"))


def write_jsonl(path: Path, rows: list) -> Path:
    """Rows as JSON lines (a str row is written as is: malformed-input tests need raw lines)."""
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def fast_config(path: Path | None, tmp_path: Path, extra: list[str] | None = None) -> ExperimentConfig:
    """An experiment config shrunk to 2 steps on the tiny Llama, writing only under ``tmp_path``."""
    overrides = [f"run_dir={tmp_path / 'run'}", "model.backbone=tiny-llama", "trainer.max_steps=2",
                 "data.batch_size=2", "data.n_negatives=1", "data.max_doc_len=48", "data.max_query_tokens=16",
                 "trainer.checkpoint_every_n_steps=1", *(extra or [])]
    cfg = load_config(path, overrides)
    for spec in cfg.data.train:
        if "cache" in spec:
            spec["cache"] = str(tmp_path / "mined.jsonl")
    return cfg


def write_subset(shared_data, name, out_root, n_queries=15, n_extra_docs=120, seed=0):
    """A small BEIR directory (same name, so the registry's instruction applies) cut from a shared set."""
    full = load_beir(shared_data / name, "test")
    rng = random.Random(seed)
    qids = sorted(full.qrels)[:n_queries]
    docs = {d for q in qids for d in full.qrels[q]}
    docs |= set(rng.sample(sorted(full.corpus), n_extra_docs))
    root = out_root / name
    (root / "qrels").mkdir(parents=True)
    with open(root / "corpus.jsonl", "w") as fh:
        for d in sorted(docs):
            p = full.corpus[d]
            fh.write(json.dumps({"_id": d, "title": p.title, "text": p.text}, ensure_ascii=False) + "\n")
    with open(root / "queries.jsonl", "w") as fh:
        for q in qids:
            fh.write(json.dumps({"_id": q, "text": full.queries[q]}, ensure_ascii=False) + "\n")
    with open(root / "qrels" / "test.tsv", "w") as fh:
        fh.write("query-id\tcorpus-id\tscore\n")
        for q in qids:
            for d, s in full.qrels[q].items():
                fh.write(f"{q}\t{d}\t{s}\n")
    return root



def write_beir_slice(shared_data, name: str, out_root: Path, n_queries: int, n_docs: int) -> Path:
    """A deterministic BEIR directory ``out_root/name``: the first ``n_queries`` judged test queries,
    their relevant documents, then the corpus's first other documents up to ``n_docs`` in all."""
    ds = load_beir(shared_data / name, "test")
    qids = list(ds.qrels)[:n_queries]
    docs = list(dict.fromkeys(d for q in qids for d in ds.qrels[q]))
    docs += [d for d in ds.corpus if d not in set(docs)][: n_docs - len(docs)]
    root = out_root / name
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text("".join(
        json.dumps({"_id": d, "title": ds.corpus[d].title, "text": ds.corpus[d].text}) + "\n" for d in docs))
    (root / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": ds.queries[q]}) + "\n" for q in qids))
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(
        f"{q}\t{d}\t{s}\n" for q in qids for d, s in ds.qrels[q].items()))
    return root


def leftover_temp_dirs(parent: Path, name: str) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(f".{name}.tmp-"))

# --------------------------------------------------------------------------- sweeps (tests/slurm)

PAPER_SPEC = REPO / "experiments" / "sweeps" / "paper_llama32_1b.yaml"

SWEEP_SMALL = ["data.batch_size=2", "data.n_negatives=1", "data.max_doc_len=32", "data.max_query_tokens=16"]


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
