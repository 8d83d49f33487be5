"""Evaluation end to end: cache, corpus encoding, search, fusion, metrics, results ledger.

One model (a trained run, or an untrained backbone) on one or more BEIR-format data sets:

* ``dense``: light queries from the vocabulary cache (lookup + mean), Faiss inner product;
* ``sparse``: query token counts against the documents' sparse vectors (exact, in process);
* ``hybrid``: min-max fusion of the two (0.7 dense + 0.3 sparse) or reciprocal rank fusion;
* ``symmetric``: queries through the full LLM (``<bos> prompt query <eos>``), same documents;
* ``light_both`` (A1): documents, like queries, as the mean of cached token vectors;
* ``symmetric_sparse``: SPLADE-style query sparse vectors from the full LLM, same documents.

Each representation is one small function in :mod:`lr_core.retrieval.representations`; what
"dense" query vectors are is the variant's business (``build_query_cache``, or ``query_side =
"network"`` with ``serve_dense_queries``: A2's embedding cache, A3's one-layer encoder).

Every (dataset, representation) gets ``OUT/<dataset>/<representation>/metrics.json`` (the
results ledger: see :func:`metrics_record`; ``seed`` is the run's ``trainer.seed``, null for an
untrained backbone and BM25), ``run.trec`` and ``per_query.json.gz`` (per-query nDCG@10 and
recall, for paired significance tests).

On a GPU (``device``) the backbone is built there: flash-attention 2 for documents and full
queries when installed, SDPA for the light-query block mask (:mod:`lr_core.encoder` says why).
Under several ranks (torchrun, ``srun``) :func:`encode_corpus_shards_on_ranks` shares the corpus
shards out among them first; rank 0 then evaluates.

>>> model = load_model_for_eval("runs/lightretriever_scifact")           # doctest: +SKIP
>>> records = evaluate(model, "scifact", "runs/lightretriever_scifact/eval")   # doctest: +SKIP
"""
from __future__ import annotations

import datetime as _dt
import json
import logging
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Sequence

from lr_core.config import last_checkpoint
from lr_core.data.beir import BeirDataset, load_beir, resolve_dataset_dir
from lr_core.retrieval.tasks import task_for_path
from lr_core.io import atomic_write_text, git_commit

log = logging.getLogger(__name__)

REPRESENTATIONS = ("dense", "sparse", "hybrid", "symmetric", "light_both", "symmetric_sparse")  # REPRESENTERS' keys
# Representation -> the name tables, figures and W&B summaries print (bm25 is BM25's only one).
REPRESENTATION_NAMES = {"dense": "Dense", "sparse": "Sparse", "hybrid": "Hybrid", "symmetric": "Full-LLM query",
                        "light_both": "Both-side light", "symmetric_sparse": "Full-LLM sparse", "bm25": "BM25"}
LEDGER_METRICS = ("ndcg@10", "recall@20", "recall@50", "recall@100", "mrr@10", "ndcg@100")


@dataclass
class EvalSettings:
    split: str | None = None  # None: the benchmark's evaluation split (test; dev for MS MARCO and CMTEB)
    representations: tuple[str, ...] | None = None  # None: what the variant supports
    top_k: int = 1000
    fusion: str = "linear"  # or "rrf"
    w_dense: float = 0.7
    w_sparse: float = 0.3
    rrf_k: int = 60
    batch_size: int = 16
    query_batch_size: int = 64
    num_shards: int = 1
    dense_dtype: str = "float32"  # corpus vectors on disk
    cache_dtype: str = "float32"
    sparse_query_mode: str = "counts"
    sparse_top_k: int | None = None
    sparse_backend: str = "exact"  # or "lucene": impact index, weights quantised as floor(100 w)
    mrl_dim: int | None = None
    instruction: str | None = None  # None: the benchmark's
    cache_batch_size: int | None = None  # vocabulary ids per forward pass building the cache; None: the model's
    faiss_gpu: str = "replicate"  # on Faiss GPUs: replicate (a full copy per GPU) or shard (split over them)
    faiss_fp16: bool = False  # Faiss GPU index stores vectors as float16 (half the memory)


@dataclass
class EvalModel:
    """What evaluation needs to know about a model."""

    encoder: object  # RetrievalEncoder
    variant: str
    backbone: str
    work_dir: Path  # where caches and corpus encodings are kept
    checkpoint: str | None = None
    checkpoint_hash: str = "untrained"
    config_hash: str | None = None
    representations: tuple[str, ...] = ("dense", "sparse", "hybrid", "symmetric")
    extra: dict = field(default_factory=dict)
    module: object = None  # the trained LightningModule (serving hooks); None for an untrained backbone
    seed: int | None = None  # the run's trainer.seed; None for an untrained backbone or BM25
    precision: str = "auto"  # inference autocast (lr_core.devices.PRECISIONS); bfloat16 keeps its own caches and encodings


def load_model_for_eval(run_dir: str | Path | None = None, backbone: str | None = None,
                        checkpoint: str | Path | None = None, work_dir: str | Path | None = None,
                        max_doc_len: int | None = None, device: str = "cpu", precision: str = "auto") -> EvalModel:
    """A trained run directory, or (``run_dir=None``) the untrained ``backbone``; LoRA merged for speed.

    ``device``: ``cpu`` (default), ``auto`` or ``cuda[:N]`` (see :mod:`lr_core.devices`). The backbone
    is built for it: ``model.attn: auto`` gives flash-attention 2 on CUDA when installed (documents
    and full queries; light queries keep SDPA, see :mod:`lr_core.encoder`), and bf16 weights there
    (``model.dtype: auto``). On CUDA, :func:`evaluate` runs the encoder under bf16 autocast, and
    corpus encoding and the vocabulary cache run there too (they follow the encoder's device).
    """
    from lr_core.devices import PRECISIONS, resolve_device

    if precision not in PRECISIONS:  # before the backbone is built
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    dev = resolve_device(device)
    model = replace(_load_model_for_eval(run_dir, backbone, checkpoint, work_dir, max_doc_len, dev), precision=precision)
    _place(model, dev)
    return model


def _place(model: EvalModel, dev) -> None:
    """Everything of ``model`` on ``dev`` (built there already; this catches what a variant keeps aside)."""
    if dev.type != "cpu":
        (model.module if model.module is not None else model.encoder).to(dev)


def _load_model_for_eval(run_dir, backbone, checkpoint, work_dir, max_doc_len, dev) -> EvalModel:
    from lr_core.backbone import load_backbone, merged_for_inference
    from lr_core.encoder import RetrievalEncoder

    if run_dir is not None:
        from lr_core.train import load_trained

        module, cfg, ckpt_hash = load_trained(run_dir, checkpoint, device=None if dev.type == "cpu" else dev)
        encoder = module.encoder
        encoder.lm = merged_for_inference(encoder.lm)
        if max_doc_len:
            encoder.tokenizer.max_doc_len = max_doc_len
        from lr_core.adapters import is_adapter_dir

        if checkpoint is None and is_adapter_dir(run_dir):  # a published adapter: keep caches out of it
            ckpt = str(run_dir)
            work_dir = work_dir or Path("runs") / "adapter-work" / f"{Path(run_dir).name}-{ckpt_hash[:12]}"
        else:
            ckpt = str(checkpoint or last_checkpoint(run_dir))
        module.eval()
        return EvalModel(encoder, cfg.variant, cfg.model.backbone, Path(work_dir or run_dir), ckpt, ckpt_hash,
                         cfg.hash(), tuple(module.eval_representations), module=module, seed=cfg.trainer.seed)
    if backbone is None:
        raise ValueError("give a run directory or a backbone")
    lm, tok = load_backbone(backbone, device=dev, max_doc_len=max_doc_len or 512)
    if work_dir is None:
        raise ValueError("an untrained backbone needs a work_dir for its cache and corpus encodings")
    return EvalModel(RetrievalEncoder(lm.eval(), tok), "untrained", backbone, Path(work_dir))


def vocab_cache_path(work_dir: Path, variant: str, instruction: str, centre: str = "none", precision_tag: str = "") -> Path:
    """Where a model's float32 vocabulary cache for ``instruction`` is kept (``--cache-dtype`` converts on load);
    a cache centred at build time (``model.cache_centre``) or built under bf16 autocast is another file."""
    import hashlib

    tag = hashlib.sha256(instruction.encode()).hexdigest()[:10]
    centred = "" if centre == "none" else f"-{centre}"
    return Path(work_dir) / "cache" / f"vocab-{variant}-{tag}{centred}{precision_tag}-float32.npz"


def _precision_tag(model: "EvalModel") -> str:
    """Caches and corpus encodings made under an explicit bf16 autocast never mix with float32 ones."""
    return "-bf16" if model.precision == "bfloat16" else ""


def vocab_cache_for(model: EvalModel, instruction: str, dtype: str = "float32", batch_size: int | None = None):
    """The model's cache for ``instruction``: loaded if built before (and matching), else built under the
    model's inference autocast and saved (on the encoder's device; ``batch_size`` vocabulary ids per
    forward pass, None: the model's default)."""
    from lr_core.cache import VocabCache
    from lr_core.cache_build import build_vocab_cache
    from lr_core.devices import inference_autocast

    kw = {"batch_size": batch_size} if batch_size else {}
    centre = model.module.cfg.model.cache_centre if model.module is not None else "none"
    path = vocab_cache_path(model.work_dir, model.variant, instruction, centre, _precision_tag(model))
    expect = {"model_id": model.backbone, "checkpoint_hash": model.checkpoint_hash,
              "tokenizer_hash": model.encoder.tokenizer.fingerprint(), "instruction": instruction}
    if not path.exists():
        with inference_autocast(model.encoder.device, model.precision):
            if model.module is not None:
                cache = model.module.build_query_cache(instruction, model.backbone, model.checkpoint_hash, **kw)
            else:
                cache = build_vocab_cache(model.encoder, instruction, model.backbone, model.checkpoint_hash, **kw)
        cache.save(path)
    return VocabCache.load(path, expect=expect, dtype=dtype)


def encoded_corpus_dir(model: EvalModel, dataset: BeirDataset, settings: EvalSettings, sparse: bool = True) -> Path:
    """Where ``model``'s encoding of ``dataset`` is kept. Dense-only encodings get their own directory
    (``-dense``), so a later dense + sparse evaluation of the same model does not clash with them;
    a dense-only evaluation reuses a dense + sparse encoding when one is there."""
    from lr_core.retrieval.corpus_encoding import MANIFEST

    top = f"-top{settings.sparse_top_k}" if settings.sparse_top_k else ""
    both = model.work_dir / "corpus" / f"{dataset.name}-len{model.encoder.tokenizer.max_doc_len}{top}{_precision_tag(model)}"
    if sparse or (both / MANIFEST).is_file():
        return both
    return both.with_name(both.name + "-dense")


def encode_corpus_for(model: EvalModel, dataset: BeirDataset, settings: EvalSettings, sparse: bool,
                      shards: Sequence[int] | None = None) -> Path:
    """Encode (or finish encoding) the corpus shards of ``dataset`` for ``model``. A sparse top-k
    is not encoded separately: :func:`encoded_corpus_for` cuts the full encoding."""
    from lr_core.devices import inference_autocast
    from lr_core.retrieval.corpus_encoding import MANIFEST, encode_corpus

    settings = replace(settings, sparse_top_k=None)
    out = encoded_corpus_dir(model, dataset, settings, sparse)
    if not sparse and (out / MANIFEST).is_file():  # reuse what is there (dense + sparse, or dense-only)
        sparse = bool(json.loads((out / MANIFEST).read_text()).get("sparse", False))
    fingerprint = {"model_id": model.backbone, "checkpoint_hash": model.checkpoint_hash, "variant": model.variant}
    with inference_autocast(model.encoder.device, model.precision):
        encode_corpus(model.encoder, dataset.corpus, out, fingerprint, num_shards=settings.num_shards, shards=shards,
                      batch_size=settings.batch_size, sparse=sparse, dense_dtype=settings.dense_dtype)
    return out


def encoded_corpus_for(model: EvalModel, dataset: BeirDataset, settings: EvalSettings, sparse: bool):
    """The merged corpus encoding; with ``settings.sparse_top_k`` each document keeps its k largest terms."""
    from lr_core.retrieval.corpus_encoding import csr_top_k, merge_shards

    enc = merge_shards(encode_corpus_for(model, dataset, settings, sparse))
    if settings.sparse_top_k and enc.sparse is not None:
        enc = replace(enc, sparse=csr_top_k(enc.sparse, settings.sparse_top_k))
    return enc


def metrics_record(dataset: str, split: str, model: EvalModel, representation: str, metrics: dict,
                   timings: dict, extra: dict | None = None) -> dict:
    """One ledger entry (the ``metrics.json`` schema): identity, metrics as fractions 0-1, provenance."""
    rec = {"dataset": dataset, "split": split, "variant": model.variant, "backbone": model.backbone,
           "representation": representation, "seed": model.seed}
    rec.update({k: float(metrics[k]) for k in LEDGER_METRICS if k in metrics})
    rec.update({"num_queries": int(metrics.get("num_queries", 0)), "timings": timings,
                "config_hash": model.config_hash, "checkpoint": model.checkpoint,
                "checkpoint_hash": model.checkpoint_hash, "precision": model.precision, "git_commit": git_commit(),
                "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")})
    rec.update(extra or {})
    return rec


def write_result(out_dir: Path, record: dict, run: dict[str, dict[str, float]],
                 per_query: dict[str, dict[str, float]] | None = None) -> Path:
    """``metrics.json`` + ``run.trec`` (TREC format: qid Q0 docid rank score tag) + the per-query
    scores (``per_query.json.gz``, :func:`lr_core.retrieval.metrics.write_per_query`), all atomic."""
    from lr_core.retrieval.metrics import PER_QUERY_FILE, write_per_query

    out_dir.mkdir(parents=True, exist_ok=True)
    if per_query is not None:
        write_per_query(out_dir / PER_QUERY_FILE, per_query)
    tag = f"{record['variant']}-{record['representation']}"
    lines = []
    for qid, docs in run.items():
        ranked = sorted(docs.items(), key=lambda kv: (-kv[1], kv[0]))
        lines += [f"{qid} Q0 {d} {r} {s:.6f} {tag}" for r, (d, s) in enumerate(ranked, 1)]
    atomic_write_text(out_dir / "run.trec", "\n".join(lines) + "\n")
    atomic_write_text(out_dir / "metrics.json", json.dumps(record, indent=2) + "\n")
    return out_dir / "metrics.json"


def evaluate(model: EvalModel, dataset_name: str, out_dir: str | Path, settings: EvalSettings | None = None,
             data_dir: str | Path | None = None) -> list[dict]:
    """Evaluate ``model`` on one data set; writes and returns one ledger record per representation.

    Everything runs under the model's inference autocast (``model.precision``: bf16 on CUDA by default)."""
    from lr_core.devices import inference_autocast

    with inference_autocast(model.encoder.device, model.precision):
        return _evaluate(model, dataset_name, out_dir, settings, data_dir)


def _representations(model: EvalModel, settings: EvalSettings) -> tuple[str, ...]:
    reps = tuple(settings.representations or model.representations)
    unknown = set(reps) - set(REPRESENTATIONS)
    if unknown:
        raise ValueError(f"unknown representation(s) {sorted(unknown)}; known: {', '.join(REPRESENTATIONS)}")
    return reps


def _needs_sparse(reps: Sequence[str]) -> bool:
    """Whether the corpus encoding needs the documents' sparse vectors too."""
    from lr_core.retrieval.representations import SPARSE_CORPUS

    return bool(SPARSE_CORPUS & set(reps))


def _eval_data(dataset_name: str, settings: EvalSettings, data_dir):
    """(benchmark, split, data set) of one evaluation."""
    bench = task_for_path(resolve_dataset_dir(dataset_name, data_dir), instruction=settings.instruction,
                          split=settings.split)
    split = settings.split or bench.eval_split
    return bench, split, load_beir(dataset_name, split, data_dir=data_dir)


def encode_corpus_shards_on_ranks(model: EvalModel, dataset_names: Sequence[str], settings: EvalSettings | None = None,
                                  data_dir: str | Path | None = None) -> int:
    """Under several ranks (torchrun, ``srun``): each rank encodes its share of every data set's
    corpus shards (:func:`lr_core.retrieval.corpus_encoding.rank_shards`), then all wait for each other;
    returns this process's rank. Rank 0 then evaluates as usual: finding every shard encoded, it
    only merges them. With one rank this does nothing (and returns 0).

    Every rank calls it with the same settings; ``settings.num_shards`` should be at least the
    number of ranks, or some ranks idle. A rank that fails while encoding makes every rank raise
    (no rank waits for ever), and the shards already written stay: a rerun encodes only the
    missing ones.

    >>> rank = encode_corpus_shards_on_ranks(model, ["scifact"], EvalSettings(num_shards=8))   # doctest: +SKIP
    >>> if rank == 0: evaluate(model, "scifact", out, EvalSettings(num_shards=8))               # doctest: +SKIP
    """
    from lr_core.retrieval.corpus_encoding import rank_shards
    from lr_core.distributed import any_rank, ensure_process_group, rank_and_world_size

    settings = settings or EvalSettings()
    if not ensure_process_group():
        return 0
    rank, world = rank_and_world_size()
    shards = rank_shards(settings.num_shards, rank, world)
    failed = None
    try:
        need_sparse = _needs_sparse(_representations(model, settings))
        for name in dataset_names:
            if not shards:  # more ranks than shards: this one only waits
                break
            _, _, data = _eval_data(name, settings, data_dir)
            log.info("rank %d of %d encodes corpus shards %s of %d (%s)", rank, world, shards, settings.num_shards, name)
            encode_corpus_for(model, data, settings, sparse=need_sparse, shards=shards)  # under the model's autocast
    except Exception as exc:  # raised below, after the others know (they would wait for this rank otherwise)
        failed = exc
    if any_rank(failed is not None):  # an all-reduce: also the barrier before rank 0 merges
        if failed is not None:
            raise failed
        raise RuntimeError(f"rank {rank}: another rank failed to encode its corpus shards (see its log)")
    return rank


def _evaluate(model: EvalModel, dataset_name: str, out_dir: str | Path, settings: EvalSettings | None = None,
              data_dir: str | Path | None = None) -> list[dict]:
    from lr_core.retrieval.metrics import mean_metrics, per_query_metrics
    from lr_core.retrieval.corpus_encoding import sparse_doc_stats
    from lr_core.retrieval.representations import SPARSE_CORPUS, Retrieval, timed

    settings = settings or EvalSettings()
    reps = _representations(model, settings)
    bench, split, data = _eval_data(dataset_name, settings, data_dir)
    instruction = bench.instruction
    timings: dict[str, float] = {}
    with timed(timings, "corpus_encode_s"):
        corpus = encoded_corpus_for(model, data, settings, sparse=_needs_sparse(reps))
    retrieval = Retrieval(model, data, instruction, settings, corpus,
                          load_cache=lambda: vocab_cache_for(model, instruction, settings.cache_dtype,
                                                             settings.cache_batch_size),
                          lucene_dir=model.work_dir / "lucene" / encoded_corpus_dir(model, data, settings).name)
    runs = {rep: retrieval.run(rep) for rep in reps}  # lr_core.retrieval.representations: one function each
    doc_stats = sparse_doc_stats(corpus.sparse) if corpus.sparse is not None else None
    records = []
    for rep in reps:
        pq = per_query_metrics(data.qrels, runs[rep], ignore_identical_ids=bench.ignore_identical_ids)
        metrics = mean_metrics(pq)
        extra = {"instruction": instruction, "ignore_identical_ids": bench.ignore_identical_ids,
                 "settings": asdict(settings)}
        if doc_stats is not None and rep in SPARSE_CORPUS:
            extra["sparse_docs"] = doc_stats  # the searched documents, after any top-k cut
        rec = metrics_record(data.name, split, model, rep, metrics,
                             {**timings, **retrieval.timings.get(rep, {})}, extra)
        write_result(Path(out_dir) / data.name / rep, rec, runs[rep], per_query=pq)
        records.append(rec)
    return records


def evaluate_bm25(dataset_name: str, out_dir: Path, split: str | None = None, data_dir: str | Path | None = None,
                  variant: str = "multifield", index_root: Path | None = None, top_k: int = 1000) -> dict:
    """BM25 (Lucene, Anserini defaults) on one data set; writes ``OUT/<dataset>/bm25/metrics.json``."""
    from lr_core.retrieval.lucene_bm25 import bm25_search
    from lr_core.retrieval.metrics import mean_metrics, per_query_metrics
    from lr_core.retrieval.representations import timed

    bench = task_for_path(resolve_dataset_dir(dataset_name, data_dir), split=split,
                          instruction="(not used by BM25)")
    split = split or bench.eval_split
    data = load_beir(dataset_name, split, data_dir=data_dir)
    index_dir = (index_root or out_dir / "indexes") / f"{data.name}-bm25-{variant}"
    timings: dict[str, float] = {}
    with timed(timings, "search_s"):
        run = bm25_search(data, index_dir, k=top_k, variant=variant)
    pq = per_query_metrics(data.qrels, run, ignore_identical_ids=bench.ignore_identical_ids)
    metrics = mean_metrics(pq)
    model = EvalModel(encoder=None, variant="bm25", backbone="bm25", work_dir=out_dir, checkpoint=None,
                      checkpoint_hash="-", representations=("bm25",))
    rec = metrics_record(data.name, split, model, "bm25", metrics, timings,
                         {"bm25": {"k1": 0.9, "b": 0.4, "index": variant, "lucene": "Anserini 0.25 (pyserini 0.25.0)"}})
    write_result(out_dir / data.name / "bm25", rec, run, per_query=pq)
    return rec
