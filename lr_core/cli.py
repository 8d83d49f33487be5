"""The ``lr`` command line. Each subcommand is a thin wrapper over a library function.

``lr --help`` lists every command; ``lr COMMAND --help`` gives its options and an example
(the table :data:`COMMANDS` holds both, and README.md's command list is checked against it).

Conventions, the same for every command:

* The object a command works on is its first positional argument, or the same thing named:
  ``RUN_DIR`` / ``--run-dir``, ``BUNDLE`` / ``--bundle``, ``SPEC`` / ``--spec``,
  ``CONFIG`` / ``--config``.
* Global flags work before or after the command: ``-v/--verbose`` (INFO logs, tracebacks),
  ``-q/--quiet`` (errors only), ``--no-progress`` (status lines instead of bars).
* A user or environment error is one line on stderr, ``lr COMMAND: error: ...``, exit status 2;
  the traceback only with ``--verbose``. Any other failure exits 1 (traceback with ``--verbose``).
* Old spellings kept for one release, with a deprecation message: ``lr sweep status SPEC``
  (now ``lr sweep SPEC --status``).
"""
from __future__ import annotations

import argparse
import logging
import sys
import traceback
from pathlib import Path

from lr_core.errors import CacheMismatchError, ConfigError, DataError, MissingSettingError
from lr_core.demo import DEMO_MAX_DOC_LEN, DEMO_STEPS

# Errors a user's input or environment causes: one line, exit 2 (traceback only with --verbose).
USER_ERRORS = (ConfigError, DataError, CacheMismatchError, FileNotFoundError, PermissionError, IsADirectoryError,
               NotADirectoryError, UnicodeDecodeError)


def cmd_fit(args) -> None:
    from lr_core.config import load_config
    from lr_core.train import fit

    config, overrides = _config_and_overrides(args)
    cfg = load_config(config, overrides)
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
    args.run_dir = _object(args, "run_dir", "RUN_DIR", "--run-dir")
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
                        sparse_backend=args.sparse_backend, cache_batch_size=args.cache_batch_size,
                        query_batch_size=args.query_batch_size, faiss_gpu=args.faiss_gpu, faiss_fp16=args.faiss_fp16)


def _eval_model(args):
    from lr_core.evaluate import load_model_for_eval

    args.run_dir = _object(args, "run_dir", "RUN_DIR", "--run-dir", required=False)
    if bool(args.run_dir) == bool(args.backbone):
        raise ConfigError("give a trained RUN_DIR (or --run-dir), or --backbone NAME for the untrained backbone (not both)")
    out = Path(args.out) if args.out else Path(args.run_dir) / "eval"
    work = None if args.run_dir else out / "work"
    return load_model_for_eval(args.run_dir, backbone=args.backbone, checkpoint=args.checkpoint, work_dir=work,
                               max_doc_len=args.max_doc_len, device=args.device), out


def cmd_evaluate(args) -> None:
    """Under torchrun or ``srun`` with several ranks, every rank encodes its corpus shards (on its own
    GPU with ``--device cuda``), then rank 0 alone evaluates."""
    from dataclasses import replace

    from lr_core.devices import rank_device
    from lr_core.distributed import launch_world_size, local_rank
    from lr_core.evaluate import encode_corpus_shards_on_ranks, evaluate

    world = launch_world_size()
    if world > 1:
        args.device = rank_device(args.device, local_rank())
    model, out = _eval_model(args)
    settings = _eval_settings(args)
    if world > 1:
        settings = replace(settings, num_shards=max(settings.num_shards, world))
        if encode_corpus_shards_on_ranks(model, args.dataset, settings, data_dir=args.data_dir) != 0:
            return  # rank 0 evaluates
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
    config, args.overrides = _config_and_overrides(args)
    if config is None:
        raise ConfigError("give the base experiment config: CONFIG (or --config CONFIG)")
    runs = {v: (config, [f"variant={v}"]) for v in args.variant}
    run_comparison(Path(args.out), runs, steps=args.steps, dataset=args.dataset, data_dir=args.data_dir,
                   batch_size=args.batch_size, repo_root=Path.cwd(), overrides=args.overrides, representations=reps,
                   bm25=args.bm25, tag=args.tag)


def cmd_sweep(args) -> None:
    from lr_core import sweep

    spec = _object(args, "spec", "SPEC", "--spec")
    if sum([args.status, args.local, args.dry_run]) > 1:
        raise ConfigError("--status, --local and --dry-run are different actions: choose one")
    if args.status:
        rows = sweep.status(sweep.load_spec(spec))
        for r in rows:
            print(f"{r['index']:>4}  {r['state']:<13} {r['name']}  {r.get('message', '')}".rstrip())
        counts = {}
        for r in rows:
            counts[r["state"]] = counts.get(r["state"], 0) + 1
        print("  ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
        return
    if args.local:
        status = sweep.run_local(spec)
        if status:
            raise SystemExit(status)
        return
    sweep.submit(spec, dry_run=args.dry_run)


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

    rest = list(args.rest)
    if args.name in ("speed", "scaling") and rest and not rest[0].startswith("-"):
        rest = ["--run-dir", *rest]  # the convention: RUN_DIR positional or --run-dir
    status = importlib.import_module(BENCHMARKS[args.name]).main(rest)
    if status:
        raise SystemExit(status)


def cmd_export_adapter(args) -> None:
    from lr_core.adapters import export_adapter
    from lr_core.train import load_trained

    run_dir = _object(args, "run_dir", "RUN_DIR", "--run-dir")
    print(f"adapter: {export_adapter(*load_trained(run_dir), run_dir, args.out)}")


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


# --------------------------------------------------------------------------- new commands


def cmd_config_show(args) -> None:
    import yaml

    from lr_core.config import load_config

    config, overrides = _config_and_overrides(args)
    cfg = load_config(config, overrides)
    print(f"# {config or 'built-in defaults'}" + (f" + {' '.join(overrides)}" if overrides else "")
          + f"; config hash {cfg.hash()}")
    print(yaml.safe_dump(cfg.to_dict(), sort_keys=False), end="")


def cmd_config_keys(args) -> None:
    from lr_core.config_docs import config_keys

    keys = config_keys()
    if args.section:
        keys = [k for k in keys if k.key == args.section or k.key.startswith(args.section + ".")]
        if not keys:
            raise ConfigError(f"no config key or section {args.section!r}; `lr config keys` lists them all")
    width = max(len(k.key) for k in keys)
    twidth = max(len(k.type) for k in keys)
    for k in keys:
        print(f"{k.key:<{width}}  {k.type:<{twidth}}  default {k.default_text:<12}  {k.doc}")


def cmd_data_download(args) -> None:
    from lr_core.download import download_dataset, default_data_dir

    dest = Path(args.dest) if args.dest else default_data_dir()
    if args.md5 is not None and len(args.names) != 1:
        raise ConfigError("--md5 checks one archive: give one NAME with it")
    for name in args.names:
        path = download_dataset(name, dest, base_url=args.base_url, md5=args.md5, force=args.force)
        print(f"{name}: {path}")


def cmd_mteb(args) -> None:
    from lr_core.mteb_eval import run_mteb_tasks

    run_dir = _object(args, "run_dir", "RUN_DIR", "--run-dir")
    out = Path(args.out) if args.out else Path(run_dir) / "eval"
    for rec in run_mteb_tasks(run_dir, args.task, out, representations=args.representation or ["dense"],
                              checkpoint=args.checkpoint, data_dir=args.data_dir, instruction=args.instruction,
                              batch_size=args.batch_size, max_doc_len=args.max_doc_len):
        print(f"{rec['dataset']:<14} {rec['representation']:<10} nDCG@10 {rec['ndcg@10']:.4f}  "
              f"R@100 {rec.get('recall@100', float('nan')):.4f}  (mteb)")
    print(f"results: {out}")


def _serving_command(module_name: str):
    def run(args) -> None:
        import importlib

        module = importlib.import_module(module_name)
        status = module.run(args, args.argv_tail) if module_name == "lr_core.loadtest" else module.run(args)
        if status:
            raise SystemExit(status)

    return run


# --------------------------------------------------------------------------- conventions


def _object(args, dest: str, metavar: str, flag: str, required: bool = True):
    """The command's object, given positionally or by name (the same value twice is fine)."""
    pos, named = getattr(args, dest, None), getattr(args, f"{dest}_opt", None)
    if pos and named and pos != named:
        raise ConfigError(f"{metavar} given twice: {pos!r} and {flag} {named!r}")
    value = pos or named
    if required and not value:
        raise ConfigError(f"give {metavar} (or {flag} {metavar})")
    return value


def _config_and_overrides(args) -> tuple[str | None, list[str]]:
    """``CONFIG [key=value ...]`` or ``--config CONFIG [key=value ...]``: the config is the one word without '='."""
    items = list(getattr(args, "overrides", None) or [])
    positional = items.pop(0) if items and "=" not in items[0] else None
    bad = [i for i in items if "=" not in i]
    if bad:
        raise ConfigError(f"expected key.sub=value overrides after the config, got {bad[0]!r}")
    named = getattr(args, "config", None)
    if positional and named and positional != named:
        raise ConfigError(f"CONFIG given twice: {positional!r} and --config {named!r}")
    return positional or named, items


def _add_object(p, dest: str, metavar: str, flag: str, help: str) -> None:
    p.add_argument(dest, nargs="?", metavar=metavar, help=f"{help} (or {flag} {metavar})")
    p.add_argument(flag, dest=f"{dest}_opt", metavar=metavar, help=f"same as the {metavar} positional")


def _add_global_flags(p, subparser: bool) -> None:
    # In subparsers the defaults are SUPPRESSed, so a flag given before the command is not reset.
    d = {"default": argparse.SUPPRESS} if subparser else {}
    g = p.add_argument_group("global options (before or after the command)")
    g.add_argument("-v", "--verbose", action="store_true", help="INFO logs, and tracebacks on errors", **d)
    g.add_argument("-q", "--quiet", action="store_true", help="errors only: no notices, status lines or bars", **d)
    g.add_argument("--no-progress", action="store_true", help="no progress bars (periodic status lines instead)", **d)


# name: (one-line description, examples). `lr --help`, every `lr NAME --help` and README.md's
# command list (commands_markdown) all come from here.
COMMANDS = {
    "fit": ("train a model from an experiment config (rerun to resume)",
            ["lr fit experiments/lightretriever_scifact.yaml [key.sub=value ...]"]),
    "config": ("show a resolved config, or list every config key with its default and meaning",
               ["lr config show experiments/lightretriever_scifact.yaml trainer.max_steps=200",
                "lr config keys [loss]"]),
    "config show": ("print the resolved config (file + overrides) as YAML",
                    ["lr config show experiments/lightretriever_scifact.yaml optim.lr=1e-4"]),
    "config keys": ("list every config key with its type, default and meaning",
                    ["lr config keys model.lora"]),
    "cache": ("build the vocabulary cache of a trained run",
              ["lr cache runs/lightretriever_scifact --dataset scifact"]),
    "export-adapter": ("publish a trained run as a float16 peft adapter directory (evaluate / export-serving take it)",
                       ["lr export-adapter runs/lightretriever_scifact reports/results/x/adapters/lightretriever"]),
    "evaluate": ("dense / sparse / hybrid / symmetric evaluation of a run (or an untrained backbone)",
                 ["lr evaluate runs/lightretriever_scifact --dataset scifact [--dataset cranfield] [--out DIR]",
                  "lr evaluate --backbone smollm2-135m-instruct --dataset scifact --out DIR"]),
    "encode": ("encode corpus shards only (parallel workers, Slurm arrays)",
               ["lr encode RUN_DIR --dataset scifact --num-shards 8 --shard 3"]),
    "bm25": ("BM25 baseline through Lucene (Anserini k1=0.9, b=0.4)",
             ["lr bm25 --dataset scifact --out DIR"]),
    "mteb": ("evaluate a trained run with mteb; results join the metrics ledger (lr report reads them)",
             ["lr mteb runs/lightretriever_scifact --task SciFact [--representation dense|sparse|hybrid]"]),
    "data": ("fetch registered BEIR / CMTEB-Retrieval data sets into the BEIR layout (`lr data download`)",
             ["lr data download scifact t2retrieval --dest $LR_DATA_DIR"]),
    "data download": ("download registered BEIR / CMTEB-Retrieval sets (BEIR layout; checked, atomic, resumable)",
                      ["lr data download scifact fiqa --dest $LR_DATA_DIR"]),
    "demo": ("BM25 + train LightRetriever and the symmetric baseline + evaluate (SciFact, CPU-sized)",
             ["lr demo [--steps 20] [--out runs/demo]"]),
    "compare": ("train several variants with one budget and evaluate them side by side",
                ["lr compare experiments/lightretriever_scifact.yaml --variant lightretriever "
                 "--variant a2_embedding_query --steps 40 --out runs/cmp [key=value ...]"]),
    "variants": ("list every model variant", ["lr variants"]),
    "sweep": ("run a sweep spec: submit to Slurm, run here (--local), or show its progress (--status)",
              ["lr sweep experiments/sweeps/tiny_grid.yaml [--dry-run]",
               "lr sweep experiments/sweeps/paper_findings_cpu.yaml --local",
               "lr sweep experiments/sweeps/tiny_grid.yaml --status"]),
    "sweep-task": ("(run by Slurm) train and evaluate one run of a sweep manifest",
                   ["lr sweep-task runs/sweeps/tiny_grid/manifest.json 3"]),
    "bench": ("run a benchmark (sparse-memory, train-step, cache-build, train-resume, speed, scaling)",
              ["lr bench speed RUN_DIR [--a3-run-dir A3_RUN] [--fp16-check]",
               "lr bench scaling RUN_DIR",
               "lr bench sparse-memory|train-step|cache-build|train-resume"]),
    "report": ("tables, figures and a PDF report from metrics.json / speed.json results",
               ["lr report runs --out reports/out [--paper-backbone Llama3.2-1b]"]),
    "export-serving": ("write an LLM-free serving bundle of a trained run",
                       ["lr export-serving RUN_DIR bundles/scifact --dataset scifact [--dtype float16]"]),
    "serve": ("serve a bundle over HTTP without an LLM (POST /search, GET /health)",
              ["lr serve bundles/scifact [--port 8000]"]),
    "loadtest": ("QPS and latency percentiles of the local query server (loopback only)",
                 ["lr loadtest bundles/scifact --concurrency 1,4,16,64"]),
}


def commands_markdown() -> str:
    """README.md's command list: every top-level command's description (a comment), then its examples.

    Regenerate with ``python -c "from lr_core.cli import commands_markdown; print(commands_markdown())"``;
    tests/lr_core/test_cli.py fails when README.md and this disagree.
    """
    lines = []
    for name, (desc, examples) in COMMANDS.items():
        if " " in name:
            continue
        lines += [f"# {name}: {desc}", *examples]
    return "```\n" + "\n".join(lines) + "\n```\n"


class _Formatter(argparse.RawDescriptionHelpFormatter):
    pass


def _command(sub, name: str, func=None, **kw) -> argparse.ArgumentParser:
    desc, examples = COMMANDS[name]
    leaf = name.split()[-1]
    label = "examples" if len(examples) > 1 else "example"
    epilog = f"{label}:\n" + "\n".join(f"  {ex}" for ex in examples) + kw.pop("epilog", "")
    p = sub.add_parser(leaf, help=desc, description=desc, epilog=epilog,
                       formatter_class=_Formatter, **kw)
    _add_global_flags(p, subparser=True)
    if func is not None:
        p.set_defaults(func=func)
    p.set_defaults(command=name)
    return p


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lr", description="LightRetriever experiment suite", formatter_class=_Formatter,
        epilog="example:\n  lr fit experiments/tiny.yaml trainer.max_steps=2\n\n"
               "`lr COMMAND --help` gives each command's options and an example.")
    _add_global_flags(p, subparser=False)
    sub = p.add_subparsers(dest="command_name", required=True, metavar="COMMAND")

    f = _command(sub, "fit", cmd_fit, epilog="\n\nevery key: `lr config keys`; the resolved config: "
                 "`lr config show CONFIG [key=value ...]`")
    f.add_argument("overrides", nargs="*", metavar="[CONFIG] key.sub=value",
                   help="the experiment config (or --config), then overrides (see `lr config keys`)")
    f.add_argument("--config", metavar="CONFIG", help="experiment config YAML (same as the CONFIG positional)")

    cf = _command(sub, "config")
    csub = cf.add_subparsers(dest="config_command", required=True, metavar="{show,keys}")
    cs = _command(csub, "config show", cmd_config_show)
    cs.add_argument("overrides", nargs="*", metavar="[CONFIG] key.sub=value",
                    help="the experiment config (or --config; default: built-in defaults), then overrides")
    cs.add_argument("--config", metavar="CONFIG", help="experiment config YAML (same as the CONFIG positional)")
    ck = _command(csub, "config keys", cmd_config_keys)
    ck.add_argument("section", nargs="?", help="only this key or section (e.g. loss, model.lora)")

    c = _command(sub, "cache", cmd_cache)
    _add_object(c, "run_dir", "RUN_DIR", "--run-dir", "trained run directory")
    c.add_argument("--dataset", help="take the instruction of this benchmark task")
    c.add_argument("--instruction", help="explicit instruction text")
    c.add_argument("--checkpoint", help="default: RUN_DIR/checkpoints/last.ckpt")
    c.add_argument("--batch-size", type=int, default=256)
    c.add_argument("--out", help="default: where `lr evaluate` looks, RUN_DIR/cache/vocab-<variant>-<instruction hash>-float32.npz")

    ea = _command(sub, "export-adapter", cmd_export_adapter)
    _add_object(ea, "run_dir", "RUN_DIR", "--run-dir", "trained run directory")
    ea.add_argument("out", help="the adapter directory to write (replaced atomically)")

    def data_args(parser, out_required=False):
        parser.add_argument("--dataset", action="append", required=True, help="BEIR-format data set name or path (repeatable)")
        parser.add_argument("--split", default=None, help="default: the benchmark's evaluation split (test)")
        parser.add_argument("--data-dir", default=None, help="default: $LR_DATA_DIR")
        parser.add_argument("--out", required=out_required, help="run directory that receives metrics.json files")

    def model_args(parser):
        _add_object(parser, "run_dir", "RUN_DIR", "--run-dir", "trained run directory")
        parser.add_argument("--backbone", help="evaluate this untrained backbone instead of a run")
        parser.add_argument("--checkpoint", help="default: RUN_DIR/checkpoints/last.ckpt")
        parser.add_argument("--max-doc-len", type=int, default=None, help="default: the run's training length")
        parser.add_argument("--batch-size", type=int, default=16, help="documents per forward pass")
        parser.add_argument("--query-batch-size", type=int, default=64, help="queries per forward pass (A3)")
        parser.add_argument("--cache-batch-size", type=int, default=None,
                            help="vocabulary ids per forward pass building the light dense cache")
        parser.add_argument("--device", default="cpu", help="cpu (default), auto or cuda[:N]; bf16 autocast on CUDA")
        parser.add_argument("--faiss-gpu", default="replicate", choices=["replicate", "shard"],
                            help="with faiss-gpu: a full index per GPU, or the vectors split over the GPUs")
        parser.add_argument("--faiss-fp16", action="store_true", help="Faiss GPU index in float16")
        parser.add_argument("--num-shards", type=int, default=1,
                            help="corpus shards (resumable; under torchrun/srun at least one per rank)")
        parser.add_argument("--dense-dtype", default="float32", choices=["float32", "float16"])
        parser.add_argument("--cache-dtype", default="float32", choices=["float32", "float16"])
        from lr_core.evaluate import REPRESENTATIONS

        parser.add_argument("--representation", action="append", choices=list(REPRESENTATIONS))
        parser.add_argument("--fusion", default="linear", choices=["linear", "rrf"])
        parser.add_argument("--sparse-top-k", type=int, default=None, help="keep the k largest document terms")
        parser.add_argument("--sparse-backend", default="exact", choices=["exact", "lucene"])
        parser.add_argument("--sparse-query-mode", default="counts", choices=["counts", "bow"])
        parser.add_argument("--mrl-dim", type=int, default=None, help="Matryoshka: search with the first d dims")
        parser.add_argument("--instruction", default=None,
                            help="the query instruction (required for a data set the registry does not know)")

    e = _command(sub, "evaluate", cmd_evaluate)
    model_args(e)
    data_args(e)

    en = _command(sub, "encode", cmd_encode)
    model_args(en)
    data_args(en)
    en.add_argument("--shard", type=int, action="append", help="shard index to encode (repeatable; default all)")

    bm = _command(sub, "bm25", cmd_bm25)
    data_args(bm, out_required=True)
    bm.add_argument("--variant", default="multifield", choices=["multifield", "flat"])
    bm.add_argument("--index-dir", default=None, help="where Lucene indexes are kept (default OUT/indexes)")

    mt = _command(sub, "mteb", cmd_mteb)
    _add_object(mt, "run_dir", "RUN_DIR", "--run-dir", "trained run directory")
    mt.add_argument("--task", action="append", required=True,
                    help="mteb task name (SciFact, FiQA2018, T2Retrieval ...), registry name, or a local BEIR "
                         "directory (repeatable); registry tasks are read from --data-dir when present there")
    mt.add_argument("--representation", action="append", choices=["dense", "sparse", "hybrid"],
                    help="default dense (repeatable)")
    mt.add_argument("--out", help="default RUN_DIR/eval: OUT/<dataset>/mteb-<representation>/metrics.json")
    mt.add_argument("--checkpoint", help="default: RUN_DIR/checkpoints/last.ckpt")
    mt.add_argument("--data-dir", default=None, help="where local copies of the tasks live (default $LR_DATA_DIR)")
    mt.add_argument("--instruction", default=None, help="the query instruction (required for an unregistered task)")
    mt.add_argument("--batch-size", type=int, default=16, help="texts per forward pass")
    mt.add_argument("--max-doc-len", type=int, default=None, help="default: the run's training length")

    da = _command(sub, "data")
    dsub = da.add_subparsers(dest="data_command", required=True, metavar="{download}")
    dd = _command(dsub, "data download", cmd_data_download,
                  epilog="\n\nsource: BEIR zips from the BEIR mirror; CMTEB-Retrieval from the C-MTEB datasets "
                         "on the Hugging Face Hub.\n$LR_DOWNLOAD_BASE_URL (or --base-url) replaces the server.")
    dd.add_argument("names", nargs="+", metavar="NAME", help="registered BEIR or CMTEB-Retrieval task (e.g. scifact, fiqa, t2retrieval)")
    dd.add_argument("--dest", help="directory that receives DEST/NAME (default $LR_DATA_DIR)")
    dd.add_argument("--base-url", default=None, help="another server with the same file layout (mirror, tests)")
    dd.add_argument("--force", action="store_true", help="download again even when DEST/NAME is complete")
    dd.add_argument("--md5", default=None, metavar="HEX",
                    help="expected md5 of the archive (default: the sum BEIR publishes; '' skips the check)")

    d = _command(sub, "demo", cmd_demo)
    d.add_argument("--out", default="runs/demo")
    d.add_argument("--steps", type=int, default=DEMO_STEPS, help="training steps per model (CPU-sized default)")
    d.add_argument("--max-doc-len", type=int, default=DEMO_MAX_DOC_LEN,
                   help="document tokens, training and corpus encoding (0: the configs' own)")
    d.add_argument("overrides", nargs="*", help="config overrides for both models, e.g. optim.lr=2e-4")
    d.add_argument("--dataset", default="scifact")
    d.add_argument("--data-dir", default=None)
    d.add_argument("--batch-size", type=int, default=16, help="documents per forward pass when encoding")

    cp = _command(sub, "compare", cmd_compare)
    cp.add_argument("overrides", nargs="*", metavar="[CONFIG] key.sub=value",
                    help="base experiment config (or --config; each run sets variant=NAME), then overrides")
    cp.add_argument("--config", metavar="CONFIG", help="same as the CONFIG positional")
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

    v = _command(sub, "variants", cmd_variants)
    del v

    sw = _command(sub, "sweep", cmd_sweep, epilog="\n\n(`lr sweep status SPEC` still works for one release)")
    _add_object(sw, "spec", "SPEC", "--spec", "sweep spec YAML")
    sw.add_argument("--dry-run", action="store_true", help="print the sbatch script, submit nothing")
    sw.add_argument("--local", action="store_true", help="run every run here, one after the other, without Slurm")
    sw.add_argument("--status", action="store_true", help="show each run's state (done, running, failed ...)")
    st = _command(sub, "sweep-task", cmd_sweep_task)
    st.add_argument("manifest")
    st.add_argument("index", help="array index, or 'speed' for the speed benchmark")

    b = _command(sub, "bench", cmd_bench, epilog="\n\n`lr bench NAME --help` gives that benchmark's options.")
    b.add_argument("name", choices=sorted(BENCHMARKS))
    b.add_argument("rest", nargs=argparse.REMAINDER)

    rp = _command(sub, "report", cmd_report)
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

    from lr_core import loadtest, server, serving

    for name, module in (("export-serving", serving), ("serve", server), ("loadtest", loadtest)):
        sp = _command(sub, name, _serving_command(module.__name__))
        module.add_arguments(sp)
    return p


def _rewrite_deprecated(argv: list[str]) -> list[str]:
    """Old spellings that still work for one release, each with a one-line deprecation notice."""
    for i, tok in enumerate(argv):
        if tok.startswith("-"):
            continue
        if tok == "sweep" and i + 1 < len(argv) and argv[i + 1] == "status":
            print("lr sweep: `lr sweep status SPEC` is deprecated; use `lr sweep SPEC --status`", file=sys.stderr)
            return argv[:i + 1] + argv[i + 2:] + ["--status"]
        break  # the first word is the command
    return argv


def _user_message(exc: BaseException) -> str:
    if isinstance(exc, MissingSettingError):
        return exc.with_flag(CLI_FLAGS.get(exc.setting, f"--{exc.setting.replace('_', '-')}"))
    if isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)) and exc.filename:
        return f"{exc.filename}: {exc.strerror or exc}"
    if isinstance(exc, UnicodeDecodeError):
        return f"not valid UTF-8 text ({exc.reason} at byte {exc.start})"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename + ': ' if exc.filename else ''}{exc.strerror}"
    return str(exc)


# A library setting -> the flag that gives it on the command line (for MissingSettingError).
CLI_FLAGS = {"instruction": "--instruction TEXT", "split": "--split NAME"}


def _log_to_stderr(level: int) -> None:
    """One stderr handler on the root logger (replacing ours from an earlier call, keeping others')."""
    root = logging.getLogger()
    for h in [h for h in root.handlers if getattr(h, "_lr_cli", False)]:
        root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler._lr_cli = True
    root.addHandler(handler)
    root.setLevel(level)


def main(argv: list[str] | None = None) -> int:
    from lr_core import progress

    argv = _rewrite_deprecated(sys.argv[1:] if argv is None else list(argv))
    args = build_parser().parse_args(argv)
    name = getattr(args, "command", args.command_name)
    cmd_index = next((i for i, t in enumerate(argv) if t == args.command_name), 0)
    args.argv_tail = argv[cmd_index + 1:]
    level = logging.INFO if args.verbose else logging.ERROR if args.quiet else progress.NOTICE
    _log_to_stderr(level)
    progress.configure(disabled=args.no_progress, quiet=args.quiet)
    try:
        args.func(args)
    except SystemExit as exc:  # a command's own exit status (sweep --local, bench, serving commands)
        return exc.code if isinstance(exc.code, int) else 1
    except KeyboardInterrupt:
        print(f"lr {name}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `lr config keys | head`: the reader left; not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (*USER_ERRORS, OSError) as exc:
        if args.verbose:
            traceback.print_exc()
        print(f"lr {name}: error: {_user_message(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug, not the user's input: say so, the trace is one flag away
        if args.verbose:
            traceback.print_exc()
        print(f"lr {name}: internal error: {type(exc).__name__}: {exc} (rerun with --verbose for the traceback)",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
