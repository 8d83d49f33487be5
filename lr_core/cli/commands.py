"""What each ``lr`` command does: a thin wrapper over a library function (imported inside the
command, so ``lr --help`` and the torch-free serving commands load no model code).

``lr bench NAME`` runs one of :data:`BENCH_SCRIPTS` (``experiments/benchmarks/``).
"""
from __future__ import annotations

import sys
from pathlib import Path

from lr_core.errors import ConfigError


def cmd_fit(args) -> None:
    from lr_core.config import load_config
    from lr_core.train import fit

    config, overrides = _config_and_overrides(args)
    cfg = load_config(config, overrides)
    run_dir = fit(cfg)
    print(f"run directory: {run_dir}")


def cmd_cache(args) -> None:
    from lr_core.backbone import merged_for_inference
    from lr_core.retrieval.evaluate import vocab_cache_path
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
    out = Path(args.out) if args.out else vocab_cache_path(Path(args.run_dir), cfg.variant, instruction,
                                                           cfg.model.cache_centre)
    cache.save(out)
    print(f"vocabulary cache: {out} ({cache.vectors.shape[0]} x {cache.vectors.shape[1]}, "
          f"{cache.metadata.build_seconds:.1f} s)")


def _eval_settings(args):
    from lr_core.retrieval.evaluate import EvalSettings

    return EvalSettings(split=args.split, representations=tuple(args.representation) if args.representation else None,
                        fusion=args.fusion, batch_size=args.batch_size, num_shards=args.num_shards,
                        dense_dtype=args.dense_dtype, cache_dtype=args.cache_dtype, sparse_top_k=args.sparse_top_k,
                        mrl_dim=args.mrl_dim, instruction=args.instruction, sparse_query_mode=args.sparse_query_mode,
                        sparse_backend=args.sparse_backend, cache_batch_size=args.cache_batch_size,
                        query_batch_size=args.query_batch_size, faiss_gpu=args.faiss_gpu, faiss_fp16=args.faiss_fp16)


def _eval_model(args):
    from lr_core.retrieval.evaluate import load_model_for_eval

    args.run_dir = _object(args, "run_dir", "RUN_DIR", "--run-dir", required=False)
    if bool(args.run_dir) == bool(args.backbone):
        raise ConfigError("give a trained RUN_DIR (or --run-dir), or --backbone NAME for the untrained backbone (not both)")
    out = Path(args.out) if args.out else Path(args.run_dir) / "eval"
    work = None if args.run_dir else out / "work"
    return load_model_for_eval(args.run_dir, backbone=args.backbone, checkpoint=args.checkpoint, work_dir=work,
                               max_doc_len=args.max_doc_len, device=args.device, precision=args.precision), out


def cmd_evaluate(args) -> None:
    """Under torchrun or ``srun`` with several ranks, every rank encodes its corpus shards (on its own
    GPU with ``--device cuda``), then rank 0 alone evaluates."""
    from dataclasses import replace

    from lr_core.devices import rank_device
    from lr_core.distributed import launch_world_size, local_rank
    from lr_core.retrieval.evaluate import encode_corpus_shards_on_ranks, evaluate

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
    from lr_core.data.beir import load_beir
    from lr_core.retrieval.evaluate import encoded_corpus_dir, encode_corpus_for

    model, _ = _eval_model(args)
    settings = _eval_settings(args)
    for dataset in args.dataset:
        data = load_beir(dataset, args.split or "test", data_dir=args.data_dir, load_corpus=True)
        encode_corpus_for(model, data, settings, sparse=True, shards=args.shard)
        print(f"encoded {dataset}: {encoded_corpus_dir(model, data, settings)}")


def cmd_bm25(args) -> None:
    from lr_core.retrieval.evaluate import evaluate_bm25

    for dataset in args.dataset:
        rec = evaluate_bm25(dataset, Path(args.out), split=args.split, data_dir=args.data_dir, variant=args.variant,
                            index_root=Path(args.index_dir) if args.index_dir else None)
        print(f"{rec['dataset']:<14} bm25       nDCG@10 {rec['ndcg@10']:.4f}  R@100 {rec['recall@100']:.4f}  "
              f"({rec['num_queries']} queries)")
    print(f"results: {args.out}")


def cmd_demo(args) -> None:
    from experiments import DEMO_ADAPTERS, DEMO_CONFIGS
    from lr_core.pipeline.demo import run_demo, run_published_demo

    out = Path(args.out)
    if args.train:
        run_demo(out, steps=args.steps, configs=DEMO_CONFIGS, dataset=args.dataset, data_dir=args.data_dir,
                 batch_size=args.batch_size, max_doc_len=args.max_doc_len, overrides=args.overrides)
        return
    if args.overrides:
        raise ConfigError("config overrides only apply with --train (published adapters keep their own configs)")
    # The released recipe trains the symmetric baseline in the same run (METHOD.md): the
    # LightRetriever adapter's own "symmetric" row is that baseline. The standalone symmetric model
    # costs one more corpus encoding (about 6 of the demo's minutes on 2 cores), so it is asked for.
    adapters = {"lightretriever": Path(DEMO_ADAPTERS["lightretriever"])}
    if args.standalone_symmetric:
        adapters["symmetric"] = Path(DEMO_ADAPTERS["symmetric"])
    for spec in args.adapter or []:
        label, sep, path = spec.partition("=")
        if not sep or label not in DEMO_ADAPTERS:
            raise ConfigError(f"--adapter {spec!r}: expected LABEL=DIR with LABEL one of {sorted(DEMO_ADAPTERS)}")
        adapters[label] = Path(path)
    run_published_demo(out, adapters, dataset=args.dataset, data_dir=args.data_dir, batch_size=args.batch_size,
                       untrained=args.untrained, precision=args.precision)
    print("symmetric rows: the full LLM encodes queries too. LightRetriever's own symmetric row is the run's full "
          "query path, trained jointly: the released recipe's symmetric baseline"
          + ("." if "symmetric" in adapters else "; add the standalone one with --standalone-symmetric."))
    if args.speed_queries:  # Table 1 on this machine: the adapter's own cache and corpus encoding, built above
        from experiments.benchmarks import speed

        argv = ["--run-dir", str(adapters["lightretriever"]), "--work-dir", str(out / "lightretriever"),
                "--dataset", args.dataset, "--query-datasets", args.dataset, "--queries", str(args.speed_queries),
                "--precision", args.precision, "--out", str(out / "speed")]
        if args.data_dir:
            argv += ["--data-dir", args.data_dir, "--query-data-dir", args.data_dir]
        if speed.main(argv):
            raise SystemExit(2)


def cmd_compare(args) -> None:
    from lr_core.pipeline.demo import run_comparison

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
                   batch_size=args.batch_size, overrides=args.overrides, representations=reps,
                   bm25=args.bm25, tag=args.tag)


def cmd_sweep(args) -> None:
    from slurm import submit, task
    from slurm.spec import load_spec

    spec = _object(args, "spec", "SPEC", "--spec")
    if sum([args.status, args.local, args.dry_run]) > 1:
        raise ConfigError("--status, --local and --dry-run are different actions: choose one")
    if args.status:
        rows = submit.status(load_spec(spec))
        for r in rows:
            print(f"{r['index']:>4}  {r['state']:<13} {r['name']}  {r.get('message', '')}".rstrip())
        counts = {}
        for r in rows:
            counts[r["state"]] = counts.get(r["state"], 0) + 1
        print("  ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
        return
    if args.local:
        from experiments.benchmarks import speed

        status = task.run_local(spec, bench_speed=speed.main)
        if status:
            raise SystemExit(status)
        return
    submit.submit(spec, dry_run=args.dry_run)


def cmd_sweep_task(args) -> None:
    from slurm.spec import SPEED_DIR
    from slurm.task import run_task, speed_task

    if args.index == SPEED_DIR:
        from experiments.benchmarks import speed

        status = speed_task(args.manifest, speed.main)
    else:
        status = run_task(args.manifest, int(args.index))
    if status:
        raise SystemExit(status)


def cmd_variants(args) -> None:
    from lr_core.variants import list_variants

    for v in list_variants().values():
        shown = f"; report: {v.table} {', '.join(v.representations)}" if v.table else ""
        print(f"{v.name:<18} {v.display}: {v.description}  [{v.paper_table}{shown}]")


BENCH_SCRIPTS = {
    "sparse-memory": "experiments.benchmarks.sparse_memory",
    "train-step": "experiments.benchmarks.train_step",
    "cache-build": "experiments.benchmarks.cache_build",
    "train-resume": "experiments.benchmarks.train_resume",
    "speed": "experiments.benchmarks.speed",
    "scaling": "experiments.benchmarks.scaling",
    "malloc": "experiments.benchmarks.malloc",
}


def cmd_bench(args) -> None:
    import importlib

    rest = list(args.rest)
    if args.name in ("speed", "scaling") and rest and not rest[0].startswith("-"):
        rest = ["--run-dir", *rest]  # the convention: RUN_DIR positional or --run-dir
    status = importlib.import_module(BENCH_SCRIPTS[args.name]).main(rest)
    if status:
        raise SystemExit(status)


def cmd_export_adapter(args) -> None:
    from lr_core.adapters import export_adapter
    from lr_core.train import load_trained

    run_dir = _object(args, "run_dir", "RUN_DIR", "--run-dir")
    print(f"adapter: {export_adapter(*load_trained(run_dir), run_dir, args.out, serve=args.serve)}")


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
    from lr_core.retrieval.download import download_dataset, default_data_dir

    dest = Path(args.dest) if args.dest else default_data_dir()
    if args.md5 is not None and len(args.names) != 1:
        raise ConfigError("--md5 checks one archive: give one NAME with it")
    for name in args.names:
        path = download_dataset(name, dest, base_url=args.base_url, md5=args.md5, force=args.force)
        print(f"{name}: {path}")


def cmd_mteb(args) -> None:
    from lr_core.retrieval.mteb_eval import run_mteb_tasks

    run_dir = _object(args, "run_dir", "RUN_DIR", "--run-dir")
    out = Path(args.out) if args.out else Path(run_dir) / "eval"
    for rec in run_mteb_tasks(run_dir, args.task, out, representations=args.representation or ["dense"],
                              checkpoint=args.checkpoint, data_dir=args.data_dir, instruction=args.instruction,
                              batch_size=args.batch_size, max_doc_len=args.max_doc_len):
        print(f"{rec['dataset']:<14} {rec['representation']:<10} nDCG@10 {rec['ndcg@10']:.4f}  "
              f"R@100 {rec.get('recall@100', float('nan')):.4f}  (mteb)")
    print(f"results: {out}")


def serving_command(module_name: str):
    def run(args) -> None:
        import importlib

        module = importlib.import_module(module_name)
        status = module.run(args, args.argv_tail) if module_name == "lr_core.serve.loadtest" else module.run(args)
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
