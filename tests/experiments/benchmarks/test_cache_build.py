"""`lr bench cache-build`: the vocabulary cache's build time, on the tiny Llama."""
from __future__ import annotations

import json

from experiments.benchmarks.cache_build import main


def test_cache_build_times_the_whole_vocabulary(tmp_path, tokenizer):
    out = tmp_path / "cache.json"
    assert main(["--backbone", "tiny-llama", "--batch-size", "4096", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["vocab_size"] == tokenizer.vocab_size  # every token id, special ones included
    assert report["lora"] == "merged" and report["build_seconds"] > 0
    assert report["tokens_per_second"] == round(report["vocab_size"] / report["build_seconds"], 1)
    assert report["cache_megabytes"] > 0 and "date" in report and "command" in report
