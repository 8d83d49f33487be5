"""experiments/paper/download_training_data.py: what it fetches and the files it writes (no network here)."""
from __future__ import annotations

import json

import yaml

from experiments.paper import download_training_data as dl
from lr_core.data.formats import read_train_jsonl
from tests.helpers import REPO


def test_written_lines_are_read_by_the_training_reader(tmp_path):
    rows = [{"query_id": "1", "query": "what is a cat", "positive_passages": [{"docid": "d1", "title": "", "text": "a cat"}],
             "negative_passages": [{"docid": "d2", "title": "t", "text": "a dog"}], "extra": 3},
            {"query_id": "2", "query": "no positive", "positive_passages": [], "negative_passages": []}]
    path = tmp_path / "x.jsonl"
    path.write_text("".join(dl.tevatron_lines(rows)))
    examples = read_train_jsonl(path)
    assert len(examples) == 1 and examples[0].query_id == "1" and examples[0].negatives[0].text == "a dog"
    assert "extra" not in json.loads(path.read_text().splitlines()[0])


def test_list_names_every_file_the_paper_config_reads(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LR_DATA_DIR", str(tmp_path))
    assert dl.main(["--list"]) == 0
    listed = capsys.readouterr().out
    cfg = yaml.safe_load((REPO / "experiments" / "paper" / "llama32_1b.yaml").read_text())
    for spec in cfg["data"]["train"]:
        assert str(tmp_path / spec["jsonl"]) in listed, spec
    assert not list(tmp_path.iterdir())  # --list downloads nothing


def test_paper_config_trains_at_tiny_scale(tmp_path):
    """The paper config (gradient checkpointing, its loss and optimiser settings) runs end to end on the tiny
    model, with the offline MS MARCO / NQ samples standing in for the downloaded mix."""
    from lr_core.train import fit
    from tests.helpers import fast_config

    cfg = fast_config(REPO / "experiments" / "paper" / "llama32_1b.yaml", tmp_path, [
        "data.train=[{jsonl: train_samples/msmarco.jsonl, source: msmarco}, {jsonl: train_samples/nq.jsonl, source: nq}]",
        "trainer.precision=32-true", "data.num_workers=0", "trainer.accelerator=cpu"])
    assert cfg.model.gradient_checkpointing and cfg.loss.flops_warmup_steps == 4000
    run_dir = fit(cfg)
    assert json.loads((run_dir / "train_done.json").read_text())["global_step"] == 2
