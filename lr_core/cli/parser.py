"""The ``lr`` argument parser: every command's options, help text and example (:data:`COMMANDS`,
which README.md's command list is checked against), and the old spellings kept for one release.
"""
from __future__ import annotations

import argparse
import sys

from lr_core.devices import PRECISIONS
from lr_core.pipeline.demo import DEMO_MAX_DOC_LEN, DEMO_PRECISION, DEMO_STEPS
from lr_core.cli.commands import (BENCH_SCRIPTS, cmd_bench, cmd_bm25, cmd_cache, cmd_compare, cmd_config_keys,
                                  cmd_config_show, cmd_data_download, cmd_demo, cmd_encode, cmd_evaluate,
                                  cmd_export_adapter, cmd_fit, cmd_mteb, cmd_report, cmd_sweep, cmd_sweep_task,
                                  cmd_variants, serving_command)


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
    "demo": ("score the published LightRetriever adapter beside BM25, then time the query side (SciFact)",
             ["lr demo [--out runs/demo] [--standalone-symmetric]", "lr demo --train [--steps 40]"]),
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
    "bench": ("run a benchmark (sparse-memory, train-step, cache-build, train-resume, speed, scaling, malloc)",
              ["lr bench speed RUN_DIR [--a3-run-dir A3_RUN] [--fp16-check]",
               "lr bench scaling RUN_DIR",
               "lr bench sparse-memory|train-step|cache-build|train-resume|malloc"]),
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
    ea.add_argument("--serve", action="append", metavar="KEY=VALUE",
                    help="a serve-time setting for the published config (repeatable; e.g. model.cache_centre=vocab_mean)")

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
        parser.add_argument("--precision", default="auto", choices=PRECISIONS,
                            help="inference autocast: auto = bf16 on CUDA, float32 on the CPU; bfloat16 also on the CPU")
        parser.add_argument("--faiss-gpu", default="replicate", choices=["replicate", "shard"],
                            help="with faiss-gpu: a full index per GPU, or the vectors split over the GPUs")
        parser.add_argument("--faiss-fp16", action="store_true", help="Faiss GPU index in float16")
        parser.add_argument("--num-shards", type=int, default=1,
                            help="corpus shards (resumable; under torchrun/srun at least one per rank)")
        parser.add_argument("--dense-dtype", default="float32", choices=["float32", "float16"])
        parser.add_argument("--cache-dtype", default="float32", choices=["float32", "float16"])
        from lr_core.retrieval.evaluate import REPRESENTATIONS

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
    d.add_argument("--adapter", action="append", metavar="LABEL=DIR",
                   help="another published adapter directory for lightretriever or symmetric (repeatable; "
                        "a symmetric one is scored too)")
    d.add_argument("--standalone-symmetric", action="store_true",
                   help="also score the published standalone symmetric model (one more corpus encoding, ~6 min "
                        "on 2 cores); LightRetriever's own symmetric row is always there")
    d.add_argument("--speed-queries", type=int, default=300,
                   help="queries timed by the speed comparison after scoring (0: skip it; Table 1 uses 2048)")
    d.add_argument("--untrained", action="store_true", help="also score the untrained backbone (one more corpus encoding)")
    d.add_argument("--precision", default=DEMO_PRECISION, choices=PRECISIONS,
                   help="evaluation autocast of the published demo (default bfloat16, as the findings grid)")
    d.add_argument("--train", action="store_true",
                   help="train both models from scratch instead of scoring the published adapters")
    d.add_argument("--steps", type=int, default=DEMO_STEPS, help="with --train: training steps per model")
    d.add_argument("--max-doc-len", type=int, default=DEMO_MAX_DOC_LEN,
                   help="with --train: document tokens, training and corpus encoding (0: the configs' own)")
    d.add_argument("overrides", nargs="*", help="with --train: config overrides for both models, e.g. optim.lr=2e-4")
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
    b.add_argument("name", choices=sorted(BENCH_SCRIPTS))
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

    from lr_core.pipeline import export
    from lr_core.serve import loadtest, server

    for name, module in (("export-serving", export), ("serve", server), ("loadtest", loadtest)):
        sp = _command(sub, name, serving_command(module.__name__))
        module.add_arguments(sp)
    return p


def rewrite_deprecated(argv: list[str]) -> list[str]:
    """Old spellings that still work for one release, each with a one-line deprecation notice."""
    for i, tok in enumerate(argv):
        if tok.startswith("-"):
            continue
        if tok == "sweep" and i + 1 < len(argv) and argv[i + 1] == "status":
            print("lr sweep: `lr sweep status SPEC` is deprecated; use `lr sweep SPEC --status`", file=sys.stderr)
            return argv[:i + 1] + argv[i + 2:] + ["--status"]
        break  # the first word is the command
    return argv
