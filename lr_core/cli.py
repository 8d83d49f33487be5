"""The ``lr`` command line. Each subcommand is a thin wrapper over a library function.

    lr fit --config experiments/lightretriever_scifact.yaml [key.sub=value ...]
    lr cache RUN_DIR --dataset scifact [--dtype float16]
    lr variants
    lr bench sparse-memory|train-step|cache-build [options]
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from lr_core.errors import CacheMismatchError, ConfigError, DataError

USER_ERRORS = (ConfigError, DataError, CacheMismatchError, FileNotFoundError)


def cmd_fit(args) -> None:
    from lr_core.config import load_config
    from lr_core.train import fit

    cfg = load_config(args.config, args.overrides)
    run_dir = fit(cfg)
    print(f"run directory: {run_dir}")


def cache_path(run_dir: Path, instruction: str, dtype: str) -> Path:
    import hashlib

    tag = hashlib.sha256(instruction.encode()).hexdigest()[:10]
    return run_dir / "cache" / f"vocab-{tag}-{dtype}.npz"


def cmd_cache(args) -> None:
    from lr_core.backbone import merged_for_inference
    from lr_core.cache import build_vocab_cache
    from lr_core.instructions import instruction_for
    from lr_core.train import load_trained

    if bool(args.dataset) == bool(args.instruction):
        raise ConfigError("give exactly one of --dataset NAME or --instruction TEXT")
    instruction = args.instruction or instruction_for(args.dataset)
    module, cfg, ckpt_hash = load_trained(args.run_dir, args.checkpoint)
    module.encoder.lm = merged_for_inference(module.encoder.lm)
    cache = build_vocab_cache(module.encoder, instruction, model_id=cfg.model.backbone, checkpoint_hash=ckpt_hash,
                              batch_size=args.batch_size, dtype=args.dtype)
    out = Path(args.out) if args.out else cache_path(Path(args.run_dir), instruction, args.dtype)
    cache.save(out)
    print(f"vocabulary cache: {out} ({cache.vectors.shape[0]} x {cache.vectors.shape[1]}, "
          f"{cache.metadata.build_seconds:.1f} s)")


def cmd_variants(args) -> None:
    from lr_core.variants import list_variants

    for v in list_variants().values():
        print(f"{v.name:<18} {v.description}  [{v.paper_table}]")


BENCHMARKS = {
    "sparse-memory": "experiments.benchmarks.sparse_memory",
    "train-step": "experiments.benchmarks.train_step",
    "cache-build": "experiments.benchmarks.cache_build",
}


def cmd_bench(args) -> None:
    import importlib

    status = importlib.import_module(BENCHMARKS[args.name]).main(args.rest)
    if status:
        raise SystemExit(status)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lr", description="LightRetriever experiment suite")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)

    f = sub.add_parser("fit", help="train a model from an experiment config (resumes when interrupted)")
    f.add_argument("--config", required=True)
    f.add_argument("overrides", nargs="*", help="key.sub=value overrides")
    f.set_defaults(func=cmd_fit)

    c = sub.add_parser("cache", help="build the vocabulary cache of a trained run")
    c.add_argument("run_dir")
    c.add_argument("--dataset", help="take the instruction of this benchmark task")
    c.add_argument("--instruction", help="explicit instruction text")
    c.add_argument("--checkpoint", help="default: RUN_DIR/checkpoints/last.ckpt")
    c.add_argument("--dtype", default="float32", choices=["float32", "float16"])
    c.add_argument("--batch-size", type=int, default=256)
    c.add_argument("--out", help="default: RUN_DIR/cache/vocab-<instruction hash>-<dtype>.npz")
    c.set_defaults(func=cmd_cache)

    v = sub.add_parser("variants", help="list every model variant")
    v.set_defaults(func=cmd_variants)

    b = sub.add_parser("bench", help="benchmark commands (results go under reports/benchmarks/)")
    b.add_argument("name", choices=sorted(BENCHMARKS))
    b.add_argument("rest", nargs=argparse.REMAINDER)
    b.set_defaults(func=cmd_bench)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        args.func(args)
    except USER_ERRORS as exc:
        print(f"lr {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
