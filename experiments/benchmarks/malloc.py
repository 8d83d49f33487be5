"""Corpus encoding and training steps with and without the ``lr`` entry point's malloc tuning.

    lr bench malloc [--docs 128] [--steps 3] [--rounds 3] [--precision bfloat16] \
        [--out reports/benchmarks/malloc.json] [overrides ...]

Each round starts two worker processes through the real entry point (``python -m lr_core.cli
bench malloc --worker``), one with ``LR_MALLOC_TUNING=0`` (glibc's defaults) and one without
(the thresholds of :mod:`lr_core.allocator`), in alternating order, so a machine shared with
other jobs slows both sides alike. A worker builds the config's model with its LoRA from the
seed, then

* encodes ``--docs`` SciFact documents (dense + sparse, the evaluation's ``--precision``), after
  one untimed batch;
* trains ``--steps`` steps of the config (after one untimed warm-up step).

It reports seconds, the minor page faults of each part, and the peak RSS. Both sides compute the
same thing, so their losses must agree (to float rounding: the allocator never touches values).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from experiments.benchmarks.common import report_header, write_json_atomic


def _parser():
    p = argparse.ArgumentParser(prog="lr bench malloc", description=__doc__.splitlines()[0])
    p.add_argument("--config", default="experiments/lightretriever_scifact_cpu.yaml")
    p.add_argument("--docs", type=int, default=128, help="documents encoded per worker")
    p.add_argument("--steps", type=int, default=3, help="timed training steps per worker (0: none)")
    p.add_argument("--rounds", type=int, default=3, help="worker pairs")
    p.add_argument("--precision", default="bfloat16", choices=("bfloat16", "float32"))
    p.add_argument("--out", type=Path, default=Path("reports/benchmarks/malloc.json"))
    p.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    p.add_argument("overrides", nargs="*", help="config overrides key.sub=value")
    return p


def _faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def worker(args) -> dict:
    """What one process measures; ``lr_core.cli.main`` has applied (or not) the tuning already."""
    import torch

    from experiments.benchmarks.train_step import train_steps_worker
    from lr_core.backbone import LoraSettings, add_lora, load_backbone, merged_for_inference
    from lr_core.config import load_config
    from lr_core.data.beir import load_corpus
    from lr_core.devices import inference_autocast
    from lr_core.encoder import RetrievalEncoder
    from lr_core.retrieval.corpus_encoding import encode_corpus

    out = {"tuned": os.environ.get("LR_MALLOC_TUNING", "1") != "0"}
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(args.config, [f"run_dir={tmp}", *args.overrides])
        if args.docs:  # as evaluation does: LoRA (here fresh, from the seed) merged into the weights
            torch.manual_seed(cfg.trainer.seed)
            lm, tok = load_backbone(cfg.model.backbone, max_doc_len=cfg.data.max_doc_len)
            encoder = RetrievalEncoder(merged_for_inference(add_lora(lm, LoraSettings())), tok).eval()
            docs = list(load_corpus("scifact", cfg.data.data_dir).items())
            warm, timed = dict(docs[:16]), dict(docs[16:16 + args.docs])
            with torch.no_grad(), inference_autocast("cpu", args.precision):
                encode_corpus(encoder, warm, Path(tmp) / "warm", {"benchmark": 1}, progress=False)
                f0, start = _faults(), time.perf_counter()
                encode_corpus(encoder, timed, Path(tmp) / "timed", {"benchmark": 1}, progress=False)
                out["encode_seconds"] = time.perf_counter() - start
                out["encode_faults"] = _faults() - f0
            del encoder, lm
    if args.steps:
        f0 = _faults()
        out.update(train_steps_worker(args.config, args.overrides, args.steps))
        out["train_faults"] = _faults() - f0
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.worker:
        args.worker.write_text(json.dumps(worker(args)))
        return 0
    sides = {"glibc_default": "0", "tuned": "1"}
    runs: dict[str, list[dict]] = {k: [] for k in sides}
    passthrough = ["--config", args.config, "--docs", str(args.docs), "--steps", str(args.steps),
                   "--precision", args.precision, *args.overrides]
    for rnd in range(args.rounds):
        order = list(sides) if rnd % 2 == 0 else list(sides)[::-1]
        for name in order:
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp) / "worker.json"
                env = {**os.environ, "LR_MALLOC_TUNING": sides[name]}
                subprocess.run([sys.executable, "-m", "lr_core.cli", "-q", "bench", "malloc", "--worker", str(out),
                                *passthrough], env=env, check=True, stdout=subprocess.DEVNULL)
                r = json.loads(out.read_text())
            runs[name].append(r)
            print(f"round {rnd + 1}/{args.rounds} {name}: encode {r.get('encode_seconds', 0):.2f} s, "
                  f"train {', '.join(f'{s:.2f}' for s in r.get('seconds', []))} s/step, "
                  f"peak {r['peak_rss_mib']:.0f} MiB", flush=True)

    def med(name, key):  # over every worker's value(s) of key; None when no worker measured it
        vals = []
        for r in runs[name]:
            v = r.get(key)
            if v is not None:
                vals += v if isinstance(v, list) else [v]
        return statistics.median(vals) if vals else None

    summary = {}
    for name in sides:
        enc = med(name, "encode_seconds")
        summary[name] = {"encode_seconds": enc, "docs_per_second": args.docs / enc if enc else None,
                         "encode_faults": med(name, "encode_faults"), "step_seconds": med(name, "seconds"),
                         "train_faults": med(name, "train_faults"), "peak_rss_mib": med(name, "peak_rss_mib")}
    loss_diff = max((abs(a[n] - b[n]) / max(abs(a[n]), 1e-12)
                     for ra, rb in zip(runs["glibc_default"], runs["tuned"])
                     for a, b in zip(ra.get("losses", []), rb.get("losses", [])) for n in a), default=0.0)
    report = report_header("malloc", argv)
    report.update({"config": args.config, "overrides": args.overrides, "docs": args.docs, "steps": args.steps,
                   "rounds": args.rounds, "precision": args.precision, "summary": summary,
                   "max_relative_loss_difference": loss_diff, "runs": runs})
    write_json_atomic(args.out, report)
    d, t = summary["glibc_default"], summary["tuned"]
    if args.docs:
        print(f"encode: {d['docs_per_second']:.1f} -> {t['docs_per_second']:.1f} doc/s "
              f"({d['encode_seconds'] / t['encode_seconds']:.2f}x), faults {d['encode_faults']:.0f} -> "
              f"{t['encode_faults']:.0f}")
    if args.steps:
        print(f"train: {d['step_seconds']:.2f} -> {t['step_seconds']:.2f} s/step "
              f"({d['step_seconds'] / t['step_seconds']:.2f}x), faults {d['train_faults']:.0f} -> "
              f"{t['train_faults']:.0f}; losses differ by at most {loss_diff:.1e} (relative)")
    print(f"peak RSS: {d['peak_rss_mib']:.0f} -> {t['peak_rss_mib']:.0f} MiB -> {args.out}")
    return 0
