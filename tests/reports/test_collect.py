"""reports.collect: the ledger, speed.json and W&B summaries as DataFrames; bad input is skipped
with a warning that names the file, duplicates are kept and flagged."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pandas as pd
import pytest

from lr_core.errors import ConfigError
from reports.collect import SkippedResultWarning, collect, wandb_records
from tests.reports.ledger import SMOL, write_bench_speed, write_metrics, write_speed


def test_ledger_rows_settings_and_a1(ledger):
    r = collect([ledger])
    df = r.records
    assert len(df) == 24 and r.warnings == [] and not df["duplicate"].any()
    assert len(r.speed) == 2
    # A1 written as a LightRetriever run evaluated as light_both is the A1 setting
    a1 = df[df["representation"] == "light_both"]
    assert list(a1["variant"]) == ["lightretriever"] and list(a1["setting"]) == ["a1_both_light"]
    # metrics stay fractions; settings come out of settings.* as nullable integers
    bm = df[(df["dataset"] == "scifact") & (df["variant"] == "bm25")].iloc[0]
    assert bm["ndcg@10"] == pytest.approx(0.665) and bm["recall@20"] == pytest.approx(0.843)
    assert sorted(df["mrl_dim"].dropna().tolist()) == [64, 128, 256]
    assert sorted(df["sparse_top_k"].dropna().tolist()) == [16, 64]
    assert df["source"].str.endswith("metrics.json").all()


def test_overlapping_paths_count_each_file_once(ledger):
    assert len(collect([ledger, ledger / "lr", ledger / "lr" / "eval" / "scifact" / "dense" / "metrics.json"]).records) == 24


def test_missing_results_path_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="nowhere"):
        collect([tmp_path / "nowhere"])


def test_corrupt_and_partial_files_are_skipped_with_their_path(tmp_path):
    good = write_metrics(tmp_path, "scifact", "lightretriever", SMOL, "dense", 0.5, run="good")
    truncated = tmp_path / "cut" / "eval" / "scifact" / "dense" / "metrics.json"
    truncated.parent.mkdir(parents=True)
    truncated.write_text(good.read_text()[:120])  # a write interrupted half-way
    no_ndcg = write_metrics(tmp_path, "scifact", "symmetric", SMOL, "symmetric", 0.5, run="partial")
    rec = json.loads(no_ndcg.read_text())
    del rec["ndcg@10"]
    no_ndcg.write_text(json.dumps(rec))
    percent = write_metrics(tmp_path, "scifact", "kl", SMOL, "dense", 61.2, run="percent")
    empty = tmp_path / "empty" / "metrics.json"
    empty.parent.mkdir()
    empty.write_text("")
    with pytest.warns(SkippedResultWarning) as caught:
        r = collect([tmp_path])
    assert list(r.records["source"]) == [str(good)]
    assert len(r.warnings) == 4 and [str(w.message) for w in caught] == r.warnings
    text = "\n".join(r.warnings)
    assert f"{truncated}: invalid JSON at line" in text
    assert f"{no_ndcg}: field 'ndcg@10' is missing" in text
    assert f"{percent}: field 'ndcg@10'=61.2 is not a fraction in [0, 1]" in text
    assert f"{empty}: empty file" in text


def test_same_key_twice_is_kept_and_flagged(tmp_path):
    a = write_metrics(tmp_path, "scifact", "lightretriever", SMOL, "hybrid", 0.6, run="seed-1")
    b = write_metrics(tmp_path, "scifact", "lightretriever", SMOL, "hybrid", 0.62, run="seed-2")
    other = write_metrics(tmp_path, "scifact", "lightretriever", SMOL, "hybrid", 0.5, run="seed-1", mrl_dim=64)
    df = collect([tmp_path]).records.set_index("source")
    assert df.loc[str(a), "duplicate"] and df.loc[str(b), "duplicate"]
    assert not df.loc[str(other), "duplicate"]  # an MRL prefix is another measurement, not a duplicate


def test_a1_written_both_ways_is_one_key(tmp_path):
    write_metrics(tmp_path, "scifact", "lightretriever", SMOL, "light_both", 0.3, run="lr")
    write_metrics(tmp_path, "scifact", "a1_both_light", SMOL, "light_both", 0.31, run="a1")
    df = collect([tmp_path]).records
    assert set(df["setting"]) == {"a1_both_light"} and df["duplicate"].all()


def test_speed_files_qps_default_and_bad_speed(tmp_path):
    write_speed(tmp_path, "a", model="m", num_queries=300, tokenize_s=0.1, encode_s=0.1, search_s=0.3, total_s=0.5)
    bad = write_speed(tmp_path, "b", model="n", num_queries=300, tokenize_s=0.1, encode_s=0.1, search_s=0.3)
    with pytest.warns(SkippedResultWarning, match="'total_s' is missing"):
        r = collect([tmp_path])
    assert list(r.speed["model"]) == ["m"] and r.speed["qps"].iloc[0] == pytest.approx(600.0)
    assert r.warnings == [f"skipped {bad}: field 'total_s' is missing"]


def test_lr_bench_speed_report_gives_one_row_per_pipeline(tmp_path):
    path = write_bench_speed(tmp_path)
    sp = collect([tmp_path]).speed.set_index("model")
    smol = "SmolLM2-135M-Instruct"  # the backbone's display name, then the pipeline's
    assert list(sp.index) == [f"{smol} full LLM query", f"{smol} light dense", f"{smol} light sparse",
                              f"{smol} light hybrid"]
    assert list(sp["representation"]) == ["symmetric", "dense", "sparse", "hybrid"]
    assert (sp["num_queries"] == 64).all() and (sp["device"] == "cpu, 2 threads").all()
    assert (sp["dataset"] == "scifact").all() and (sp["variant"] == "lightretriever").all()
    hybrid = sp.loc[f"{smol} light hybrid"]
    assert hybrid["total_s"] == pytest.approx(0.08) and hybrid["qps"] == 800.0
    assert hybrid["source"] == f"{path} (light_hybrid)"
    # nDCG@10 from the benchmark's own float32 check, for the representations it measured
    assert sp["ndcg@10"].tolist()[1] == 0.552 and hybrid["ndcg@10"] == 0.603
    assert sp["ndcg@10"].isna().tolist() == [True, False, True, False]


def test_bad_lr_bench_speed_report_is_skipped_whole(tmp_path):
    bad = write_bench_speed(tmp_path, "bad", pipelines={"full": {"tokenize_s": 1, "encode_s": 1, "search_s": 1,
                                                                 "total_s": 3}, "light_magic": {}})
    random_docs = write_bench_speed(tmp_path, "random", corpus={"kind": "random", "M": 1000})
    with pytest.warns(SkippedResultWarning, match="unknown pipeline 'light_magic'"):
        r = collect([tmp_path])
    assert r.warnings == [(f"skipped {bad}: unknown pipeline 'light_magic' (known: full, light_dense, light_sparse, "
                           "light_hybrid, a3)")]
    # random documents: timings only; no data set, so no quality number is attached
    assert set(r.speed["source"].str.split(" ").str[0]) == {str(random_docs)}
    assert r.speed["dataset"].isna().all() and r.speed["ndcg@10"].isna().all()


class FakeApi:
    """What reports needs of wandb.Api: runs(ENTITY/PROJECT) -> run objects."""

    def __init__(self, runs, fail=None):
        self._runs, self._fail, self.asked = runs, fail, []

    def runs(self, project):
        self.asked.append(project)
        if self._fail:
            raise self._fail
        return iter(self._runs)


def wandb_run(rid, config, summary, attr="summary_metrics"):
    return SimpleNamespace(id=rid, path=["ent", "proj", rid], config=config, **{attr: summary})


def test_wandb_summaries_become_ledger_rows():
    runs = [
        wandb_run("r1", {"variant": "lightretriever", "model": {"backbone": SMOL}},
                  {"scifact/dense/ndcg@10": 0.55, "scifact/dense/recall@100": 0.9, "scifact/hybrid/ndcg@10": 0.6,
                   "train/loss": 3.0, "_step": 10}),
        # flattened config keys and a plain `summary` mapping are read as well
        wandb_run("r2", {"variant": "symmetric", "model.backbone": SMOL}, {"scifact/symmetric/ndcg@10": 0.61},
                  attr="summary"),
    ]
    rows = wandb_records(runs)
    got = {(r["source"], r["setting"], r["representation"], r["ndcg@10"]) for r in rows}
    assert got == {("wandb:ent/proj/r1 (scifact/dense)", "lightretriever", "dense", 0.55),
                   ("wandb:ent/proj/r1 (scifact/hybrid)", "lightretriever", "hybrid", 0.6),
                   ("wandb:ent/proj/r2 (scifact/symmetric)", "symmetric", "symmetric", 0.61)}
    dense = next(r for r in rows if r["representation"] == "dense")
    assert dense["recall@100"] == 0.9 and dense["backbone"] == SMOL and dense["mrl_dim"] is None


def test_collect_with_wandb_merges_and_checks(tmp_path):
    write_metrics(tmp_path, "scifact", "bm25", "bm25", "bm25", 0.665, run="bm25")
    api = FakeApi([wandb_run("r1", {"variant": "lightretriever", "model": {"backbone": SMOL}},
                             {"scifact/hybrid/ndcg@10": 0.6}),
                   wandb_run("r2", {"variant": "kl", "model": {"backbone": SMOL}}, {"scifact/dense/ndcg@10": 55.0})])
    with pytest.warns(SkippedResultWarning, match="r2"):
        r = collect([tmp_path], wandb_project="ent/proj", wandb_api=api)
    assert api.asked == ["ent/proj"]
    assert sorted(r.records["setting"]) == ["bm25", "lightretriever"]
    assert len(r.warnings) == 1 and "is not a fraction" in r.warnings[0]
    with pytest.raises(ConfigError, match="ENTITY/PROJECT"):
        collect([tmp_path], wandb_project="just-a-project", wandb_api=api)
    with pytest.raises(ConfigError, match="cannot list the runs of ent/proj"):
        collect([tmp_path], wandb_project="ent/proj", wandb_api=FakeApi([], fail=RuntimeError("401")))


def test_seed_per_query_file_and_training_steps_are_collected(tmp_path):
    import json

    m = write_metrics(tmp_path, "scifact", "lightretriever", SMOL, "dense", 0.5, run="lr", seed=3,
                      per_query={"q1": 0.4, "q2": 0.6})
    (tmp_path / "lr" / "train_done.json").write_text(json.dumps({"global_step": 300}))
    old = write_metrics(tmp_path, "scifact", "bm25", "bm25", "bm25", 0.6, run="bm25")  # written before seeds
    df = collect([tmp_path]).records.set_index("source")
    row = df.loc[str(m)]
    assert row["seed"] == 3 and row["steps"] == 300
    assert row["per_query"] == str(m.with_name("per_query.json.gz"))
    assert pd.isna(df.loc[str(old), "seed"]) and pd.isna(df.loc[str(old), "per_query"])
    assert pd.isna(df.loc[str(old), "steps"])
    bad = write_metrics(tmp_path, "scifact", "kl", SMOL, "dense", 0.5, run="kl", seed="three")
    with pytest.warns(SkippedResultWarning, match="field 'seed' is not an integer"):
        r = collect([tmp_path])
    assert str(bad) not in set(r.records["source"])


def test_distinct_seeds_are_not_duplicates_but_repeated_or_unknown_seeds_are(tmp_path):
    a = write_metrics(tmp_path, "scifact", "kl", SMOL, "dense", 0.5, run="s1", seed=1)
    b = write_metrics(tmp_path, "scifact", "kl", SMOL, "dense", 0.6, run="s2", seed=2)
    df = collect([tmp_path]).records.set_index("source")
    assert not df.loc[str(a), "duplicate"] and not df.loc[str(b), "duplicate"]
    c = write_metrics(tmp_path, "scifact", "kl", SMOL, "dense", 0.7, run="s-none")  # no seed recorded
    df = collect([tmp_path]).records.set_index("source")
    assert df.loc[[str(a), str(b), str(c)], "duplicate"].all()
