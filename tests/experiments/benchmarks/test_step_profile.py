"""`python -m experiments.benchmarks.step_profile`: every part of a training step is timed."""
from __future__ import annotations

import re

from experiments.benchmarks.step_profile import main

from tests.helpers import REPO

PARTS = ["documents dense, forward", "documents dense+sparse, forward+backward", "full queries, forward+backward",
         "light queries, forward+backward", "joint step (loss terms + backward)", "AdamW step",
         "collating the next batch"]


def test_every_part_gets_a_time(capsys):
    assert main(["--config", str(REPO / "experiments" / "tiny.yaml"), "--rounds", "1", "data.batch_size=2",
                 "data.n_negatives=1", "data.max_doc_len=32", "data.max_query_tokens=16"]) == 0
    out = capsys.readouterr().out
    for part in PARTS:
        m = re.search(rf"^{re.escape(part)}\s+([0-9.]+) s$", out, re.M)
        assert m and float(m.group(1)) >= 0, (part, out)
