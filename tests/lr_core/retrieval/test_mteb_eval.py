"""`lr mteb`: a trained tiny run evaluated by mteb on a small local task; the scores join the ledger."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from lr_core.cli import main

from tests.helpers import REPO, write_beir_slice

TINY = str(REPO / "experiments" / "tiny.yaml")


@pytest.fixture(scope="module")
def small_task(shared_data, tmp_path_factory) -> Path:
    """15 SciFact test queries, their relevant documents and distractors: 40 documents (named scifact)."""
    return write_beir_slice(shared_data, "scifact", tmp_path_factory.mktemp("beir"), n_queries=15, n_docs=40)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("run") / "tiny"
    assert main(["fit", TINY, f"run_dir={run}", "trainer.max_steps=1", "data.batch_size=2", "data.n_negatives=1",
                 "data.max_doc_len=32"]) == 0
    return run


def test_lr_mteb_matches_lr_evaluate_and_reaches_the_report(tiny_run, small_task, tmp_path, capsys):
    out = tmp_path / "eval"
    code = main(["mteb", str(tiny_run), "--task", str(small_task), "--representation", "dense",
                 "--representation", "sparse", "--representation", "hybrid", "--out", str(out)])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    assert "(mteb)" in stdout
    recs = {r: json.loads((out / "scifact" / f"mteb-{r}" / "metrics.json").read_text())
            for r in ("dense", "sparse", "hybrid")}
    for rep, rec in recs.items():
        assert rec["evaluator"] == "mteb" and rec["representation"] == rep and rec["dataset"] == "scifact"
        assert rec["num_queries"] == 15 and 0 <= rec["ndcg@10"] <= 1 and rec["split"] == "test"
        assert (out / "scifact" / f"mteb-{rep}" / "run.trec").read_text().count("\n") == 15 * 40
    # the same ranking as lr evaluate: the scores agree (mteb rounds to 5 decimals)
    ours = tmp_path / "ours"
    assert main(["evaluate", str(tiny_run), "--dataset", str(small_task), "--representation", "dense",
                 "--representation", "sparse", "--representation", "hybrid", "--out", str(ours)]) == 0
    capsys.readouterr()
    for rep, rec in recs.items():
        ref = json.loads((ours / "scifact" / rep / "metrics.json").read_text())
        for m in ("ndcg@10", "recall@100", "mrr@10"):
            assert rec[m] == pytest.approx(ref[m], abs=2e-3), (rep, m)
    # lr report's collector reads them as ledger rows
    from reports.collect import collect

    frame = collect([out]).records
    assert sorted(frame["representation"]) == ["dense", "hybrid", "sparse"]
    assert set(frame["dataset"]) == {"scifact"}


def test_lr_mteb_errors_are_one_line(tiny_run, tmp_path, capsys):
    code = main(["mteb", str(tiny_run), "--task", str(tmp_path / "missing-dir-and-task")])
    err = capsys.readouterr().err
    assert code == 2 and "unknown task" in err and "Traceback" not in err
    code = main(["mteb", str(tmp_path), "--task", "SciFact"])
    err = capsys.readouterr().err
    assert code == 2 and "not a run directory" in err
