"""Build time of the full vocabulary cache (every token id through the prompt's KV cache).

    lr bench cache-build [--backbone smollm2-135m-instruct] [--batch-size 512]

Uses the backbone with freshly initialised LoRA adapters merged into the weights, exactly as
``lr cache`` does with a trained checkpoint. Target on the 2-core CPU for SmolLM2: at most 5 minutes.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from experiments.benchmarks.common import report_header, write_json_atomic


def _parser():
    p = argparse.ArgumentParser(prog="lr bench cache-build", description=__doc__.splitlines()[0])
    p.add_argument("--backbone", default="smollm2-135m-instruct")
    p.add_argument("--dataset", default="scifact", help="whose instruction to use")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--no-lora", action="store_true", help="time the bare backbone instead")
    p.add_argument("--out", type=Path, default=Path("reports/benchmarks/cache_build.json"))
    return p


def main(argv: list[str] | None = None) -> int:
    from lr_core.backbone import LoraSettings, add_lora, load_backbone, merged_for_inference
    from lr_core.cache_build import build_vocab_cache
    from lr_core.encoder import RetrievalEncoder
    from lr_core.instructions import instruction_for

    args = _parser().parse_args(argv)
    start = time.perf_counter()
    lm, tok = load_backbone(args.backbone)
    lm = lm if args.no_lora else merged_for_inference(add_lora(lm, LoraSettings()))
    load_s = time.perf_counter() - start
    encoder = RetrievalEncoder(lm, tok)
    cache = build_vocab_cache(encoder, instruction_for(args.dataset), model_id=args.backbone,
                              checkpoint_hash="benchmark", batch_size=args.batch_size)
    report = report_header("cache_build", argv)
    report.update({"backbone": args.backbone, "lora": "merged" if not args.no_lora else None, "batch_size": args.batch_size,
                   "vocab_size": cache.metadata.vocab_size, "hidden_size": cache.metadata.hidden_size,
                   "load_seconds": round(load_s, 2), "build_seconds": cache.metadata.build_seconds,
                   "tokens_per_second": round(cache.metadata.vocab_size / cache.metadata.build_seconds, 1),
                   "cache_megabytes": round(cache.vectors.nbytes / 2**20, 1)})
    write_json_atomic(args.out, report)
    print(f"vocabulary cache {cache.metadata.vocab_size} x {cache.metadata.hidden_size}: "
          f"{cache.metadata.build_seconds:.1f} s (load {load_s:.1f} s) -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
