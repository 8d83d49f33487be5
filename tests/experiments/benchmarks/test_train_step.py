"""`lr bench train-step --before`: two checkouts' training steps, alternately, with loss agreement."""
from __future__ import annotations

import json

from experiments.benchmarks.train_step import main

from tests.helpers import REPO


def test_before_after_times_both_checkouts_and_compares_losses(tmp_path):
    out = tmp_path / "ab.json"
    # this checkout against itself: same code, same seed and batches -> identical losses
    assert main(["--before", str(REPO), "--steps", "1", "--rounds", "1", "--out", str(out),
                 "--config", str(REPO / "experiments" / "tiny.yaml"), "data.batch_size=2", "data.n_negatives=1",
                 "data.max_doc_len=32", "data.max_query_tokens=16"]) == 0
    report = json.loads(out.read_text())
    assert report["mode"] == "before_after" and report["rounds"] == 1
    for side in ("before", "after"):
        assert len(report["seconds"][side]) == 1 and report["seconds"][side][0] > 0
        assert len(report["losses"][side][0]) == 2  # warm-up step + one timed step, every loss term
    assert set(report["losses"]["before"][0][0]) >= {"full_dense", "light_dense", "light_sparse", "flops"}
    assert report["max_relative_loss_difference"] == 0.0


def test_bf16_mode_times_both_precisions_on_the_same_batches(tmp_path):
    out = tmp_path / "bf16.json"
    assert main(["--bf16", "--repeats", "2", "--out", str(out), "--config", str(REPO / "experiments" / "tiny.yaml"),
                 "data.batch_size=2", "data.n_negatives=1", "data.max_doc_len=32", "data.max_query_tokens=16"]) == 0
    report = json.loads(out.read_text())
    assert report["mode"] == "bf16_autocast"
    assert {k: len(v) for k, v in report["seconds"].items()} == {"float32": 2, "bf16": 2}
    assert report["speedup_of_medians"] > 0
    assert set(report["max_relative_loss_change"]) >= {"full_dense", "light_dense", "light_sparse", "flops"}
    # bf16 autocast really ran: the losses moved, but not far (the same weights and batches)
    assert 0 < max(report["max_relative_loss_change"].values()) < 0.5
