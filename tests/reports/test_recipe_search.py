"""The recipe-search table (reports.recipe_search): settings that differ, loss windows, val scores."""
from __future__ import annotations

import json

import pytest
import yaml

from reports.recipe_search import collect, main, markdown, parse_windows


def _run(root, probe, variant, changes, split="val", ndcg=0.25):
    run = root / probe / "runs" / f"variant-{variant}"
    (run / "logs").mkdir(parents=True)
    cfg = {"name": "x", "variant": variant, "data": {"batch_size": 4, "n_negatives": 3},
           "loss": {"flops_start_below": None, "term_weights": {}}, **changes}
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    rows = ["step,train/loss,train/full_dense,train/light_dense"]
    rows += [f"{s},1.0,{2.0 if s < 150 else 1.0},{3.0 if s < 150 else 2.5}" for s in range(300)]
    (run / "logs" / "metrics.csv").write_text("\n".join(rows) + "\n")
    (run / "wall_time.json").write_text(json.dumps({"total_seconds": 600}))
    out = run / "eval" / "scifact" / "dense"
    out.mkdir(parents=True)
    (out / "metrics.json").write_text(json.dumps({"split": split, "representation": "dense", "ndcg@10": ndcg}))
    return run


def test_table_shows_what_each_probe_changed_its_loss_windows_and_val_scores(tmp_path):
    base = _run(tmp_path, "r1", "lightretriever", {})
    _run(tmp_path, "r2", "lightretriever", {"loss": {"flops_start_below": 2.0, "term_weights": {}}}, ndcg=0.3)
    text = markdown(collect(tmp_path, base / "config.yaml"))
    r1, r2 = [line for line in text.splitlines() if line.startswith(("| r1/", "| r2/"))]
    assert "`loss.flops_start_below=2.0`" in r2 and "| - |" in r1
    assert "2.00 / 2.00 / 1.00 / 1.00; 3.00 / 3.00 / 2.50 / 2.50 (ln 2.77 uniform)" in r1
    assert "30.0, -, -, -" in r2 and "| - | 10 min" in r2  # no sparse evaluation: no document size


def test_table_shows_how_sparse_the_documents_were(tmp_path):
    """A probe of the FLOPs weight is judged on size as well as quality: the sparse evaluation's
    mean terms per document (metrics.json's sparse_docs) stands beside the scores."""
    run = _run(tmp_path, "r7", "lightretriever", {})
    out = run / "eval" / "scifact" / "sparse"
    out.mkdir(parents=True)
    (out / "metrics.json").write_text(json.dumps({"split": "val", "representation": "sparse", "ndcg@10": 0.2,
                                                  "sparse_docs": {"terms_mean": 1234.4, "flops": 9.0}}))
    [row] = [line for line in markdown(collect(tmp_path, run / "config.yaml")).splitlines() if line.startswith("| r7/")]
    assert "25.0, 20.0, -, -" in row and "| 1,234 | 10 min |" in row


def test_a_probe_scored_on_test_data_is_refused(tmp_path):
    base = _run(tmp_path, "r1", "lightretriever", {}, split="test")
    with pytest.raises(ValueError, match="validation split only"):
        collect(tmp_path, base / "config.yaml")


def test_short_probes_get_their_own_windows_and_show_the_flops(tmp_path, capsys):
    """A 100-step probe (r7: the FLOPs weight) is read over windows that fit it, and its logged
    FLOPs regulariser (train/flops) over the last window stands beside the losses."""
    run = tmp_path / "r7" / "runs" / "flops_weight-0.001"
    (run / "logs").mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump({"name": "x", "variant": "lightretriever",
                                                     "data": {"batch_size": 4, "n_negatives": 3}}))
    rows = ["step,train/loss,train/full_dense,train/light_dense,train/flops"]
    rows += [f"{s},3.0,{1.0 if s < 50 else 0.5},2.0,{4e5 if s < 80 else 900.0}" for s in range(100)]
    (run / "logs" / "metrics.csv").write_text("\n".join(rows) + "\n")
    _run(tmp_path, "r1", "lightretriever", {})  # another probe, left out by --probes
    assert main([str(tmp_path), "--base", str(run / "config.yaml"), "--windows", "0-50,50-80,80-100",
                 "--probes", "r7"]) == 0
    out = capsys.readouterr().out
    assert "steps 0-49 / 50-79 / 80-99" in out and "training FLOPs (steps 80-99)" in out and "| r1/" not in out
    [row] = [line for line in out.splitlines() if line.startswith("| r7/")]
    assert "1.00 / 0.50 / 0.50; 2.00 / 2.00 / 2.00 (ln 2.77 uniform) | 9e+02 |" in row


@pytest.mark.parametrize("bad", ["0-", "50-20", "a-b", "10"])
def test_bad_windows_are_refused_with_the_part_named(bad):
    import argparse

    with pytest.raises(argparse.ArgumentTypeError, match="--windows"):
        parse_windows(f"0-50,{bad}")
