"""The ``lr`` command line. Each subcommand is a thin wrapper over a library function.

    lr fit --config experiments/lightretriever_scifact.yaml [key.sub=value ...]
    lr cache RUN_DIR --dataset scifact
    lr evaluate RUN_DIR --dataset scifact [--dataset cranfield] [--out DIR]
    lr evaluate --backbone smollm2-135m-instruct --dataset scifact --out DIR     (untrained backbone)
    lr encode RUN_DIR --dataset scifact --num-shards 8 --shard 3                   (one worker's part)
    lr bm25 --dataset scifact --out DIR
    lr demo [--steps 20]
    lr compare --config CFG --variant A --variant B --steps N --out DIR [key=value ...]
    lr variants
    lr sweep SPEC.yaml [--dry-run | --local] | lr sweep status SPEC.yaml
    lr report RESULTS_DIR... --out DIR [--paper-backbone Llama3.2-1b]
    lr bench sparse-memory|train-step|cache-build|train-resume|speed|scaling [options]
    lr export-serving RUN_DIR OUT --dataset scifact [--dtype float16]   (LLM-free serving bundle)
    lr serve OUT [--port 8000]                                           (HTTP: POST /search, GET /health)
    lr loadtest --bundle OUT [--concurrency 1,4,16,64]
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from lr_core.errors import CacheMismatchError, ConfigError, DataError
from lr_core.demo import DEMO_MAX_DOC_LEN, DEMO_STEPS

USER_ERRORS = (ConfigError, DataError, CacheMismatchError, FileNotFoundError)


def cmd_fit(args) -> None:
    from lr_core.config import load_config
    from lr_core.train import fit

    cfg = load_config(args.config, args.overrides)
    run_dir = fit(cfg)
    print(f"run directory: {run_dir}")


def cmd_cache(args) -> None:
    from lr_core.backbone import merged_for_inference
    from lr_core.evaluate import vocab_cache_path
    from lr_core.instructions import instruction_for
    from lr_core.train import load_trained

    if bool(args.dataset) == bool(args.instruction):
        raise ConfigError("give exactly one of --dataset NAME or --instruction TEXT")
    instruction = args.instruction or instruction_for(args.dataset)
    module, cfg, ckpt_hash = load_trained(args.run_dir, args.checkpoint)
    module.encoder.lm = merged_for_inference(module.encoder.lm)
    module.eval()
    cache = module.build_query_cache(instruction, cfg.model.backbone, ckpt_hash, batch_size=args.batch_size)
    out = Path(args.out) if args.out else vocab_cache_path(Path(args.run_dir), cfg.variant, instruction)
    cache.save(out)
    print(f"vocabulary cache: {out} ({cache.vectors.shape[0]} x {cache.vectors.shape[1]}, "
          f"{cache.metadata.build_seconds:.1f} s)")


def _eval_settings(args):
    from lr_core.evaluate import EvalSettings

    return EvalSettings(split=args.split, representations=tuple(args.representation) if args.representation else None,
                        fusion=args.fusion, batch_size=args.batch_size, num_shards=args.num_shards,
                        dense_dtype=args.dense_dtype, cache_dtype=args.cache_dtype, sparse_top_k=args.sparse_top_k,
                        mrl_dim=args.mrl_dim, instruction=args.instruction, sparse_query_mode=args.sparse_query_mode,
                        sparse_backend=args.sparse_backend)


def _eval_model(args):
    from lr_core.evaluate import load_model_for_eval

    if bool(args.run_dir) == bool(args.backbone):
        raise ConfigError("give a trained RUN_DIR, or --backbone NAME for the untrained backbone (not both)")
    out = Path(args.out) if args.out else Path(args.run_dir) / "eval"
    work = None if args.run_dir else out / "work"
    return load_model_for_eval(args.run_dir, backbone=args.backbone, checkpoint=args.checkpoint, work_dir=work,
                               max_doc_len=args.max_doc_len), out


def cmd_evaluate(args) -> None:
    from lr_core.evaluate import evaluate

    model, out = _eval_model(args)
    settings = _eval_settings(args)
    for dataset in args.dataset:
        for rec in evaluate(model, dataset, out, settings, data_dir=args.data_dir):
            print(f"{rec['dataset']:<14} {rec['representation']:<10} nDCG@10 {rec['ndcg@10']:.4f}  "
                  f"R@100 {rec['recall@100']:.4f}  ({rec['num_queries']} queries)")
    print(f"results: {out}")


def cmd_encode(args) -> None:
    from lr_core.beir import load_beir
    from lr_core.evaluate import encoded_corpus_dir, encode_corpus_for

    model, _ = _eval_model(args)
    settings = _eval_settings(args)
    for dataset in args.dataset:
        data = load_beir(dataset, args.split or "test", data_dir=args.data_dir, load_corpus=True)
        encode_corpus_for(model, data, settings, sparse=True, shards=args.shard)
        print(f"encoded {dataset}: {encoded_corpus_dir(model, data, settings)}")


def cmd_bm25(args) -> None:
    from lr_core.evaluate import evaluate_bm25

    for dataset in args.dataset:
        rec = evaluate_bm25(dataset, Path(args.out), split=args.split, data_dir=args.data_dir, variant=args.variant,
                            index_root=Path(args.index_dir) if args.index_dir else None)
        print(f"{rec['dataset']:<14} bm25       nDCG@10 {rec['ndcg@10']:.4f}  R@100 {rec['recall@100']:.4f}  "
              f"({rec['num_queries']} queries)")
    print(f"results: {args.out}")


def cmd_demo(args) -> None:
    from lr_core.demo import run_demo

    run_demo(Path(args.out), steps=args.steps, dataset=args.dataset, data_dir=args.data_dir, batch_size=args.batch_size,
             max_doc_len=args.max_doc_len, overrides=args.overrides)


def cmd_compare(args) -> None:
    from lr_core.demo import run_comparison

    reps = {}
    for spec in args.representation or []:
        label, sep, names = spec.partition("=")
        if not sep or not names:
            raise ConfigError(f"--representation {spec!r}: expected VARIANT=rep1,rep2")
        reps[label] = names.split(",")
    unknown = set(reps) - set(args.variant)
    if unknown:
        raise ConfigError(f"--representation names variants not compared: {sorted(unknown)}")
    runs = {v: (args.config, [f"variant={v}"]) for v in args.variant}
    run_comparison(Path(args.out), runs, steps=args.steps, dataset=args.dataset, data_dir=args.data_dir,
                   batch_size=args.batch_size, repo_root=Path.cwd(), overrides=args.overrides, representations=reps,
                   bm25=args.bm25, tag=args.tag)


def cmd_sweep(args) -> None:
    from lr_core import sweep

    if args.args[0] == "status":
        if len(args.args) != 2:
            raise ConfigError("usage: lr sweep status SPEC.yaml")
        rows = sweep.status(sweep.load_spec(args.args[1]))
        for r in rows:
            print(f"{r['index']:>4}  {r['state']:<13} {r['name']}  {r.get('message', '')}".rstrip())
        counts = {}
        for r in rows:
            counts[r["state"]] = counts.get(r["state"], 0) + 1
        print("  ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
        return
    if len(args.args) != 1:
        raise ConfigError("usage: lr sweep SPEC.yaml [--dry-run | --local] | lr sweep status SPEC.yaml")
    if args.local:
        if args.dry_run:
            raise ConfigError("--local runs the sweep here; --dry-run prints the Slurm script: choose one")
        status = sweep.run_local(args.args[0])
        if status:
            raise SystemExit(status)
        return
    sweep.submit(args.args[0], dry_run=args.dry_run)


def cmd_sweep_task(args) -> None:
    from lr_core.sweep import SPEED_DIR, run_task, speed_task

    status = speed_task(args.manifest) if args.index == SPEED_DIR else run_task(args.manifest, int(args.index))
    if status:
        raise SystemExit(status)


def cmd_variants(args) -> None:
    from lr_core.variants import list_variants

    for v in list_variants().values():
        shown = f"; report: {v.table} {', '.join(v.representations)}" if v.table else ""
        print(f"{v.name:<18} {v.display}: {v.description}  [{v.paper_table}{shown}]")


BENCHMARKS = {
    "sparse-memory": "experiments.benchmarks.sparse_memory",
    "train-step": "experiments.benchmarks.train_step",
    "cache-build": "experiments.benchmarks.cache_build",
    "train-resume": "experiments.benchmarks.train_resume",
    "speed": "experiments.benchmarks.speed",
    "scaling": "experiments.benchmarks.scaling",
}


def cmd_bench(args) -> None:
    import importlib

    status = importlib.import_module(BENCHMARKS[args.name]).main(args.rest)
    if status:
        raise SystemExit(status)


def cmd_report(args) -> None:
    import warnings

    from reports.build import write_report
    from reports.collect import SkippedResultWarning

    if not args.results and not args.wandb:
        raise ConfigError("give at least one RESULTS_DIR (or --wandb ENTITY/PROJECT)")
    kw = {"paper_backbone": args.paper_backbone} if args.paper_backbone else {}
    if args.baseline:
        variant, _, rep = args.baseline.partition(":")
        if not variant or not rep:
            raise ConfigError(f"--baseline expects VARIANT:REPRESENTATION (e.g. symmetric:symmetric), got {args.baseline!r}")
        kw["baseline"] = (variant, rep)
    with warnings.catch_warnings():  # printed below, once each, with the rest of the summary
        warnings.simplefilter("ignore", SkippedResultWarning)
        out = write_report(args.results, Path(args.out), wandb_project=args.wandb, pdf=not args.no_pdf,
                           latex_timeout=args.latex_timeout, page_images=args.page_images, **kw)
    for w in out.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"tables: {', '.join(out.tables) or '-'}")
    print(f"figures: {', '.join(out.figures) or '-'}")
    if out.missing:
        print(f"not produced (no results): {', '.join(out.missing)}")
    print(f"report: {out.pdf} ({out.pages} pages)" if out.pdf else f"report: {Path(args.out) / 'report.tex'}")


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
    c.add_argument("--batch-size", type=int, default=256)
    c.add_argument("--out", help="default: where `lr evaluate` looks, RUN_DIR/cache/vocab-<variant>-<instruction hash>-float32.npz")
    c.set_defaults(func=cmd_cache)

    def data_args(parser, out_required=False):
        parser.add_argument("--dataset", action="append", required=True, help="BEIR-format data set name or path (repeatable)")
        parser.add_argument("--split", default=None, help="default: the benchmark's evaluation split (test)")
        parser.add_argument("--data-dir", default=None, help="default: $LR_DATA_DIR")
        parser.add_argument("--out", required=out_required, help="run directory that receives metrics.json files")

    def model_args(parser):
        parser.add_argument("run_dir", nargs="?", help="trained run directory")
        parser.add_argument("--backbone", help="evaluate this untrained backbone instead of a run")
        parser.add_argument("--checkpoint", help="default: RUN_DIR/checkpoints/last.ckpt")
        parser.add_argument("--max-doc-len", type=int, default=None, help="default: the run's training length")
        parser.add_argument("--batch-size", type=int, default=16, help="documents per forward pass")
        parser.add_argument("--num-shards", type=int, default=1)
        parser.add_argument("--dense-dtype", default="float32", choices=["float32", "float16"])
        parser.add_argument("--cache-dtype", default="float32", choices=["float32", "float16"])
        from lr_core.evaluate import REPRESENTATIONS

        parser.add_argument("--representation", action="append", choices=list(REPRESENTATIONS))
        parser.add_argument("--fusion", default="linear", choices=["linear", "rrf"])
        parser.add_argument("--sparse-top-k", type=int, default=None, help="keep the k largest document terms")
        parser.add_argument("--sparse-backend", default="exact", choices=["exact", "lucene"])
        parser.add_argument("--sparse-query-mode", default="counts", choices=["counts", "bow"])
        parser.add_argument("--mrl-dim", type=int, default=None, help="Matryoshka: search with the first d dims")
        parser.add_argument("--instruction", default=None, help="override the benchmark's query instruction")

    e = sub.add_parser("evaluate", help="dense / sparse / hybrid / symmetric evaluation of a run (or backbone)")
    model_args(e)
    data_args(e)
    e.set_defaults(func=cmd_evaluate)

    en = sub.add_parser("encode", help="encode corpus shards only (parallel workers, Slurm arrays)")
    model_args(en)
    data_args(en)
    en.add_argument("--shard", type=int, action="append", help="shard index to encode (repeatable; default all)")
    en.set_defaults(func=cmd_encode)

    bm = sub.add_parser("bm25", help="BM25 baseline through Lucene (Anserini k1=0.9, b=0.4)")
    data_args(bm, out_required=True)
    bm.add_argument("--variant", default="multifield", choices=["multifield", "flat"])
    bm.add_argument("--index-dir", default=None, help="where Lucene indexes are kept (default OUT/indexes)")
    bm.set_defaults(func=cmd_bm25)

    d = sub.add_parser("demo", help="BM25 + train LightRetriever and the symmetric baseline + evaluate (SciFact)")
    d.add_argument("--out", default="runs/demo")
    d.add_argument("--steps", type=int, default=DEMO_STEPS, help="training steps per model (CPU-sized default)")
    d.add_argument("--max-doc-len", type=int, default=DEMO_MAX_DOC_LEN,
                   help="document tokens, training and corpus encoding (0: the configs' own)")
    d.add_argument("overrides", nargs="*", help="config overrides for both models, e.g. optim.lr=2e-4")
    d.add_argument("--dataset", default="scifact")
    d.add_argument("--data-dir", default=None)
    d.add_argument("--batch-size", type=int, default=16, help="documents per forward pass when encoding")
    d.set_defaults(func=cmd_demo)

    cp = sub.add_parser("compare", help="train several variants with one budget and evaluate them side by side")
    cp.add_argument("--config", required=True, help="base experiment config (each run sets variant=NAME)")
    cp.add_argument("--variant", action="append", required=True, help="variant to train (repeatable)")
    cp.add_argument("--out", required=True)
    cp.add_argument("--steps", type=int, required=True, help="training steps per variant")
    cp.add_argument("--dataset", default="scifact")
    cp.add_argument("--data-dir", default=None)
    cp.add_argument("--batch-size", type=int, default=16, help="documents per forward pass when encoding")
    cp.add_argument("--representation", action="append", help="VARIANT=rep1,rep2 (default: the variant's own)")
    cp.add_argument("--bm25", action="store_true", help="also report BM25")
    cp.add_argument("--tag", default=None, help="write summary-TAG.json / table-TAG.txt, so comparisons sharing "
                    "an --out (and its finished runs, e.g. the demo's) keep their own tables")
    cp.add_argument("overrides", nargs="*", help="key.sub=value overrides applied to every run")
    cp.set_defaults(func=cmd_compare)

    sw = sub.add_parser("sweep", help="submit a sweep spec to Slurm (`lr sweep status SPEC` shows progress)")
    sw.add_argument("args", nargs="+", metavar="SPEC | status SPEC")
    sw.add_argument("--dry-run", action="store_true", help="print the sbatch script, submit nothing")
    sw.add_argument("--local", action="store_true", help="run every run here, one after the other, without Slurm")
    sw.set_defaults(func=cmd_sweep)
    st = sub.add_parser("sweep-task", help="(run by Slurm) train and evaluate one run of a sweep manifest")
    st.add_argument("manifest")
    st.add_argument("index", help="array index, or 'speed' for the speed benchmark")
    st.set_defaults(func=cmd_sweep_task)

    v = sub.add_parser("variants", help="list every model variant")
    v.set_defaults(func=cmd_variants)

    b = sub.add_parser("bench", help="benchmark commands (results go under reports/benchmarks/)")
    b.add_argument("name", choices=sorted(BENCHMARKS))
    b.add_argument("rest", nargs=argparse.REMAINDER)
    b.set_defaults(func=cmd_bench)

    rp = sub.add_parser("report", help="tables, figures and a PDF report from metrics.json / speed.json results")
    rp.add_argument("results", nargs="*", metavar="RESULTS_DIR", help="run or evaluation directories (recursive)")
    rp.add_argument("--out", required=True, help="directory for tables/, figures/, report.tex and report.pdf")
    rp.add_argument("--paper-backbone", default=None, help="the paper's backbone to compare with (default Llama3.2-1b)")
    rp.add_argument("--wandb", metavar="ENTITY/PROJECT",
                    help="also read the run summaries of this W&B project (or of the offline runs under a directory)")
    rp.add_argument("--baseline", metavar="VARIANT:REP", default=None,
                    help="what Tables 9-11 test every row against (default symmetric:symmetric)")
    rp.add_argument("--no-pdf", action="store_true", help="write report.tex without running pdflatex")
    rp.add_argument("--page-images", action="store_true", help="also write each PDF page as pages/page-<n>.png")
    rp.add_argument("--latex-timeout", type=float, default=120.0, help="seconds pdflatex may take")
    rp.set_defaults(func=cmd_report)
    return p


# Serving commands own their argument parsing (their modules import no torch).
PASSTHROUGH = {"export-serving": "lr_core.serving", "serve": "lr_core.server", "loadtest": "lr_core.loadtest"}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in PASSTHROUGH:
        import importlib

        return importlib.import_module(PASSTHROUGH[argv[0]]).main(argv[1:])
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
