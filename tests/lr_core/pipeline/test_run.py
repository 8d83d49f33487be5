"""lr_core.pipeline.run: the one pipeline of lr demo, lr compare and every sweep run."""
from __future__ import annotations

import json
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from lr_core.config import load_config
from lr_core.pipeline.run import (METRICS, EvalPlan, encode_corpora_on_ranks, eval_model, eval_settings, evaluate_run,
                                  fit_run, is_baseline, summary_values)
from lr_core.retrieval.corpus_encoding import csr_top_k, merge_shards
from slurm.spec import expand, load_spec, run_config

from tests.helpers import REPO, SWEEP_SMALL, fast_config, write_spec, write_subset

TINY = REPO / "experiments" / "tiny.yaml"


def test_baselines_train_nothing(tmp_path):
    cfg = load_config(REPO / "experiments" / "tiny.yaml", [f"run_dir={tmp_path / 'r'}"])
    assert is_baseline("bm25") and is_baseline("untrained") and not is_baseline(cfg.variant)
    for variant in ("bm25", "untrained"):
        assert fit_run(replace(cfg, variant=variant)) is None
    assert not (tmp_path / "r").exists()


def test_summary_values_are_the_ledger_metrics_per_dataset_and_representation():
    rec = {"dataset": "scifact", "representation": "dense@64", **{m: i / 10 for i, m in enumerate(METRICS)}}
    assert summary_values([rec]) == {f"scifact/dense@64/{m}": i / 10 for i, m in enumerate(METRICS)}


def test_a_sweep_spec_gives_its_evaluate_block_as_a_plan(tmp_path):
    spec = load_spec(write_spec(tmp_path / "s.yaml", "s", {"variant": ["mrl", "bm25"]}, [], tmp_path,
                                evaluate={"representations": {"mrl": ["dense"]}, "mrl_dims": [32], "batch_size": 4,
                                          "sparse_top_k": [8, 2], "precision": "bfloat16"}))
    assert spec.eval_plan("mrl") == EvalPlan(("scifact",), str(tmp_path), None, ("dense",), "cpu", 4, (32,), None, 64,
                                             (8, 2), "bfloat16")
    assert spec.eval_plan("bm25").representations is None


def test_bm25_row_through_the_pipeline_writes_the_ledger(shared_data, tmp_path):
    data = write_subset(shared_data, "scifact", tmp_path / "beir", n_queries=5, n_extra_docs=30).parent
    cfg = replace(load_config(REPO / "experiments" / "tiny.yaml"), variant="bm25")
    [rec] = evaluate_run(cfg, tmp_path / "bm25", EvalPlan(("scifact",), str(data), sparse_top_ks=(4,)))
    assert rec["variant"] == "bm25" and rec["representation"] == "bm25" and 0 < rec["ndcg@10"] <= 1
    assert sorted(p.name for p in (tmp_path / "bm25").iterdir()) == ["eval"]  # no document top-k for BM25
    on_disk = json.loads((tmp_path / "bm25" / "eval" / "scifact" / "bm25" / "metrics.json").read_text())
    assert on_disk["ndcg@10"] == pytest.approx(rec["ndcg@10"])


def test_evaluation_batch_sizes_shards_and_devices_follow_the_spec_and_the_ranks(shared_data, tmp_path, monkeypatch):
    """The spec's batch sizes reach the evaluation settings; with several ranks (srun's environment) the
    corpus is encoded in one shard per rank and each rank evaluates on its own GPU."""
    import lr_core.retrieval.evaluate

    data = write_subset(shared_data, "scifact", tmp_path / "beir", n_queries=4, n_extra_docs=20).parent
    path = write_spec(tmp_path / "b.yaml", "b", {"variant": ["lightretriever", "untrained"]}, SWEEP_SMALL, data,
                      evaluate={"batch_size": 8, "cache_batch_size": 512, "query_batch_size": 32, "device": "cuda"})
    spec = load_spec(path)
    trained, untrained = (run_config(spec, run) for run in expand(spec))
    for var in ("WORLD_SIZE", "SLURM_STEP_NUM_TASKS", "LOCAL_RANK", "SLURM_LOCALID"):
        monkeypatch.delenv(var, raising=False)
    s = eval_settings(trained, spec.eval_plan(trained.variant))
    assert (s.batch_size, s.cache_batch_size, s.query_batch_size, s.num_shards, s.representations) == \
        (8, 512, 32, 1, ("symmetric",))
    default = load_spec(write_spec(tmp_path / "d.yaml", "d", {"variant": ["untrained"]}, SWEEP_SMALL, data))
    s = eval_settings(untrained, default.eval_plan("untrained"))
    assert (s.batch_size, s.cache_batch_size, s.query_batch_size) == (16, None, 64)
    devices = []
    monkeypatch.setattr(lr_core.retrieval.evaluate, "load_model_for_eval", lambda *a, device, **kw: devices.append(device))
    eval_model(trained, tmp_path, spec.eval_plan(trained.variant))
    monkeypatch.setenv("SLURM_STEP_NUM_TASKS", "4")
    monkeypatch.setenv("SLURM_LOCALID", "3")
    eval_model(untrained, tmp_path, spec.eval_plan(untrained.variant))
    assert devices == ["cuda", "cuda:3"]
    assert eval_settings(trained, spec.eval_plan(trained.variant)).num_shards == 4


def test_a_sparse_run_is_also_evaluated_at_each_document_top_k(shared_data, tmp_path):
    """``sparse_top_ks``: sparse and hybrid again with every document cut to its k largest term
    weights, into ``eval-top<k>``, records named ``<rep>@top<k>`` and marked with the cut, which the
    reports key on; the dense representation is not evaluated again."""
    from reports.collect import collect

    data = write_subset(shared_data, "scifact", tmp_path / "beir", n_queries=4, n_extra_docs=20).parent
    cfg = fast_config(TINY, tmp_path)
    run_dir = fit_run(cfg)
    plan = EvalPlan(("scifact",), str(data), representations=("dense", "sparse", "hybrid"), batch_size=8,
                    sparse_top_ks=(4,))
    records = {r["representation"]: r for r in evaluate_run(cfg, run_dir, plan)}
    assert sorted(records) == ["dense", "hybrid", "hybrid@top4", "sparse", "sparse@top4"]
    assert records["sparse"]["settings"]["sparse_top_k"] is None
    assert records["sparse@top4"]["settings"]["sparse_top_k"] == records["hybrid@top4"]["settings"]["sparse_top_k"] == 4
    top = run_dir / "eval-top4" / "scifact"
    assert sorted(p.name for p in top.iterdir()) == ["hybrid", "sparse"]
    on_disk = json.loads((top / "sparse" / "metrics.json").read_text())
    assert on_disk["representation"] == "sparse" and on_disk["settings"]["sparse_top_k"] == 4
    assert on_disk["ndcg@10"] == pytest.approx(records["sparse@top4"]["ndcg@10"]) and on_disk["num_queries"] == 4
    # the size recorded is the cut corpus's, not the full encoding's
    assert on_disk["sparse_docs"]["terms_max"] <= 4 < records["sparse"]["sparse_docs"]["terms_max"]
    assert "scifact/sparse@top4/ndcg@10" in summary_values(list(records.values()))
    # the cut is real (each document keeps its 4 largest weights, lr_core.retrieval.corpus_encoding.csr_top_k)
    # and costs no second pass over the corpus: the full encoding is the only one
    [full_dir] = list((run_dir / "corpus").iterdir())
    full = merge_shards(full_dir)
    cut = csr_top_k(full.sparse, 4)
    kept, every = np.diff(cut.indptr), np.diff(full.sparse.indptr)
    assert (kept == np.minimum(every, 4)).all() and (every > 4).any()
    for i in range(len(full.doc_ids)):
        row = full.sparse.getrow(i).toarray().ravel()
        assert np.allclose(np.sort(cut.getrow(i).data)[::-1], np.sort(row[row > 0])[::-1][:4])
    # `lr report` reads them as their own measurement (keyed by sparse_top_k), not as duplicates
    df = collect([run_dir]).records
    assert sorted(zip(df["representation"], df["sparse_top_k"].fillna(0))) == \
        [("dense", 0), ("hybrid", 0), ("hybrid", 4), ("sparse", 0), ("sparse", 4)]
    assert not df["duplicate"].any()


def test_runs_not_evaluated_as_sparse_get_no_top_k(shared_data, tmp_path):
    """The symmetric variant (full-LLM queries, dense) and the untrained backbone: the plan's top-k
    cuts do not apply, nothing is evaluated or encoded again."""
    data = write_subset(shared_data, "scifact", tmp_path / "beir", n_queries=4, n_extra_docs=20).parent
    plan = EvalPlan(("scifact",), str(data), batch_size=8, sparse_top_ks=(4,))
    cfg = fast_config(TINY, tmp_path / "sym", ["variant=symmetric"])
    run_dir = fit_run(cfg)
    assert [r["representation"] for r in evaluate_run(cfg, run_dir, plan)] == ["symmetric"]
    assert not list(run_dir.glob("eval-top*")) and not list((run_dir / "corpus").glob("*-top*"))
    untrained = tmp_path / "untrained"
    assert [r["representation"] for r in evaluate_run(replace(cfg, variant="untrained"), untrained, plan)] == \
        ["symmetric"]
    assert not list(untrained.glob("eval-top*"))


def test_several_ranks_encode_the_corpus_once_for_every_top_k_cut(monkeypatch, tmp_path):
    """Under several ranks the corpus is shared out once; the document top-k cuts are made from that
    encoding afterwards (no encoding of their own)."""
    import lr_core.distributed
    import lr_core.pipeline.run
    import lr_core.retrieval.evaluate

    calls = []
    monkeypatch.setattr(lr_core.distributed, "launch_world_size", lambda: 2)
    monkeypatch.setattr(lr_core.distributed, "launch_rank", lambda: 1)
    monkeypatch.setattr(lr_core.retrieval.evaluate, "encode_corpus_shards_on_ranks",
                        lambda model, names, s, data_dir: calls.append((names, s.representations, s.sparse_top_k)))
    model = SimpleNamespace(representations=("dense", "sparse", "hybrid", "symmetric"))
    monkeypatch.setattr(lr_core.pipeline.run, "eval_model", lambda *a: model)
    cfg = load_config(TINY)
    assert encode_corpora_on_ranks(cfg, tmp_path, EvalPlan(("scifact",), sparse_top_ks=(4, 16))) is model
    assert calls == [(("scifact",), None, None)]
