"""``lr export-serving``: write the serving bundle of a trained run (the torch side of serving).

The bundle format, its reader and its writer are :mod:`lr_core.serve.bundle` (torch-free); this
module loads the model, builds (or reuses) its vocabulary cache and corpus encoding with the
evaluation machinery, and hands them to :func:`~lr_core.serve.bundle.write_bundle`::

    lr export-serving runs/lightretriever_scifact bundles/scifact --dataset scifact [--dtype float16]
    lr export-serving --backbone tiny-llama --work-dir /tmp/w bundles/tiny --dataset scifact

    >>> path = export_bundle(model, "scifact", "bundles/scifact")          # doctest: +SKIP
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from lr_core.errors import CacheMismatchError, ConfigError, DataError
from lr_core.serve.bundle import CACHE_DTYPES, SPARSE_QUERY_MODES, read_manifest
from lr_core.serve.bundle_write import BundleSettings, check_out_dir, write_bundle


def export_bundle(model, dataset: str, out: str | os.PathLike, data_dir: str | os.PathLike | None = None,
                  settings=None, cache_dtype: str = "float32", fusion_depth: int | None = None,
                  force: bool = False) -> Path:
    """Write the serving bundle of ``model`` (an :class:`~lr_core.retrieval.evaluate.EvalModel`) for ``dataset``.

    The vocabulary cache and the encoded corpus come from the evaluation machinery
    (:func:`~lr_core.retrieval.evaluate.vocab_cache_for`, :func:`~lr_core.retrieval.evaluate.encoded_corpus_for`), so
    they are reused from, or left in, the model's work directory, and a bundle answers exactly
    what ``lr evaluate`` scores with the same ``settings`` (an :class:`~lr_core.retrieval.evaluate.EvalSettings`:
    instruction, fusion, sparse_top_k, mrl_dim, sparse_query_mode, max_doc_len of the model; its
    ``top_k`` is the fusion depth unless ``fusion_depth`` is given).
    """
    from lr_core.data.beir import load_beir, resolve_dataset_dir
    from lr_core.retrieval.tasks import task_for_path
    from lr_core.retrieval.evaluate import EvalSettings, encoded_corpus_for, vocab_cache_for

    settings = settings or EvalSettings()
    if cache_dtype not in CACHE_DTYPES:
        raise ConfigError(f"cache dtype must be one of {', '.join(CACHE_DTYPES)}, got {cache_dtype!r}")
    bset = BundleSettings(fusion=settings.fusion, w_dense=settings.w_dense, w_sparse=settings.w_sparse,
                          rrf_k=settings.rrf_k, fusion_depth=fusion_depth if fusion_depth is not None else settings.top_k,
                          sparse_query_mode=settings.sparse_query_mode, sparse_top_k=settings.sparse_top_k,
                          mrl_dim=settings.mrl_dim)
    bset.check()  # before any expensive work
    check_out_dir(out, force)
    reps = set(model.representations)
    if "dense" not in reps:
        raise ConfigError(f"variant {model.variant!r} has no light dense representation (it evaluates "
                          f"{', '.join(sorted(reps))}); only LightRetriever-style runs can be served without an LLM")
    if model.module is not None and model.module.query_side == "network":
        raise ConfigError(f"variant {model.variant!r} encodes dense queries with a network at serve time "
                          "(query_side 'network'); it cannot be served from a vocabulary cache")
    with_sparse = bool({"sparse", "hybrid"} & reps)
    bench = task_for_path(resolve_dataset_dir(dataset, data_dir), instruction=settings.instruction,
                               split=settings.split)
    data = load_beir(dataset, settings.split or bench.eval_split, data_dir=data_dir)
    cache = vocab_cache_for(model, bench.instruction, cache_dtype)
    # the same `sparse` flag as `lr evaluate`, so an encoding it made is reused (its manifest must match)
    corpus = encoded_corpus_for(model, data, settings, sparse=with_sparse)
    info = {"variant": model.variant, "backbone": model.backbone, "checkpoint": model.checkpoint,
            "checkpoint_hash": model.checkpoint_hash, "config_hash": model.config_hash}
    return write_bundle(out, model.encoder.tokenizer, cache, corpus.doc_ids, corpus.dense,
                        corpus.sparse if with_sparse else None, dataset=data.name, instruction=bench.instruction,
                        settings=bset, model_info=info, force=force)


# --------------------------------------------------------------------------- command line


DESCRIPTION = "write an LLM-free serving bundle of a trained run"
EXAMPLE = "lr export-serving runs/lightretriever_scifact bundles/scifact --dataset scifact --dtype float16"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``lr export-serving`` (shared by ``lr``'s parser and :func:`build_parser`)."""
    p.add_argument("run_dir", nargs="?", metavar="RUN_DIR", help="trained run directory (or --run-dir; or --backbone)")
    p.add_argument("out", nargs="?", metavar="BUNDLE", help="bundle directory to create (or --bundle)")
    p.add_argument("--run-dir", dest="run_dir_opt", metavar="RUN_DIR", help="same as the RUN_DIR positional")
    p.add_argument("--bundle", dest="out_opt", metavar="BUNDLE", help="same as the BUNDLE positional")
    p.add_argument("--backbone", help="export this untrained backbone instead of a run (needs --work-dir)")
    p.add_argument("--work-dir", help="cache/corpus directory (default: RUN_DIR; required with --backbone)")
    p.add_argument("--checkpoint", help="default: RUN_DIR/checkpoints/last.ckpt")
    p.add_argument("--dataset", default="scifact", help="BEIR data set whose corpus is indexed (default scifact)")
    p.add_argument("--data-dir", help="where data sets live (default: $LR_DATA_DIR)")
    p.add_argument("--split", default=None, help="qrels split (only to load the data set; default: the benchmark's)")
    p.add_argument("--dtype", choices=CACHE_DTYPES, default="float32", help="vocabulary cache dtype in the bundle")
    p.add_argument("--max-doc-len", type=int, default=None, help="document length used for corpus encoding")
    p.add_argument("--batch-size", type=int, default=16, help="corpus encoding batch size")
    p.add_argument("--sparse-top-k", type=int, default=None, help="keep each document's k largest term weights")
    p.add_argument("--mrl-dim", type=int, default=None, help="Matryoshka truncation of the dense index")
    p.add_argument("--instruction", default=None, help="override the benchmark's query instruction")
    p.add_argument("--fusion", choices=("linear", "rrf"), default="linear")
    p.add_argument("--w-dense", type=float, default=0.7)
    p.add_argument("--w-sparse", type=float, default=0.3)
    p.add_argument("--fusion-depth", type=int, default=1000,
                   help="list depth fused per side (lr evaluate's --top-k; default 1000)")
    p.add_argument("--sparse-query-mode", choices=SPARSE_QUERY_MODES, default="counts")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lr export-serving", description=DESCRIPTION, epilog=f"example: {EXAMPLE}")
    add_arguments(p)
    return p


def _positional_or_named(args, dest: str, label: str) -> str | None:
    pos, named = getattr(args, dest), getattr(args, f"{dest}_opt", None)
    if pos and named and pos != named:
        raise ConfigError(f"{label} given twice ({pos!r} and {named!r})")
    return pos or named


def main(argv: list[str] | None = None) -> int:
    """``lr export-serving``: 0 on success, 2 on a user error (message on stderr)."""
    return run(build_parser().parse_args(argv))


def run(args: argparse.Namespace) -> int:
    """Run ``lr export-serving`` with parsed arguments (see :func:`add_arguments`)."""
    try:
        from lr_core.retrieval.evaluate import EvalSettings, load_model_for_eval

        # one positional with --run-dir/--backbone given is the bundle, not the run directory
        if args.run_dir and not args.out and (args.run_dir_opt or args.backbone):
            args.run_dir, args.out = None, args.run_dir
        args.run_dir = _positional_or_named(args, "run_dir", "the run directory")
        args.out = _positional_or_named(args, "out", "the bundle directory")
        if not args.out:
            raise ConfigError("give a trained RUN_DIR (or --backbone NAME) and the bundle directory to create: "
                              "lr export-serving RUN_DIR BUNDLE (or --run-dir RUN_DIR --bundle BUNDLE)")
        if bool(args.run_dir) == bool(args.backbone):
            raise ConfigError("give a trained RUN_DIR, or --backbone NAME with --work-dir (not both)")
        if args.backbone and not args.work_dir:
            raise ConfigError("--backbone needs --work-dir (where its cache and corpus encoding are kept)")
        check_out_dir(args.out, args.force)  # before loading a model
        model = load_model_for_eval(args.run_dir, backbone=args.backbone, checkpoint=args.checkpoint,
                                    work_dir=args.work_dir, max_doc_len=args.max_doc_len)
        settings = EvalSettings(split=args.split, fusion=args.fusion, w_dense=args.w_dense, w_sparse=args.w_sparse,
                                batch_size=args.batch_size, sparse_top_k=args.sparse_top_k, mrl_dim=args.mrl_dim,
                                instruction=args.instruction, sparse_query_mode=args.sparse_query_mode)
        out = export_bundle(model, args.dataset, args.out, data_dir=args.data_dir, settings=settings,
                            cache_dtype=args.dtype, fusion_depth=args.fusion_depth, force=args.force)
    except (ConfigError, DataError, CacheMismatchError, FileNotFoundError) as exc:
        print(f"lr export-serving: error: {exc}", file=sys.stderr)
        return 2
    manifest = read_manifest(out)
    size = sum(f["bytes"] for f in manifest["files"].values())
    print(f"serving bundle: {out} ({manifest['num_documents']} documents, modes {', '.join(manifest['modes'])}, "
          f"{size / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
