"""`lr bench train-resume`: a fit killed with SIGKILL after a checkpoint, then resumed to the end."""
from __future__ import annotations

import json

from experiments.benchmarks.train_resume import main

from tests.helpers import REPO


def test_killed_run_resumes_and_logs_every_step(tmp_path):
    out = tmp_path / "resume.json"
    assert main(["--config", str(REPO / "experiments" / "tiny.yaml"), "--steps", "40", "--kill-after", "5",
                 "--poll", "0.2", "--run-dir", str(tmp_path / "run"), "--out", str(out), "data.batch_size=2",
                 "data.n_negatives=1", "data.max_doc_len=32", "data.max_query_tokens=16"]) == 0
    report = json.loads(out.read_text())
    assert report["killed_with"] == "SIGKILL" and 5 <= report["resumed_from_step"] < 40
    assert report["final_step"] == 40 and report["logged_steps"] == 40  # one log across both sessions
    assert sorted(map(int, report["loss_by_step"])) == list(range(40))
    assert report["seconds_total"] > report["seconds_until_kill"] > 0
