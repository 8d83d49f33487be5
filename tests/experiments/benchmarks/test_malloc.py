"""`lr bench malloc`: workers through the real entry point, with and without the malloc tuning."""
from __future__ import annotations

import json

from experiments.benchmarks.malloc import main

from tests.helpers import REPO


def test_both_sides_encode_and_train_the_same_and_report_faults(tmp_path):
    out = tmp_path / "malloc.json"
    assert main(["--docs", "8", "--steps", "1", "--rounds", "1", "--out", str(out),
                 "--config", str(REPO / "experiments" / "tiny.yaml"), "data.batch_size=2", "data.n_negatives=1",
                 "data.max_doc_len=32", "data.max_query_tokens=16"]) == 0
    report = json.loads(out.read_text())
    assert report["benchmark"] == "malloc" and report["docs"] == 8
    # each side's worker saw its own LR_MALLOC_TUNING through lr_core.cli
    assert [r["tuned"] for r in report["runs"]["glibc_default"]] == [False]
    assert [r["tuned"] for r in report["runs"]["tuned"]] == [True]
    for side in ("glibc_default", "tuned"):
        s = report["summary"][side]
        assert s["encode_seconds"] > 0 and s["docs_per_second"] > 0 and s["step_seconds"] > 0
        assert s["encode_faults"] >= 0 and s["peak_rss_mib"] > 0
    assert report["max_relative_loss_difference"] == 0.0  # the allocator never changes a value


def test_encoding_alone_without_training_steps(tmp_path):
    out = tmp_path / "enc.json"
    assert main(["--docs", "4", "--steps", "0", "--rounds", "1", "--out", str(out),
                 "--config", str(REPO / "experiments" / "tiny.yaml"), "data.max_doc_len=32"]) == 0
    summary = json.loads(out.read_text())["summary"]
    assert all(s["docs_per_second"] > 0 and s["step_seconds"] is None for s in summary.values())
