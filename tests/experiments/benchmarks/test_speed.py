"""`lr bench speed` on the untrained tiny Llama: a complete speed.json with small N."""
from __future__ import annotations

import json

import numpy as np
import pytest

from experiments.benchmarks import speed

from tests.helpers import write_subset

PIPELINES = ("full", "light_dense", "light_sparse", "light_hybrid")
TIMINGS = ("tokenize_s", "encode_s", "search_s", "total_s", "qps")


@pytest.fixture(scope="module")
def work(tmp_path_factory, shared_data):
    """A SciFact subset, and a work directory holding the tiny model's vocabulary cache.

    The cache is random (building the real one runs 49k token ids through the LLM, about a minute
    here, and is tested in test_cache.py); it sits where `vocab_cache_for` looks, with the
    metadata it checks, so the benchmark's own code path loads it.
    """
    from lr_core.backbone import load_tokenizer
    from lr_core.cache import CacheMetadata, VocabCache
    from lr_core.retrieval.evaluate import vocab_cache_path
    from lr_core.instructions import instruction_for

    tmp = tmp_path_factory.mktemp("speed")
    write_subset(shared_data, "scifact", tmp / "data", n_queries=10, n_extra_docs=30)
    tok = load_tokenizer("tiny-llama")
    instruction = instruction_for("scifact")
    hidden = 64  # lr_core.backbone.tiny_llama's width
    vectors = np.random.default_rng(0).standard_normal((tok.vocab_size, hidden)).astype(np.float32)
    meta = CacheMetadata("tiny-llama", "untrained", tok.fingerprint(), instruction, "float32", tok.vocab_size, hidden)
    VocabCache(vectors, meta).save(vocab_cache_path(tmp / "work", "untrained", instruction))
    return tmp


def check_report(report: dict, n: int) -> None:
    assert set(PIPELINES) == set(report["pipelines"])
    for name, p in report["pipelines"].items():
        assert all(isinstance(p[t], float) and p[t] >= 0 for t in TIMINGS), name
        assert p["total_s"] == pytest.approx(p["tokenize_s"] + p["encode_s"] + p["search_s"], abs=1e-5), name
        assert p["qps"] == pytest.approx(n / p["total_s"], rel=0.01), name
    full, light, hybrid = (report["pipelines"][k] for k in ("full", "light_dense", "light_hybrid"))
    assert 0 <= hybrid["fuse_s"] <= hybrid["search_s"]
    assert report["encode_speedup"] == pytest.approx(full["encode_s"] / light["encode_s"], rel=0.01)
    assert report["qps_speedup"] == pytest.approx(hybrid["qps"] / full["qps"], rel=0.01)
    # a whole transformer per query against a row lookup and a mean: even the tiny model is far slower
    assert report["encode_speedup"] > 1
    assert report["N"] == n and report["model"]["backbone"] == "tiny-llama" and report["model"]["hidden_size"] == 64
    assert {"torch", "numpy", "scipy", "faiss-cpu", "tokenizers"} <= set(report["libraries"])
    assert report["machine"]["cpu_count"] >= 1 and report["machine"]["torch_threads"] >= 1
    assert report["machine"]["faiss_threads"] >= 1 and report["command"].startswith("lr bench speed")


def test_speed_on_the_encoded_corpus_with_fp16_check(work):
    out = work / "out"
    argv = ["--backbone", "tiny-llama", "--work-dir", str(work / "work"), "--data-dir", str(work / "data"),
            "--max-doc-len", "32", "--queries", "40", "--batch-size", "16", "--top-k", "20", "--fp16-check",
            "--out", str(out)]
    assert speed.main(argv) == 0
    report = json.loads((out / "speed.json").read_text())
    check_report(report, 40)
    from lr_core.data.beir import load_beir

    corpus = load_beir("scifact", "test", data_dir=work / "data").corpus
    assert report["corpus"]["kind"] == "encoded" and report["M"] == report["corpus"]["M"] == len(corpus)
    # SciFact (300) and Cranfield (225) test queries, cycled to N
    assert report["queries"]["datasets"] == {"scifact": 300, "cranfield": 225}
    assert report["batch_size"] == 16 and report["top_k"] == 20 and report["cache"]["dtype"] == "float32"
    check = report["fp16_cache_check"]
    assert check["num_queries"] == 10
    for dtype in ("float32", "float16"):
        assert set(check[dtype]) == {"dense", "sparse", "hybrid"} and all(0 <= v <= 1 for v in check[dtype].values())
    assert abs(check["delta_ndcg@10"]["dense"]) < 0.05 and check["delta_ndcg@10"]["sparse"] == 0
    agree = check["top10_agreement"]
    assert agree["sparse"] == {"identical_top10": 1.0, "mean_overlap@10": 1.0}  # the cache plays no part in sparse
    assert 0.5 <= agree["dense"]["mean_overlap@10"] <= 1.0 and 0 <= agree["dense"]["identical_top10"] <= 1
    assert (out / "fp16_check" / "float16" / "scifact" / "dense" / "metrics.json").is_file()


def test_speed_on_random_documents_from_a_query_file(work):
    queries = work / "queries.txt"
    queries.write_text("vitamin c and colds\n\nstatins lower cholesterol\n{\"text\": \"dna repair\"}\n")
    out = work / "random"
    assert speed.main(["--backbone", "tiny-llama", "--work-dir", str(work / "work"), "--data-dir", str(work / "data"),
                       "--random-docs", "500", "--random-terms", "16", "--query-file", str(queries),
                       "--queries", "10", "--batch-size", "4", "--top-k", "5", "--out", str(out)]) == 0
    report = json.loads((out / "speed.json").read_text())
    check_report(report, 10)
    assert report["corpus"]["kind"] == "random" and report["M"] == 500 and report["corpus"]["dim"] == 64
    assert report["corpus"]["sparse_terms_per_doc"] <= 16
    assert report["queries"] == {"file": str(queries), "distinct": 3}


def test_speed_user_errors(work, capsys):
    base = ["--work-dir", str(work / "work"), "--out", str(work / "err")]
    assert speed.main(["--backbone", "tiny-llama", "--run-dir", str(work), *base]) == 2
    assert speed.main(["--backbone", "tiny-llama", "--queries", "0", *base]) == 2
    assert speed.main(["--backbone", "tiny-llama", "--random-docs", "100000", "--max-gb", "0.001", *base]) == 2
    assert "GiB" in capsys.readouterr().err
    assert not (work / "err" / "speed.json").exists()


def test_speed_times_a3_on_the_same_queries(work, tmp_path):
    """``--a3-run-dir``: a trained A3 run's one-layer query encoder as a fifth pipeline, same N queries."""
    from lr_core.train import fit
    from reports.records import speed_rows

    from tests.helpers import REPO, fast_config

    tiny = REPO / "experiments" / "tiny.yaml"
    a3_run = fit(fast_config(tiny, tmp_path / "a3", ["variant=a3_one_layer_query"]))
    out = work / "with-a3"
    base = ["--backbone", "tiny-llama", "--work-dir", str(work / "work"), "--data-dir", str(work / "data"),
            "--max-doc-len", "32", "--queries", "24", "--batch-size", "8", "--top-k", "5"]
    assert speed.main([*base, "--a3-run-dir", str(a3_run), "--out", str(out)]) == 0
    report = json.loads((out / "speed.json").read_text())
    assert set(report["pipelines"]) == {*PIPELINES, "a3"}
    a3 = report["pipelines"]["a3"]
    assert a3["total_s"] == pytest.approx(a3["tokenize_s"] + a3["encode_s"] + a3["search_s"], abs=1e-5)
    assert a3["qps"] == pytest.approx(24 / a3["total_s"], rel=0.01) and a3["encode_s"] > 0
    assert report["a3_model"]["variant"] == "a3_one_layer_query" and report["a3_model"]["query_layers"] == 1
    assert report["a3_model"]["checkpoint"].startswith(str(a3_run))
    rows = {r["model"]: r for r in speed_rows(report, "speed.json")}
    a3_row = rows["Tiny Llama (random) A3 1-layer query"]  # display names (reports.collect.PIPELINE_NAMES)
    assert a3_row["variant"] == "a3_one_layer_query" and a3_row["representation"] == "dense"
    # a run of another variant is refused with a message, not timed as if it were A3
    other = fit(fast_config(tiny, tmp_path / "lr"))
    assert speed.main([*base, "--a3-run-dir", str(other), "--out", str(work / "not-a3")]) == 2
    assert not (work / "not-a3" / "speed.json").exists()
