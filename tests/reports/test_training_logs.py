"""reports.training_logs and what `lr report` makes of it: the losses table and clear errors."""
from __future__ import annotations

import math

import pytest

from lr_core.errors import DataError
from reports import tables
from reports.collect import SkippedResultWarning, collect
from reports.training_logs import loss_windows, read_run_log, uniform_ce
from tests.reports.ledger import write_training_log

LN16 = math.log(16)


def test_uniform_guess_is_ln_of_the_batch_documents():
    assert uniform_ce({"data": {"batch_size": 4, "n_negatives": 3}}) == LN16
    assert uniform_ce({"data": {"batch_size": 128, "n_negatives": 7}}) == math.log(1024)
    with pytest.raises(DataError, match="n_negatives"):
        uniform_ce({"data": {"batch_size": 4}})


def test_a_resumed_run_counts_each_step_once_its_last_row(tmp_path):
    # trained to step 29, killed, resumed from the checkpoint at step 20: steps 20-29 are logged twice
    steps = [*range(30), *range(20, 60)]
    values = [9.0] * 30 + [1.0] * 40
    run = write_training_log(tmp_path, "lr", "lightretriever", {"light_dense": values}, steps=steps)
    rows = read_run_log(run / "logs" / "metrics.csv")
    assert [r["step"] for r in rows] == list(range(60))
    assert [r["value"] for r in rows] == [9.0] * 20 + [1.0] * 40
    assert rows[0]["uniform"] == LN16 and rows[0]["seed"] == 42 and rows[0]["variant"] == "lightretriever"
    # windows: steps 0-49 hold 20 nines and 30 ones
    assert loss_windows(run / "logs" / "metrics.csv", ((0, 50), (50, 60), (60, 70))) == {
        "light_dense": [(20 * 9.0 + 30 * 1.0) / 50, 1.0, None]}


def test_mrl_dense_terms_sum_one_ce_per_width(tmp_path):
    run = write_training_log(tmp_path, "mrl", "mrl", {"full_dense": [5.0], "light_sparse": [1.0]}, mrl_dims=[144])
    by_term = {r["term"]: r["uniform"] for r in read_run_log(run / "logs" / "metrics.csv")}
    assert by_term == {"full_dense": pytest.approx(2 * LN16), "light_sparse": LN16}


def test_a_bad_log_names_file_line_and_field_and_is_skipped(tmp_path):
    run = write_training_log(tmp_path, "lr", "lightretriever", {"full_dense": [3.0, 2.0, 1.0]})
    log = run / "logs" / "metrics.csv"
    log.write_text(log.read_text().replace("0,1,2.0,", "0,1,two,"))
    with pytest.raises(DataError, match=r"metrics.csv: line 3: field train/full_dense: not a number \('two'\)"):
        read_run_log(log)
    write_training_log(tmp_path, "sym", "symmetric", {"full_dense": [2.0]})
    with pytest.warns(SkippedResultWarning, match="line 3"):
        r = collect([tmp_path])
    assert set(r.logs["run"]) == {"sym"} and any("line 3" in w for w in r.warnings)


def test_losses_table_shows_the_last_steps_beside_the_uniform_level(ledger):
    md = tables.training_losses(collect([ledger])).to_markdown().splitlines()
    assert md[2] == "| Model | Seed | Run | Steps | ln N | full dense | light dense | light sparse |"
    # LightRetriever first, then symmetric, then the variants; the last 50 of 60 steps are constant
    assert md[4:7] == ["| LightRetriever | 42 | lr | 60 | 2.77 | 1.00 | 2.50 | 1.50 |",
                       "| Full Symmetric | 42 | sym | 60 | 2.77 | 1.75 | - | - |",
                       "| LightRetriever + MRL | 42 | mrl | 60 | 2.77 | 10.00\u2021 | 11.50\u2021 | 2.00 |"]
    assert md[-1] == ("\u2021 a sum of one CE per MRL prefix width; a uniform guess scores mrl full dense: "
                      "4 ln N = 11.09; mrl light dense: 4 ln N = 11.09.")
