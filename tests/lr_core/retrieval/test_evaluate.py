"""Evaluation end to end on the tiny model: ledger files, representations, BM25, Chinese."""
from __future__ import annotations

import json
import numpy as np

import pytest

from lr_core.data.beir import load_beir
from lr_core.cli import main
from lr_core.retrieval.evaluate import LEDGER_METRICS, EvalSettings, evaluate, load_model_for_eval
from lr_core.retrieval.metrics import PER_QUERY_FILE, read_per_query

from tests.helpers import REPO, fast_config, write_subset

LEDGER_FIELDS = {"dataset", "split", "variant", "backbone", "representation", "ndcg@10", "recall@20", "recall@50",
                 "recall@100", "timings", "config_hash", "checkpoint", "git_commit", "date"}


@pytest.fixture(scope="module")
def trained_tiny(tmp_path_factory):
    from lr_core.train import fit

    tmp = tmp_path_factory.mktemp("tinyrun")
    return fit(fast_config(REPO / "experiments" / "tiny.yaml", tmp))


def test_evaluate_writes_one_ledger_entry_per_representation(trained_tiny, shared_data, tmp_path):
    data_root = tmp_path / "data"
    write_subset(shared_data, "scifact", data_root)
    out = tmp_path / "eval"
    code = main(["evaluate", str(trained_tiny), "--dataset", "scifact", "--data-dir", str(data_root), "--out", str(out),
                 "--max-doc-len", "48"])
    assert code == 0
    for rep in ("dense", "sparse", "hybrid", "symmetric"):
        rec = json.loads((out / "scifact" / rep / "metrics.json").read_text())
        assert LEDGER_FIELDS <= set(rec) and rec["representation"] == rep and rec["variant"] == "lightretriever"
        assert rec["split"] == "test" and rec["num_queries"] == 15 and rec["backbone"] == "tiny-llama"
        assert all(0.0 <= rec[m] <= 1.0 for m in LEDGER_METRICS)
        lines = (out / "scifact" / rep / "run.trec").read_text().splitlines()
        assert lines and len(lines[0].split()) == 6
        assert rec["seed"] == 42  # the run's trainer.seed
        # how sparse the searched documents are, beside every representation that searches them
        if rep in ("sparse", "hybrid"):
            docs = rec["sparse_docs"]
            assert 0 < docs["terms_mean"] <= docs["terms_max"] and docs["flops"] > 0
        else:
            assert "sparse_docs" not in rec
        # per-query scores beside it, whose means are the ledger's numbers
        pq = read_per_query(out / "scifact" / rep / PER_QUERY_FILE)
        assert len(pq["ndcg@10"]) == 15 and set(pq) == {"ndcg@10", "recall@20", "recall@100"}
        assert sum(pq["ndcg@10"].values()) / 15 == pytest.approx(rec["ndcg@10"], abs=1e-6)
    # the cache and the encoded corpus are kept in the run directory and reused
    assert list((trained_tiny / "cache").glob("vocab-*.npz"))
    assert list((trained_tiny / "corpus").glob("scifact-len48/shard-*.npz"))


def test_hybrid_uses_both_lists(trained_tiny, shared_data, tmp_path):
    data_root = tmp_path / "data"
    write_subset(shared_data, "scifact", data_root, n_queries=5, n_extra_docs=30)
    model = load_model_for_eval(trained_tiny, max_doc_len=32)
    recs = {r["representation"]: r for r in evaluate(model, "scifact", tmp_path / "o", EvalSettings(top_k=20),
                                                      data_dir=data_root)}
    runs = {rep: {} for rep in ("dense", "sparse", "hybrid")}
    for rep in runs:
        for line in (tmp_path / "o" / "scifact" / rep / "run.trec").read_text().splitlines():
            q, _, d, _, s, _ = line.split()
            runs[rep].setdefault(q, set()).add(d)
    for q in runs["hybrid"]:
        assert runs["hybrid"][q] <= runs["dense"].get(q, set()) | runs["sparse"].get(q, set())
    assert recs["hybrid"]["settings"]["w_dense"] == 0.7


def test_dense_only_and_dense_sparse_encodings_do_not_clash(trained_tiny, shared_data, tmp_path):
    """A dense-only evaluation, then one that needs sparse vectors, then dense-only again: the second
    encodes dense + sparse in its own directory (no settings clash), the third reuses it."""
    data_root = tmp_path / "data"
    write_subset(shared_data, "scifact", data_root, n_queries=3, n_extra_docs=10)
    model = load_model_for_eval(trained_tiny, max_doc_len=24, work_dir=tmp_path / "work")
    corpus = tmp_path / "work" / "corpus"
    first = evaluate(model, "scifact", tmp_path / "a", EvalSettings(representations=("symmetric",)), data_dir=data_root)
    assert sorted(p.name for p in corpus.iterdir()) == ["scifact-len24-dense"]
    both = evaluate(model, "scifact", tmp_path / "b", EvalSettings(representations=("symmetric", "sparse")),
                    data_dir=data_root)
    assert sorted(p.name for p in corpus.iterdir()) == ["scifact-len24", "scifact-len24-dense"]
    assert both[0]["ndcg@10"] == pytest.approx(first[0]["ndcg@10"], abs=1e-6)  # the same dense vectors
    shard = next((corpus / "scifact-len24").glob("shard-*.npz"))
    before = shard.stat().st_mtime_ns
    again = evaluate(model, "scifact", tmp_path / "c", EvalSettings(representations=("symmetric",)), data_dir=data_root)
    assert again[0]["timings"]["corpus_encode_s"] < both[0]["timings"]["corpus_encode_s"]
    assert shard.stat().st_mtime_ns == before and again[0]["ndcg@10"] == pytest.approx(first[0]["ndcg@10"], abs=1e-6)
    # a dense-only encoding kept where older versions put it (no "-dense" suffix) is reused too
    (corpus / "scifact-len24").rename(tmp_path / "both")
    (corpus / "scifact-len24-dense").rename(corpus / "scifact-len24")
    old = evaluate(model, "scifact", tmp_path / "d", EvalSettings(representations=("symmetric",)), data_dir=data_root)
    assert old[0]["ndcg@10"] == pytest.approx(first[0]["ndcg@10"], abs=1e-6)
    assert sorted(p.name for p in corpus.iterdir()) == ["scifact-len24"]


def test_bf16_evaluation_keeps_its_own_cache_and_encodings_and_stays_close(trained_tiny, shared_data, tmp_path):
    """``precision="bfloat16"`` (CPU autocast): the corpus encoding and the vocabulary cache go to their
    own files, the record says so, and the vectors stay close to the float32 ones."""
    from lr_core.retrieval.corpus_encoding import merge_shards

    data_root = tmp_path / "data"
    write_subset(shared_data, "scifact", data_root, n_queries=3, n_extra_docs=10)
    work = tmp_path / "work"
    reps = EvalSettings(representations=("dense", "sparse"))
    fp32 = evaluate(load_model_for_eval(trained_tiny, max_doc_len=24, work_dir=work), "scifact", tmp_path / "a", reps,
                    data_dir=data_root)
    bf16 = evaluate(load_model_for_eval(trained_tiny, max_doc_len=24, work_dir=work, precision="bfloat16"), "scifact",
                    tmp_path / "b", reps, data_dir=data_root)
    assert sorted(p.name for p in (work / "corpus").iterdir()) == ["scifact-len24", "scifact-len24-bf16"]
    caches = sorted(p.name for p in (work / "cache").iterdir())
    assert len(caches) == 2 and sum(name.endswith("-bf16-float32.npz") for name in caches) == 1
    assert {r["precision"] for r in fp32} == {"auto"} and {r["precision"] for r in bf16} == {"bfloat16"}
    a, b = merge_shards(work / "corpus" / "scifact-len24"), merge_shards(work / "corpus" / "scifact-len24-bf16")
    cos = (a.dense * b.dense).sum(1) / np.linalg.norm(a.dense, axis=1) / np.linalg.norm(b.dense, axis=1)
    assert cos.min() > 0.99 and not np.array_equal(a.dense, b.dense)


def test_untrained_backbone_and_chinese_path(shared_data, tmp_path):
    data_root = tmp_path / "data"
    write_subset(shared_data, "cmrc2018_zh", data_root, n_queries=10, n_extra_docs=40)
    model = load_model_for_eval(None, backbone="tiny-llama", work_dir=tmp_path / "work", max_doc_len=64)
    recs = evaluate(model, "cmrc2018_zh", tmp_path / "o", EvalSettings(representations=("dense", "sparse", "hybrid")),
                    data_dir=data_root)
    assert {r["representation"] for r in recs} == {"dense", "sparse", "hybrid"}
    assert all(r["variant"] == "untrained" and r["num_queries"] == 10 for r in recs)
    assert "Chinese" in recs[0]["instruction"]
    # Chinese text really went through the tokenizer: the sparse run found the relevant passages
    assert recs[1]["recall@100"] > 0.5


def test_bm25_command_on_scifact(shared_data, tmp_path):
    assert main(["bm25", "--dataset", "scifact", "--out", str(tmp_path)]) == 0
    rec = json.loads((tmp_path / "scifact" / "bm25" / "metrics.json").read_text())
    assert 0.655 <= rec["ndcg@10"] <= 0.675 and rec["num_queries"] == 300 and rec["representation"] == "bm25"
    assert rec["seed"] is None  # BM25 has no training seed
    pq = read_per_query(tmp_path / "scifact" / "bm25" / PER_QUERY_FILE)
    assert sum(pq["recall@100"].values()) / 300 == pytest.approx(rec["recall@100"], abs=1e-6)


def test_evaluate_needs_a_run_or_a_backbone(capsys):
    assert main(["evaluate", "--dataset", "scifact"]) == 2
    assert "RUN_DIR" in capsys.readouterr().err


def test_exact_sparse_search_and_lucene_agree_on_scifact(tiny_encoder, shared_data, tmp_path):
    """Real SciFact documents (the first 1,500 of the corpus: real term statistics at a tenth of the
    encoding cost) and all test queries, a (random, untrained) model's sparse vectors, top-64 terms:
    the Lucene impact index returns the exact search's top-10 with the exact (quantised) scores."""
    from lr_core.retrieval.corpus_encoding import encode_corpus, merge_shards
    from lr_core.retrieval.representations import lucene_sparse_run, quantized_doc_vectors
    from lr_core.retrieval.search import run_from_results
    from lr_core.retrieval.sparse_index import SparseIndex
    from lr_core.query_side import query_term_vector

    data = load_beir(shared_data / "scifact", "test")
    tok = tiny_encoder.tokenizer
    old = tok.max_doc_len
    tok.max_doc_len = 16
    try:
        docs = dict(list(data.corpus.items())[:1500])
        encode_corpus(tiny_encoder, docs, tmp_path / "enc", {"model_id": "tiny"}, batch_size=64,
                      dense=False, sparse_top_k=64, progress=False)
    finally:
        tok.max_doc_len = old
    corpus = merge_shards(tmp_path / "enc")
    assert corpus.sparse.getnnz(axis=1).max() == 64
    index = SparseIndex.from_csr(corpus.sparse, corpus.doc_ids)
    queries = {q: query_term_vector(ids) for q, ids in zip(data.queries, tok.sparse_query_ids(list(data.queries.values())))}
    lucene = lucene_sparse_run(index, queries, tmp_path / "impact", top_k=10)
    # exact search over the same quantised integer weights
    rows = list(quantized_doc_vectors(index))
    q_index = SparseIndex([w for _, w in rows], [d for d, _ in rows], vocab_size=corpus.sparse.shape[1])
    scores, hits = q_index.search(list(queries.values()), 10)
    exact = run_from_results(list(queries), scores, hits)
    assert len(exact) == len(lucene) == 300
    compared = 0
    for qid in exact:
        ex = sorted(exact[qid].values(), reverse=True)
        lu = sorted(lucene[qid].values(), reverse=True)
        assert lu == pytest.approx(ex), qid  # same top-10 scores
        tied = {s for s in ex if ex.count(s) > 1} | {ex[-1]}  # ids at tied scores may differ
        assert {d for d, s in exact[qid].items() if s not in tied} == {d for d, s in lucene[qid].items() if s not in tied}
        compared += 1
    assert compared == 300
    # and the float (unquantised) exact search ranks nearly the same documents first
    fs, fh = index.search(list(queries.values()), 10)
    float_run = run_from_results(list(queries), fs, fh)
    overlap = sum(len(set(float_run[q]) & set(exact[q])) for q in exact) / (10 * len(exact))
    assert overlap > 0.8


# --------------------------------------------------------------------------- on the device


def test_evaluate_device_cuda_is_refused_without_a_gpu(trained_tiny, shared_data, tmp_path):
    """CPU stays the default; `--device cuda` on a machine without CUDA is one clear error."""
    import torch

    from lr_core.errors import ConfigError

    if torch.cuda.is_available():
        assert load_model_for_eval(trained_tiny, device="cuda").encoder.device.type == "cuda"
    else:
        with pytest.raises(ConfigError, match="no CUDA device"):
            load_model_for_eval(trained_tiny, device="cuda")
    assert load_model_for_eval(trained_tiny).encoder.device.type == "cpu"


def test_evaluation_on_cuda_builds_the_backbone_for_it(trained_tiny, tmp_path, monkeypatch):
    """`load_model_for_eval(device="cuda")` builds the backbone for CUDA (so `model.attn: auto` picks
    flash-attention 2 when installed), for a trained run and for an untrained backbone alike. No GPU here:
    CUDA is announced, flash-attn reported installed, and the build itself done on the CPU."""
    import importlib.util

    import torch

    import lr_core.backbone
    import lr_core.devices
    import lr_core.retrieval.evaluate
    import lr_core.modules

    real_find_spec, real_load = importlib.util.find_spec, lr_core.backbone.load_backbone
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: object() if name == "flash_attn" else real_find_spec(name, *a))
    monkeypatch.setattr(lr_core.devices, "resolve_device", lambda name: torch.device("cuda"))
    built, placed = [], []

    def load_backbone(name, device="cpu", dtype="auto", attn="auto", **kw):
        built.append((torch.device(device).type, lr_core.backbone.pick_attention(device, attn),
                      lr_core.backbone.pick_dtype(device, dtype)))
        return real_load(name, device="cpu", dtype="float32", attn="sdpa", **kw)

    monkeypatch.setattr(lr_core.modules, "load_backbone", load_backbone)
    monkeypatch.setattr(lr_core.backbone, "load_backbone", load_backbone)
    monkeypatch.setattr(lr_core.retrieval.evaluate, "_place", lambda model, dev: placed.append(dev.type))
    load_model_for_eval(trained_tiny, device="cuda")
    load_model_for_eval(backbone="tiny-llama", work_dir=tmp_path, device="cuda")
    assert built == [("cuda", "flash_attention_2", torch.bfloat16)] * 2
    assert placed == ["cuda", "cuda"]


@pytest.mark.gpu
def test_evaluate_on_cuda_matches_the_cpu(trained_tiny, shared_data, tmp_path):
    """The trained tiny run evaluated on the GPU (bf16 autocast, corpus encoding, vocabulary cache and Faiss
    there) scores like the CPU evaluation."""
    import torch

    data_root = tmp_path / "data"
    write_subset(shared_data, "scifact", data_root)
    cpu_model = load_model_for_eval(trained_tiny, work_dir=tmp_path / "cpu")
    gpu_model = load_model_for_eval(trained_tiny, work_dir=tmp_path / "gpu", device="cuda")
    assert gpu_model.encoder.device.type == "cuda"
    cpu = {r["representation"]: r for r in evaluate(cpu_model, "scifact", tmp_path / "e-cpu", data_dir=data_root)}
    settings = EvalSettings(faiss_gpu="shard", faiss_fp16=True, cache_batch_size=1024, batch_size=64)
    gpu = {r["representation"]: r for r in evaluate(gpu_model, "scifact", tmp_path / "e-gpu", settings, data_root)}
    assert cpu.keys() == gpu.keys()
    for rep in cpu:
        assert abs(cpu[rep]["ndcg@10"] - gpu[rep]["ndcg@10"]) < 0.05, rep
    from lr_core.cache import VocabCache

    cached = sorted((tmp_path / "gpu" / "cache").glob("*.npz"))
    assert cached and torch.cuda.is_available()
    ref = sorted((tmp_path / "cpu" / "cache").glob("*.npz"))
    a, b = VocabCache.load(ref[0]).vectors, VocabCache.load(cached[0]).vectors
    cos = (a * b).sum(1) / ((a * a).sum(1) ** 0.5 * (b * b).sum(1) ** 0.5 + 1e-12)
    assert cos.min() > 0.98
