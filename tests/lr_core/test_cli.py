"""The ``lr`` command line: user errors are one clear line (exit 2), never a deep traceback."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lr_core.cache import VocabCache
from lr_core.cli import main
from lr_core.errors import CacheMismatchError

from tests.helpers import REPO

TINY = str(REPO / "experiments" / "tiny.yaml")
FAST = ["trainer.max_steps=1", "data.batch_size=2", "data.n_negatives=1", "data.max_doc_len=32"]


def run_cli(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def write_train_file(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


def test_malformed_jsonl_line_names_file_and_line(tmp_path, capsys):
    bad = write_train_file(tmp_path / "train.jsonl", [
        json.dumps({"query": "q1", "pos": ["a"], "neg": ["b"]}),
        '{"query": "q2", "pos": ["a"], ',
    ])
    code, _, err = run_cli(capsys, "fit", "--config", TINY, f"run_dir={tmp_path / 'r'}", *FAST,
                           f"data.train=[{{jsonl: {bad}}}]")
    assert code == 2 and "train.jsonl:2" in err and "Traceback" not in err


def test_unknown_field_layout_and_empty_query(tmp_path, capsys):
    layout = write_train_file(tmp_path / "layout.jsonl", [json.dumps({"question": "q", "answers": ["a"]})])
    code, _, err = run_cli(capsys, "fit", "--config", TINY, f"run_dir={tmp_path / 'r1'}", *FAST,
                           f"data.train=[{{jsonl: {layout}}}]")
    assert code == 2 and "layout.jsonl:1" in err and "question" in err
    empty = write_train_file(tmp_path / "empty.jsonl", [json.dumps({"query": "  ", "pos": ["a"], "neg": ["b"]})])
    code, _, err = run_cli(capsys, "fit", "--config", TINY, f"run_dir={tmp_path / 'r2'}", *FAST,
                           f"data.train=[{{jsonl: {empty}}}]")
    assert code == 2 and "empty.jsonl:1" in err and "query" in err


def test_missing_data_directory(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LR_DATA_DIR", str(tmp_path / "nowhere"))
    code, _, err = run_cli(capsys, "fit", "--config", TINY, f"run_dir={tmp_path / 'r'}", *FAST,
                           "data.train=[{beir: scifact, split: train}]")
    assert code == 2 and "scifact" in err and "nowhere" in err


def test_unknown_model_and_variant(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code, _, err = run_cli(capsys, "fit", "--config", TINY, f"run_dir={tmp_path / 'r1'}", *FAST,
                           "model.backbone=nobody/no-such-model")
    assert code == 2 and "nobody/no-such-model" in err
    code, _, err = run_cli(capsys, "fit", "--config", TINY, f"run_dir={tmp_path / 'r2'}", *FAST, "variant=nope")
    assert code == 2 and "unknown variant 'nope'" in err and "lightretriever" in err


def test_variants_lists_every_registered_variant(capsys):
    code, out, _ = run_cli(capsys, "variants")
    assert code == 0 and "lightretriever" in out and "symmetric" in out and "Table" in out


def test_fit_then_cache_then_mismatch(tmp_path, capsys):
    run = tmp_path / "run"
    assert run_cli(capsys, "fit", "--config", TINY, f"run_dir={run}", *FAST)[0] == 0
    code, out, _ = run_cli(capsys, "cache", str(run), "--dataset", "scifact", "--out", str(tmp_path / "c.npz"))
    assert code == 0 and "49152 x 64" in out
    cache = VocabCache.load(tmp_path / "c.npz")
    assert cache.metadata.model_id == "tiny-llama" and np.isfinite(cache.vectors).all()
    # the cache belongs to this checkpoint: the stored hash is the adapters' hash
    from lr_core.train import load_trained

    _, _, ckpt_hash = load_trained(run)
    assert cache.metadata.checkpoint_hash == ckpt_hash
    with pytest.raises(CacheMismatchError, match="instruction"):
        VocabCache.load(tmp_path / "c.npz", expect={"instruction": "Given a question about aerodynamics"})
    code, _, err = run_cli(capsys, "cache", str(run), "--dataset", "scifact", "--instruction", "x")
    assert code == 2 and "exactly one" in err


def test_merged_adapters_give_the_same_cache_rows(tokenizer):
    """`lr cache` folds LoRA into the weights for speed; the vectors must not change."""
    from lr_core.backbone import LoraSettings, add_lora, merged_for_inference, tiny_llama
    from lr_core.encoder import RetrievalEncoder

    lm = add_lora(tiny_llama(vocab_size=tokenizer.vocab_size), LoraSettings(dropout=0.0))
    with torch.no_grad():  # LoRA B starts at zero; make the adapters do something
        for name, p in lm.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    lm.eval()
    ids = torch.tensor([5, 900, 12000, 49151])
    inst = "Given a scientific claim, retrieve documents that support or refute the claim"
    unmerged = RetrievalEncoder(lm, tokenizer).token_vectors_prefix_kv(inst, ids)
    merged = RetrievalEncoder(merged_for_inference(lm), tokenizer).token_vectors_prefix_kv(inst, ids)
    base = RetrievalEncoder(tiny_llama(vocab_size=tokenizer.vocab_size).eval(), tokenizer).token_vectors_prefix_kv(inst, ids)
    torch.testing.assert_close(merged, unmerged, atol=1e-4, rtol=1e-4)
    assert (unmerged - base).abs().max() > 1e-2  # the adapters mattered


def test_serving_commands_are_dispatched(capsys):
    from lr_core.cli import main

    # options before positionals reach the serving modules' own parsers
    assert main(["loadtest", "--url", "http://10.1.2.3:8000"]) == 2
    assert "loopback" in capsys.readouterr().err.lower()
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    assert "bundle" in capsys.readouterr().out
