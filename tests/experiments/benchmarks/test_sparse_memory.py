"""`lr bench sparse-memory`: fused vs naive sparse forward+backward, each in its own process."""
from __future__ import annotations

import json

import pytest

from experiments.benchmarks.sparse_memory import main


def test_both_modes_run_agree_and_report_memory(tmp_path):
    out = tmp_path / "mem.json"
    assert main(["--out", str(out), "--batch", "2", "--length", "16", "--vocab", "512", "--hidden", "32",
                 "--chunk-size", "4", "--repeats", "1"]) == 0
    report = json.loads(out.read_text())
    assert report["outputs_match"] is True  # the fused autograd function computes what the naive form does
    assert set(report["peak_mb"]) == set(report["wall_s_median"]) == {"fused", "naive"}
    assert all(v >= 0 for v in report["peak_mb"].values()) and all(v > 0 for v in report["wall_s_median"].values())
    assert report["sizes"] == {"batch": 2, "length": 16, "vocab": 512, "hidden": 32, "chunk_size": 4,
                               "dtype": "float32"}


def test_repeats_must_be_positive(tmp_path):
    with pytest.raises(SystemExit, match="--repeats"):
        main(["--out", str(tmp_path / "x.json"), "--repeats", "0"])
