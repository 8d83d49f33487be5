"""Scaling curves on this machine: encode time vs query length and vs N, search time vs M; full LLM vs light.

    lr bench scaling --run-dir runs/lightretriever_scifact --out reports/benchmarks/scaling
    lr bench scaling --backbone smollm2-135m-instruct --work-dir /tmp/speed-work --out DIR
    lr bench scaling --backbone tiny-llama --work-dir /tmp/w --lengths 4,16 --full-queries 8 --light-queries 256 \\
        --ns 64,256 --full-ns 16 --ms 1000,10000 --search-queries 32 --out DIR                     (smoke)

Three sweeps with the pipelines of ``lr bench speed`` (:mod:`experiments.benchmarks.speed`); every
point is really run (after one untimed warm-up), nothing is extrapolated:

* length: queries of exactly L tokens for L in ``--lengths`` (default 4, 8, 16, ... up to the model's
  ``max_query_tokens``, which is included): random
  sequences of the words of ``--dataset``'s test queries that are one token each (alone and after
  a space), so that light dense and sparse see L tokens and the full LLM ``<bos> prompt query <eos>``,
  i.e. prompt + L + 1 (checked, and recorded as ``tokens``). ``--full-queries`` (default 64) go
  through the full LLM, ``--light-queries`` (default 4096) through light dense (cache lookup +
  mean) and light sparse (term counts); per L: encode seconds per query and queries/s;
* N: the first N of ``--dataset``'s test queries (cycled to N), tokenized and encoded, for N in
  ``--ns`` (default 256,1024,4096,16384,65536) light and ``--full-ns`` (default 64,256) full;
* M: ``--search-queries`` (default 256) light queries searched, top ``--top-k`` (default 100), among
  M random documents for M in ``--ms`` (default 1000,10000,100000,1000000), those of
  ``lr bench speed --random-docs``: unit vectors of the model width in a Faiss IndexFlatIP (full
  queries have the same width, so the same search cost) and ``--random-terms`` random terms per
  document for the exact sparse index, within ``--max-gb``; dense, sparse and hybrid (both searches
  and the fusion) search seconds and queries/s.

The encode sweeps run the pipelines against :class:`NoSearch`: only tokenize and encode are timed.
``--out`` (default reports/benchmarks/scaling) gets ``scaling.json`` (date, machine, command,
library versions, model, every timing) and ``scaling.png`` (the three curves, log-log).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from experiments.benchmarks.speed import library_versions, load_queries, random_corpus
from experiments.benchmarks.common import add_model_args, run_or_user_error
from experiments.benchmarks.speed_pipelines import time_full, time_light_dense, time_light_hybrid, time_light_sparse
from lr_core.errors import ConfigError, DataError

WARMUP = 8  # queries per untimed warm-up run


def default_lengths(max_tokens: int) -> list[int]:
    """4, 8, 16, ... below ``max_tokens``, then ``max_tokens`` itself (the longest query the model reads)."""
    out, length = [], 4
    while length < max_tokens:
        out.append(length)
        length *= 2
    return [*out, max_tokens] if max_tokens >= 1 else out


class NoSearch:
    """The index of the encode sweeps: its search does nothing, so a pipeline times tokenize and encode only."""

    def search(self, queries, k):
        return None


def positive_ints(option: str, text: str) -> list[int]:
    """``"4,8,16"`` -> ``[4, 8, 16]`` (sorted, distinct); ConfigError unless one or more integers >= 1."""
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"{option} takes comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise ConfigError(f"{option} needs one or more integers >= 1, got {text!r}")
    return sorted(set(values))


def rate(n: int, seconds: float) -> float | None:
    """Queries per second (as ``Stages.report``: None for an immeasurably short time)."""
    return round(n / seconds, 2) if seconds > 0 else None


# --------------------------------------------------------------------------- queries of L tokens


def one_token_words(tok, texts: list[str]) -> list[str]:
    """The alphabetic words of ``texts`` that are one token alone (a query's first word) and after a space."""
    words = sorted({w for t in texts for w in t.lower().split() if w.isalpha()})
    alone, spaced = tok.light_query_ids(words), tok.sparse_query_ids(words)
    pool = [w for w, a, s in zip(words, alone, spaced) if len(a) == len(s) == 1]
    if not pool:
        raise DataError("no word of the queries is a single token: cannot build queries of an exact length")
    return pool


def queries_of_length(words: list[str], length: int, n: int) -> list[str]:
    rng, pool = np.random.default_rng(length), np.asarray(words)
    return [" ".join(rng.choice(pool, size=length)) for _ in range(n)]


def token_counts(tok, instruction: str, full_qs: list[str], light_qs: list[str], length: int) -> dict:
    """Each pipeline's tokens per query (what its tokenize stage gives), checked to be one exact value."""
    rows = {"full": tok.full_query_ids(full_qs, instruction), "light_dense": tok.light_query_ids(light_qs),
            "light_sparse": tok.sparse_query_ids(light_qs)}
    seen = {name: sorted({len(r) for r in ids}) for name, ids in rows.items()}
    expect = {"full": [tok.full_prompt_length(instruction) + length + 1], "light_dense": [length], "light_sparse": [length]}
    if seen != expect:
        raise DataError(f"queries built to have {length} tokens have {seen} tokens")
    return {name: counts[0] for name, counts in seen.items()}


# --------------------------------------------------------------------------- sweeps


def encode_timings(report: dict, n: int) -> dict:
    """A pipeline's tokenize and encode seconds (its search stage was :class:`NoSearch`'s) and rates."""
    tok_s, enc_s = report["tokenize_s"], report["encode_s"]
    return {"queries": n, "tokenize_s": tok_s, "encode_s": enc_s, "encode_s_per_query": round(enc_s / n, 9),
            "encode_qps": rate(n, enc_s), "tokenize_encode_s": round(tok_s + enc_s, 6),
            "tokenize_encode_qps": rate(n, tok_s + enc_s)}


def length_sweep(pipelines: dict, tok, instruction: str, texts: list[str], lengths: list[int], n_full: int,
                 n_light: int) -> dict:
    words = one_token_words(tok, sorted(set(texts)))
    curves = {name: [] for name in pipelines}
    for length in lengths:
        queries = queries_of_length(words, length, max(n_full, n_light))
        sets = {"full": queries[:n_full], "light_dense": queries[:n_light], "light_sparse": queries[:n_light]}
        tokens = token_counts(tok, instruction, sets["full"], sets["light_dense"], length)
        for name, run_pipeline in pipelines.items():
            timings = encode_timings(run_pipeline(sets[name]), len(sets[name]))
            curves[name].append({"L": length, "tokens": tokens[name], **timings})
    return {"lengths": lengths, "full_queries": n_full, "light_queries": n_light, "one_token_words": len(words),
            "curves": curves}


def n_sweep(pipelines: dict, texts: list[str], ns: list[int], full_ns: list[int]) -> dict:
    curves = {name: [{"N": n, **encode_timings(run_pipeline(texts[:n]), n)}
                     for n in (full_ns if name == "full" else ns)]
              for name, run_pipeline in pipelines.items()}
    return {"ns": ns, "full_ns": full_ns, "curves": curves}


def search_point(m: int, dim: int, tok, cache, texts: list[str], args) -> tuple[dict, dict]:
    """Corpus facts and the dense/sparse/hybrid pipeline timings for ``texts`` among ``m`` random documents."""
    from lr_core.retrieval.dense_index import DenseIndex
    from lr_core.retrieval.sparse_index import SparseIndex

    start = time.perf_counter()
    doc_ids, dense, sparse = random_corpus(m, dim, tok.vocab_size, args.random_terms, max_gb=args.max_gb)
    dense_index = DenseIndex(dense, doc_ids, use_gpu=False)
    sparse_index = SparseIndex.from_csr(sparse, doc_ids)
    corpus = {"M": m, "prepare_seconds": round(time.perf_counter() - start, 3),
              "sparse_terms_per_doc": round(sparse.nnz / m, 1)}
    del dense, sparse  # the indexes hold their own copies
    k, bs = args.top_k, args.batch_size
    # warm-up (not timed): the sparse index's posting lists, Faiss/OpenMP threads
    time_light_hybrid(tok, cache, texts[:WARMUP], dense_index, sparse_index, k, bs)
    timings = {"dense": time_light_dense(tok, cache, texts, dense_index, k, bs),
               "sparse": time_light_sparse(tok, texts, sparse_index, k, bs),
               "hybrid": time_light_hybrid(tok, cache, texts, dense_index, sparse_index, k, bs)}
    n = len(texts)
    return corpus, {name: {"M": m, **r, "search_s_per_query": round(r["search_s"] / n, 9), "search_qps": rate(n, r["search_s"])}
                    for name, r in timings.items()}


def search_sweep(dim: int, tok, cache, texts: list[str], ms: list[int], args) -> dict:
    corpora, curves = [], {"dense": [], "sparse": [], "hybrid": []}
    for m in reversed(ms):  # largest first: a corpus over --max-gb fails before any time is spent
        corpus, points = search_point(m, dim, tok, cache, texts, args)
        corpora.insert(0, corpus)
        for name, point in points.items():
            curves[name].insert(0, point)
    return {"ms": ms, "queries": len(texts), "top_k": args.top_k,
            "corpus": {"kind": "random", "random_terms": args.random_terms,
                       "distribution": "unit vectors (normalised Gaussian); sparse: uniform random terms, "
                                       "weights U(0.1, 3)"},
            "corpora": corpora, "curves": curves}


# --------------------------------------------------------------------------- the benchmark


def run(args, argv) -> dict:
    import faiss
    import torch

    from experiments.benchmarks.common import report_header
    from lr_core.data.beir import resolve_dataset_dir
    from lr_core.retrieval.tasks import task_for_path
    from lr_core.retrieval.evaluate import load_model_for_eval, vocab_cache_for

    if bool(args.run_dir) == bool(args.backbone):
        raise ConfigError("give a trained --run-dir, or --backbone NAME with --work-dir (not both)")
    if args.backbone and not args.work_dir:
        raise ConfigError("--backbone needs --work-dir (where its vocabulary cache is kept)")
    ns, full_ns, ms = (positive_ints(f"--{name.replace('_', '-')}", getattr(args, name))
                       for name in ("ns", "full_ns", "ms"))
    lengths = positive_ints("--lengths", args.lengths) if args.lengths else None
    for name in ("full_queries", "light_queries", "search_queries", "batch_size", "top_k", "random_terms"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.threads:
        torch.set_num_threads(args.threads)
        faiss.omp_set_num_threads(args.threads)
    texts, query_source = load_queries(max(*ns, *full_ns, args.search_queries), None, [args.dataset], args.data_dir)
    model = load_model_for_eval(args.run_dir, backbone=args.backbone, checkpoint=args.checkpoint,
                                work_dir=args.work_dir)
    encoder = model.encoder
    encoder.lm.to(args.device)
    encoder.eval()
    tok = encoder.tokenizer
    if lengths is None:
        lengths = default_lengths(tok.max_query_tokens)
    if lengths[-1] > tok.max_query_tokens:
        raise ConfigError(f"--lengths: {lengths[-1]} is over the tokenizer's {tok.max_query_tokens} query tokens")
    instruction = task_for_path(resolve_dataset_dir(args.dataset, args.data_dir)).instruction
    start = time.perf_counter()
    cache = vocab_cache_for(model, instruction, args.cache_dtype)
    cache_s = time.perf_counter() - start

    k, bs, no_search = args.top_k, args.batch_size, NoSearch()
    encoders = {"full": lambda qs: time_full(encoder, qs, instruction, no_search, k, bs),
                "light_dense": lambda qs: time_light_dense(tok, cache, qs, no_search, k, bs),
                "light_sparse": lambda qs: time_light_sparse(tok, qs, no_search, k, bs)}
    search = search_sweep(encoder.hidden_size, tok, cache, texts[:args.search_queries], ms, args)
    for run_pipeline in encoders.values():  # warm-up (not timed): torch kernels, tokenizer threads
        run_pipeline(texts[:WARMUP])

    report = report_header("scaling", argv)
    report["machine"].update(torch_threads=torch.get_num_threads(), faiss_threads=faiss.omp_get_max_threads(),
                             device=str(encoder.device))
    report.update({
        "libraries": library_versions(),
        "model": {"variant": model.variant, "backbone": model.backbone, "checkpoint": model.checkpoint,
                  "checkpoint_hash": model.checkpoint_hash, "hidden_size": encoder.hidden_size,
                  "parameters": sum(p.numel() for p in encoder.lm.parameters())},
        "instruction": instruction, "queries": query_source, "batch_size": bs,
        "cache": {"dtype": args.cache_dtype, "megabytes": round(cache.vectors.nbytes / 2**20, 2),
                  "load_or_build_seconds": round(cache_s, 3)},
        "faiss": {"index": "IndexFlatIP", "gpu": False},
        "length_sweep": length_sweep(encoders, tok, instruction, texts, lengths, args.full_queries,
                                     args.light_queries),
        "n_sweep": n_sweep(encoders, texts, ns, full_ns),
        "search_sweep": search,
    })
    return report


def plot(report: dict, path: Path) -> Path:
    """``scaling.png``: the three sweeps side by side, log-log, written atomically."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter

    from lr_core.io import atomic_path

    search = report["search_sweep"]
    panels = [(report["length_sweep"]["curves"], "L", "encode_s_per_query", "query tokens L",
               "encode seconds per query", "Encode time vs query length"),
              (report["n_sweep"]["curves"], "N", "tokenize_encode_s", "queries N",
               "tokenize + encode seconds", "Encode time vs N"),
              (search["curves"], "M", "search_s", "documents M",
               f"seconds to search {search['queries']} queries (top {search['top_k']})", "Search time vs M")]
    fig = Figure(figsize=(14, 4), layout="constrained")
    for ax, (curves, x, y, xlabel, ylabel, title) in zip(fig.subplots(1, 3), panels):
        for name, points in curves.items():
            ax.plot([p[x] for p in points], [p[y] for p in points], marker="o", label=name)
        ax.set(xscale="log", yscale="log", xlabel=xlabel, ylabel=ylabel, title=title)
        xs = sorted({p[x] for points in curves.values() for p in points})
        ax.set_xticks(xs, [str(v) for v in xs], fontsize=8)  # the measured values, not powers of ten
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{report['model']['backbone']} ({report['model']['variant']}), {report['machine']['device']}, "
                 f"{report['machine']['torch_threads']} torch threads", fontsize=9)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    return path


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lr bench scaling", description=__doc__.splitlines()[0])
    add_model_args(p, work_dir="cache directory")
    p.add_argument("--dataset", default="scifact", help="whose test queries and instruction to use")
    p.add_argument("--data-dir", help="where --dataset lives (default: $LR_DATA_DIR)")
    p.add_argument("--lengths", default=None,
                   help="query lengths L in tokens (comma-separated; default 4, 8, ... up to the model's max query tokens)")
    p.add_argument("--full-queries", type=int, default=64, help="queries per L through the full LLM")
    p.add_argument("--light-queries", type=int, default=4096, help="queries per L through light dense and sparse")
    p.add_argument("--ns", default="256,1024,4096,16384,65536", help="numbers of queries N, light")
    p.add_argument("--full-ns", default="64,256", help="numbers of queries N, full LLM")
    p.add_argument("--ms", default="1000,10000,100000,1000000", help="numbers of random documents M")
    p.add_argument("--search-queries", type=int, default=256, help="light queries searched at each M")
    p.add_argument("--random-terms", type=int, default=128, help="terms per random sparse document")
    p.add_argument("--max-gb", type=float, default=16.0, help="memory cap for the largest random corpus")
    p.add_argument("--batch-size", type=int, default=256, help="queries per batch, every pipeline (default 256)")
    p.add_argument("--top-k", type=int, default=100, help="documents retrieved per query (and fused, hybrid)")
    p.add_argument("--cache-dtype", choices=("float32", "float16"), default="float32")
    p.add_argument("--threads", type=int, default=None, help="torch and Faiss threads (default: library defaults)")
    p.add_argument("--device", default="cpu", help="device of the full LLM (cpu or cuda)")
    p.add_argument("--out", type=Path, default=Path("reports/benchmarks/scaling"),
                   help="directory for scaling.json and scaling.png")
    return p


def _line(curves: dict, x: str, y: str) -> str:
    return "; ".join(f"{name} " + " ".join(f"{p[x]}:{p[y]:.3g}" for p in points) for name, points in curves.items())


def main(argv: list[str] | None = None) -> int:
    """``lr bench scaling``: writes OUT/scaling.json and OUT/scaling.png; 2 on a user error."""
    from lr_core.io import atomic_write_json

    args = _parser().parse_args(argv)
    report = run_or_user_error("lr bench scaling", run, args, argv)
    if report is None:
        return 2
    path = atomic_write_json(args.out / "scaling.json", report)
    png = plot(report, args.out / "scaling.png")
    print(f"encode s/query vs L    {_line(report['length_sweep']['curves'], 'L', 'encode_s_per_query')}")
    print(f"tokenize+encode s vs N {_line(report['n_sweep']['curves'], 'N', 'tokenize_encode_s')}")
    print(f"search s vs M          {_line(report['search_sweep']['curves'], 'M', 'search_s')}")
    print(f"-> {path}, {png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
