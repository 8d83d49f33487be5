"""Query-side speed, the paper's Table 1 protocol on this machine: full LLM vs LightRetriever.

    lr bench speed --run-dir runs/lightretriever_scifact --out reports/benchmarks/speed
    lr bench speed --backbone smollm2-135m-instruct --work-dir /tmp/speed-work --out DIR
    lr bench speed --backbone tiny-llama --work-dir /tmp/w --queries 64 --batch-size 16 --out DIR   (smoke)
    lr bench speed ... --random-docs 1000000          (M random unit vectors instead of the encoded corpus)
    lr bench speed ... --fp16-check                   (also nDCG@10 with a float16 vs a float32 cache)

N queries (default 2048: the SciFact and Cranfield test queries, cycled to N; or ``--query-file``)
go, in batches of ``--batch-size`` (default 256), through four pipelines in this one process:

* ``full``: the whole LLM of the same backbone on ``<bos> prompt query <eos>``
  (:meth:`~lr_core.encoder.RetrievalEncoder.encode_full_queries`), then Faiss;
* ``light_dense``: token ids -> mean of cached vectors (:meth:`~lr_core.cache.VocabCache.encode`) -> Faiss;
* ``light_sparse``: token ids -> counts -> exact sparse search (SciPy CSR);
* ``light_hybrid``: both, then min-max fusion 0.7/0.3 (the lists are ``--top-k`` deep);
* ``a3`` (with ``--a3-run-dir``): a trained A3 model's query encoder, the first transformer layer
  of the backbone, on the same prompted queries; its vectors are searched in the same Faiss index
  (same M and width, so the same search cost as its own corpus would have).

Each pipeline (timed by :mod:`experiments.benchmarks.speed_pipelines`) reports seconds for tokenize, encode, search (and fuse, inside search, for hybrid)
and their total, and QPS = N / total. Every query is really run (a short warm-up batch first is
not timed): nothing is extrapolated. The corpus is the encoded SciFact corpus of the model (made
and kept in the model's work directory, as ``lr evaluate`` does), or with ``--random-docs M``
M random unit vectors of the model width and M random sparse documents (``--random-terms``
terms each, uniform over the vocabulary); ``corpus.kind`` in the output says which.

``speed.json`` in ``--out`` holds the machine, threads, library versions, N, M, every timing,
``encode_speedup`` (full encode seconds / light dense encode seconds) and ``qps_speedup`` (light
hybrid QPS / full dense QPS). The vocabulary cache is built offline (its build time, when it is
built by this run, is reported but not part of any query timing).
"""
from __future__ import annotations

import argparse
import importlib.metadata
import time
from itertools import cycle, islice
from pathlib import Path

import numpy as np

from experiments.benchmarks.common import add_model_args, run_or_user_error
from experiments.benchmarks.speed_pipelines import time_full, time_light_dense, time_light_hybrid, time_light_sparse
from lr_core.errors import ConfigError, DataError


DEFAULT_QUERY_SETS = ("scifact", "cranfield")


# --------------------------------------------------------------------------- inputs


def load_queries(n: int, query_file: str | None, datasets: list[str], data_dir: str | None) -> tuple[list[str], dict]:
    """``n`` query texts cycled from a file (one per line, or JSONL with ``text``) or data sets' test queries."""
    from lr_core.data.beir import load_beir

    if n < 1:
        raise ConfigError(f"--queries must be >= 1, got {n}")
    if query_file:
        from lr_core.data.beir import read_query_file

        texts = read_query_file(query_file)
        source = {"file": str(query_file), "distinct": len(texts)}
    else:
        texts, per_set = [], {}
        for name in datasets:
            qs = list(load_beir(name, "test", data_dir=data_dir, load_corpus=False).queries.values())
            per_set[name] = len(qs)
            texts += qs
        source = {"datasets": per_set, "split": "test", "distinct": len(texts)}
    texts = [t for t in texts if t.strip()]
    if not texts:
        raise DataError("no queries to time")
    return list(islice(cycle(texts), n)), source


def random_corpus(m: int, dim: int, vocab: int, terms: int, seed: int = 0, max_gb: float = 16.0):
    """``m`` random unit vectors [m, dim] and a random [m, vocab] CSR with ``terms`` terms per row."""
    import scipy.sparse as sp

    need = m * (dim * 4 + terms * 8) / 2**30
    if need > max_gb:
        raise ConfigError(f"--random-docs {m} needs about {need:.1f} GiB; raise --max-gb if the machine has it")
    rng = np.random.default_rng(seed)
    dense = np.empty((m, dim), dtype=np.float32)
    for lo in range(0, m, 65536):  # in chunks: float64 temporaries of the whole matrix would double memory
        block = rng.standard_normal((min(65536, m - lo), dim), dtype=np.float32)
        dense[lo:lo + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    cols = rng.integers(0, vocab, size=m * terms, dtype=np.int32)
    data = rng.uniform(0.1, 3.0, size=m * terms).astype(np.float32)
    indptr = np.arange(0, m * terms + 1, terms, dtype=np.int64)
    sparse = sp.csr_matrix((data, cols, indptr), shape=(m, vocab))
    return [f"r{i}" for i in range(m)], dense, sparse


# --------------------------------------------------------------------------- the benchmark


def library_versions() -> dict:
    out = {}
    for name in ("torch", "transformers", "tokenizers", "numpy", "scipy", "faiss-cpu", "faiss-gpu-cu12"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def _top_lists(run_file: Path, k: int) -> dict[str, list[str]]:
    """Each query's first ``k`` doc ids from a TREC run file (rank order)."""
    lists: dict[str, list[tuple[int, str]]] = {}
    for line in run_file.read_text().splitlines():
        parts = line.split()
        if len(parts) == 6:
            lists.setdefault(parts[0], []).append((int(parts[3]), parts[2]))
    return {q: [d for _, d in sorted(v)[:k]] for q, v in lists.items()}


def fp16_check(model, dataset: str, data_dir: str | None, out: Path, settings_kw: dict) -> dict:
    """nDCG@10 on ``dataset``'s evaluation queries with a float32 vs a float16 vocabulary cache (same model,
    corpus, queries), and how far the rankings move: per representation, the share of queries whose
    top-10 is identical and the mean top-10 overlap (these show the effect even where nDCG is near 0).
    Sparse does not use the cache: it is there as the pipeline's quality, and must not move."""
    from lr_core.retrieval.evaluate import EvalSettings, evaluate

    result = {}
    for dtype in ("float32", "float16"):
        settings = EvalSettings(representations=("dense", "sparse", "hybrid"), cache_dtype=dtype, **settings_kw)
        recs = evaluate(model, dataset, out / dtype, settings, data_dir=data_dir)
        result[dtype] = {r["representation"]: r["ndcg@10"] for r in recs}
    result["delta_ndcg@10"] = {rep: round(result["float16"][rep] - result["float32"][rep], 6)
                               for rep in result["float32"]}
    result["num_queries"] = recs[0]["num_queries"]
    agreement = {}
    for rep in result["float32"]:
        a, b = (_top_lists(out / dtype / recs[0]["dataset"] / rep / "run.trec", 10) for dtype in ("float32", "float16"))
        qids = sorted(set(a) | set(b))
        same = [a.get(q, []) == b.get(q, []) for q in qids]
        overlap = [len(set(a.get(q, [])) & set(b.get(q, []))) / 10 for q in qids]
        agreement[rep] = {"identical_top10": round(sum(same) / max(1, len(qids)), 4),
                          "mean_overlap@10": round(sum(overlap) / max(1, len(qids)), 4)}
    result["top10_agreement"] = agreement
    return result


def a3_model(run_dir: str, device: str, width: int):
    """The trained A3 run whose one-layer query encoder is timed; it must match the main model's width."""
    from lr_core.retrieval.evaluate import load_model_for_eval

    model = load_model_for_eval(run_dir)
    if model.module is None or model.module.query_side != "network" or not model.module.query_layers:
        raise ConfigError(f"--a3-run-dir {run_dir}: variant {model.variant!r} does not encode queries with its "
                          "first layers (query_side 'network' with query_layers, as a3_one_layer_query)")
    if model.encoder.hidden_size != width:
        raise ConfigError(f"--a3-run-dir {run_dir}: width {model.encoder.hidden_size} differs from the main model's {width}")
    model.encoder.lm.to(device)
    model.encoder.eval()
    return model


def run(args, argv) -> dict:
    import faiss
    import torch

    from experiments.benchmarks.common import report_header
    from lr_core.data.beir import load_beir, resolve_dataset_dir
    from lr_core.retrieval.tasks import task_for_path
    from lr_core.retrieval.evaluate import EvalSettings, encoded_corpus_for, load_model_for_eval, vocab_cache_for
    from lr_core.retrieval.dense_index import DenseIndex
    from lr_core.retrieval.sparse_index import SparseIndex

    if bool(args.run_dir) == bool(args.backbone):
        raise ConfigError("give a trained --run-dir, or --backbone NAME with --work-dir (not both)")
    if args.backbone and not args.work_dir:
        raise ConfigError("--backbone needs --work-dir (where its cache and corpus encoding are kept)")
    if args.batch_size < 1 or args.top_k < 1:
        raise ConfigError("--batch-size and --top-k must be >= 1")
    if args.threads:
        torch.set_num_threads(args.threads)
        faiss.omp_set_num_threads(args.threads)
    texts, query_source = load_queries(args.queries, args.query_file, args.query_datasets, args.query_data_dir)
    model = load_model_for_eval(args.run_dir, backbone=args.backbone, checkpoint=args.checkpoint,
                                work_dir=args.work_dir, max_doc_len=args.max_doc_len, precision=args.precision)
    encoder = model.encoder
    encoder.lm.to(args.device)
    encoder.eval()
    tok = encoder.tokenizer
    bench = task_for_path(resolve_dataset_dir(args.dataset, args.data_dir))
    instruction = bench.instruction

    start = time.perf_counter()
    cache = vocab_cache_for(model, instruction, args.cache_dtype)
    cache_s = time.perf_counter() - start
    settings = EvalSettings(batch_size=args.doc_batch_size, sparse_top_k=args.sparse_top_k)
    start = time.perf_counter()
    if args.random_docs:
        doc_ids, dense, sparse = random_corpus(args.random_docs, encoder.hidden_size, tok.vocab_size,
                                               args.random_terms, max_gb=args.max_gb)
        corpus_info = {"kind": "random", "distribution": "unit vectors (normalised Gaussian); sparse: "
                       f"{args.random_terms} uniform random terms per document, weights U(0.1, 3)"}
    else:
        data = load_beir(args.dataset, bench.eval_split, data_dir=args.data_dir)
        enc = encoded_corpus_for(model, data, settings, sparse=True)
        doc_ids, dense, sparse = enc.doc_ids, enc.dense.astype(np.float32), enc.sparse
        corpus_info = {"kind": "encoded", "dataset": data.name, "max_doc_len": tok.max_doc_len,
                       "sparse_top_k": args.sparse_top_k}
    corpus_s = time.perf_counter() - start
    dense_index = DenseIndex(dense, doc_ids, use_gpu=False)
    sparse_index = SparseIndex.from_csr(sparse, doc_ids)
    corpus_info.update(M=len(doc_ids), dim=int(dense.shape[1]), vocab_size=int(sparse.shape[1]),
                       sparse_terms_per_doc=round(sparse.nnz / max(1, sparse.shape[0]), 1),
                       prepare_seconds=round(corpus_s, 3))
    k, bs = args.top_k, args.batch_size

    # warm-up (not timed): lazy Faiss/OpenMP start, the sparse index's posting lists, torch kernels
    warm = texts[:min(len(texts), 8)]
    time_light_hybrid(tok, cache, warm, dense_index, sparse_index, k, bs)
    if not args.skip_full:
        time_full(encoder, warm, instruction, dense_index, k, bs)

    pipelines = {}
    if not args.skip_full:
        pipelines["full"] = time_full(encoder, texts, instruction, dense_index, k, bs)
    pipelines["light_dense"] = time_light_dense(tok, cache, texts, dense_index, k, bs)
    pipelines["light_sparse"] = time_light_sparse(tok, texts, sparse_index, k, bs)
    pipelines["light_hybrid"] = time_light_hybrid(tok, cache, texts, dense_index, sparse_index, k, bs)
    a3 = None
    if args.a3_run_dir:
        a3 = a3_model(args.a3_run_dir, args.device, encoder.hidden_size)
        layers = a3.module.query_layers  # the variant declares its serve-time query path
        time_full(a3.encoder, warm, instruction, dense_index, k, bs, num_layers=layers)
        pipelines["a3"] = time_full(a3.encoder, texts, instruction, dense_index, k, bs, num_layers=layers)

    report = report_header("speed", argv)
    report["machine"].update(torch_threads=torch.get_num_threads(), faiss_threads=faiss.omp_get_max_threads(),
                             device=str(encoder.device))
    report.update({
        "libraries": library_versions(),
        "model": {"variant": model.variant, "backbone": model.backbone, "checkpoint": model.checkpoint,
                  "checkpoint_hash": model.checkpoint_hash, "hidden_size": encoder.hidden_size,
                  "parameters": sum(p.numel() for p in encoder.lm.parameters())},
        "N": len(texts), "M": len(doc_ids), "batch_size": bs, "top_k": k, "queries": query_source,
        "corpus": corpus_info, "instruction": instruction,
        "cache": {"dtype": args.cache_dtype, "megabytes": round(cache.vectors.nbytes / 2**20, 2),
                  "load_or_build_seconds": round(cache_s, 3),
                  "build_seconds_when_built": cache.metadata.build_seconds, "built": cache.metadata.created},
        "faiss": {"index": "IndexFlatIP", "gpu": False},
        "pipelines": pipelines,
    })
    if a3 is not None:
        report["a3_model"] = {"variant": a3.variant, "checkpoint": a3.checkpoint, "checkpoint_hash": a3.checkpoint_hash,
                              "query_layers": a3.module.query_layers}
    if "full" in pipelines:
        full, light, hybrid = pipelines["full"], pipelines["light_dense"], pipelines["light_hybrid"]
        report["encode_speedup"] = round(full["encode_s"] / light["encode_s"], 2) if light["encode_s"] > 0 else None
        report["qps_speedup"] = round(hybrid["qps"] / full["qps"], 2) if full["qps"] else None
    else:
        report["encode_speedup"] = report["qps_speedup"] = None
    if args.fp16_check:
        report["fp16_cache_check"] = fp16_check(model, args.dataset, args.data_dir, args.out / "fp16_check",
                                                {"batch_size": args.doc_batch_size, "sparse_top_k": args.sparse_top_k})
    return report


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lr bench speed", description=__doc__.splitlines()[0])
    add_model_args(p, work_dir="cache/corpus directory")
    p.add_argument("--dataset", default="scifact", help="corpus to search and whose instruction to use")
    p.add_argument("--data-dir", help="where --dataset lives (default: $LR_DATA_DIR)")
    p.add_argument("--queries", type=int, default=2048, help="N, the number of queries timed (default 2048)")
    p.add_argument("--query-datasets", type=lambda s: [x for x in s.split(",") if x], default=list(DEFAULT_QUERY_SETS),
                   help="comma-separated data sets whose test queries are cycled to N (default scifact,cranfield)")
    p.add_argument("--query-data-dir", help="where the query data sets live (default: $LR_DATA_DIR)")
    p.add_argument("--query-file", help="queries from a file instead (one per line, or JSONL with 'text')")
    p.add_argument("--random-docs", type=int, default=0, help="M random documents instead of the encoded corpus")
    p.add_argument("--random-terms", type=int, default=128, help="terms per random sparse document")
    p.add_argument("--max-gb", type=float, default=16.0, help="memory cap for --random-docs")
    p.add_argument("--batch-size", type=int, default=256, help="queries per batch, every pipeline (default 256)")
    p.add_argument("--top-k", type=int, default=100, help="documents retrieved per query (and fused, hybrid)")
    p.add_argument("--doc-batch-size", type=int, default=16, help="corpus encoding batch size")
    p.add_argument("--max-doc-len", type=int, default=None)
    p.add_argument("--sparse-top-k", type=int, default=None, help="keep each document's k largest term weights")
    p.add_argument("--cache-dtype", choices=("float32", "float16"), default="float32")
    p.add_argument("--precision", choices=("auto", "bfloat16", "float32"), default="auto",
                   help="autocast of the cache and corpus encoding (as the evaluation that made them); query timings are float32")
    p.add_argument("--threads", type=int, default=None, help="torch and Faiss threads (default: library defaults)")
    p.add_argument("--device", default="cpu", help="device of the full LLM (cpu or cuda)")
    p.add_argument("--a3-run-dir", help="also time a trained A3 run's one-layer query encoder (paper Table 3)")
    p.add_argument("--skip-full", action="store_true", help="time only the light pipelines")
    p.add_argument("--fp16-check", action="store_true", help="also nDCG@10, float16 vs float32 cache, on --dataset")
    p.add_argument("--out", type=Path, default=Path("reports/benchmarks/speed"), help="directory for speed.json")
    return p


def main(argv: list[str] | None = None) -> int:
    """``lr bench speed``: writes OUT/speed.json; 2 on a user error."""
    from lr_core.io import atomic_write_json

    args = _parser().parse_args(argv)
    report = run_or_user_error("lr bench speed", run, args, argv)
    if report is None:
        return 2
    path = atomic_write_json(args.out / "speed.json", report)
    print(f"N={report['N']} queries, M={report['M']} documents ({report['corpus']['kind']}), batch {report['batch_size']}")
    for name, p in report["pipelines"].items():
        print(f"  {name:<13} tokenize {p['tokenize_s']:8.3f} s  encode {p['encode_s']:8.3f} s  "
              f"search {p['search_s']:8.3f} s  total {p['total_s']:8.3f} s  {p['qps']:>10} QPS")
    print(f"encode speedup {report['encode_speedup']}x, QPS speedup (hybrid vs full) {report['qps_speedup']}x -> {path}")
    if "fp16_cache_check" in report:
        print(f"fp16 cache check: {report['fp16_cache_check']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
