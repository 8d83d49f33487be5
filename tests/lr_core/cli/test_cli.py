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


# --------------------------------------------------------------------------- discoverability (issue 20)
import argparse
import re

from lr_core import cli
from lr_core.cli import parser as cli_parser


def _subcommands(parser: argparse.ArgumentParser, prefix=()):
    """Every (sub)command path of the parser, nested ones (config show, data download) included."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name)
                yield from _subcommands(sub, (*prefix, name))


def test_every_command_is_listed_and_its_help_has_an_example(capsys):
    paths = list(_subcommands(cli.build_parser()))
    assert {"serve", "export-serving", "loadtest", "mteb", "config", "data"} <= {p[0] for p in paths}
    assert ("config", "keys") in paths and ("data", "download") in paths
    with pytest.raises(SystemExit) as top:
        main(["--help"])
    top_help = capsys.readouterr().out
    assert top.value.code == 0
    for path in paths:
        if len(path) == 1:
            assert re.search(rf"^\s+{re.escape(path[0])}\s", top_help, re.M), f"{path[0]} missing from lr --help"
        with pytest.raises(SystemExit) as exc:
            main([*path, "--help"])
        out = capsys.readouterr().out
        assert exc.value.code == 0, path
        desc, examples = cli_parser.COMMANDS[" ".join(path)]
        assert desc in " ".join(out.split()), path
        assert re.search(r"^examples?:\n  lr ", out, re.M), f"lr {' '.join(path)} --help has no example"
        assert "--verbose" in out and "--no-progress" in out, path


def test_every_example_parses(capsys):
    """The examples in the help texts (and so in README.md) are commands the parser accepts."""
    import shlex

    parser = cli.build_parser()
    for name, (_, examples) in cli_parser.COMMANDS.items():
        for ex in examples:
            words = [w.split("|")[0] for w in shlex.split(re.sub(r"\[[^\]]*\]", "", ex))[1:]]
            parser.parse_args([w.replace("$LR_DATA_DIR", "/data") for w in words])


def test_readme_command_list_is_generated_from_the_parser():
    from tests.helpers import REPO

    readme = (REPO / "README.md").read_text()
    assert cli_parser.commands_markdown() in readme, (
        "README.md's ## Commands block differs from lr_core.cli.parser.COMMANDS; regenerate it with "
        "python -c 'from lr_core.cli.parser import commands_markdown; print(commands_markdown())'")


def test_global_flags_before_or_after_the_command(capsys, tmp_path):
    for argv in (["-v", "evaluate", str(tmp_path), "--dataset", "scifact"],
                 ["evaluate", str(tmp_path), "--dataset", "scifact", "--verbose"]):
        code, _, err = run_cli(capsys, *argv)
        assert code == 2 and "Traceback" in err and "is not a run directory" in err
    code, _, err = run_cli(capsys, "evaluate", str(tmp_path), "--dataset", "scifact")
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert err.startswith("lr evaluate: error: ") and str(tmp_path) in err
    for argv in (["-q", "--no-progress", "variants"], ["variants", "-q", "--no-progress"]):
        code, out, _ = run_cli(capsys, *argv)
        assert code == 0 and "lightretriever" in out
    from lr_core import progress

    assert not progress.status_enabled() and not progress.bars_enabled()
    progress.configure(disabled=False, quiet=False)


def test_positional_or_named_objects(capsys, tmp_path):
    for argv in (["cache", "--run-dir", str(tmp_path), "--dataset", "scifact"],
                 ["cache", str(tmp_path), "--dataset", "scifact"]):
        code, _, err = run_cli(capsys, *argv)
        assert code == 2 and "is not a run directory" in err
    code, _, err = run_cli(capsys, "cache", "a", "--run-dir", "b", "--dataset", "scifact")
    assert code == 2 and "given twice" in err
    code, _, err = run_cli(capsys, "cache", "--dataset", "scifact")
    assert code == 2 and "RUN_DIR (or --run-dir RUN_DIR)" in err
    code, _, err = run_cli(capsys, "serve", "--bundle", str(tmp_path / "none"))
    assert code == 2 and "none" in err
    code, out, _ = run_cli(capsys, "config", "show", "--config", TINY)
    code2, out2, _ = run_cli(capsys, "config", "show", TINY)
    assert code == code2 == 0 and out == out2 and "name: tiny" in out
    code, _, err = run_cli(capsys, "fit", TINY, "--config", str(tmp_path / "other.yaml"))
    assert code == 2 and "given twice" in err


def test_config_show_resolves_overrides(capsys):
    import yaml

    code, out, _ = run_cli(capsys, "config", "show", TINY, "trainer.max_steps=7", "loss.mrl_dims=[8,16]")
    shown = yaml.safe_load(out)
    assert code == 0 and shown["trainer"]["max_steps"] == 7 and shown["loss"]["mrl_dims"] == [8, 16]
    assert shown["name"] == "tiny" and out.startswith("# ") and "config hash" in out.splitlines()[0]
    code, _, err = run_cli(capsys, "config", "show", TINY, "trainer.bogus=1")
    assert code == 2 and "bogus" in err and "Traceback" not in err


def test_config_keys_covers_every_dataclass_field(capsys):
    import dataclasses
    import typing

    from lr_core.config_docs import config_keys, nested_dataclasses, undocumented_fields

    assert undocumented_fields() == [], "config fields without a trailing `# meaning` comment"
    code, out, _ = run_cli(capsys, "config", "keys")
    assert code == 0
    rows = {line.split()[0]: line for line in out.splitlines()}

    def leaves(cls, prefix=""):
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if dataclasses.is_dataclass(hints[f.name]):
                yield from leaves(hints[f.name], f"{prefix}{f.name}.")
            else:
                yield f"{prefix}{f.name}", f

    from lr_core.config import ExperimentConfig

    expected = dict(leaves(ExperimentConfig))
    assert set(rows) == set(expected)
    docs = {k.key: k for k in config_keys()}
    for key, f in expected.items():
        assert docs[key].doc and docs[key].doc in rows[key], key
    assert "model.lora.r" in rows and "LoRA rank" in rows["model.lora.r"] and " 16 " in rows["model.lora.r"]
    from lr_core.backbone import LoraSettings

    assert LoraSettings in nested_dataclasses()
    code, out, _ = run_cli(capsys, "config", "keys", "optim")
    assert code == 0 and all(line.startswith("optim.") for line in out.splitlines())


def test_a_field_without_a_comment_is_found():
    from dataclasses import dataclass

    from lr_core.config_docs import field_comments, undocumented_fields

    @dataclass
    class Example:
        a: int = 1  # documented
        b: str = "x"
        c: list = None  # also
    assert field_comments(Example) == {"a": "documented", "b": "", "c": "also"}
    assert undocumented_fields(Example) == ["Example.b"]


def test_fit_help_points_to_config_show_and_keys(capsys):
    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    out = capsys.readouterr().out
    assert "lr config keys" in out and "lr config show" in out


def test_sweep_status_parses_and_the_old_spelling_is_deprecated(capsys, tmp_path):
    import yaml

    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump({"name": "s", "base_config": TINY, "out": str(tmp_path / "out"),
                                    "grid": {"variant": ["lightretriever", "symmetric"]},
                                    "evaluate": {"datasets": ["scifact"]}}))  # no slurm section
    code, out, err = run_cli(capsys, "sweep", str(spec), "--status")
    assert code == 0 and "not started: 2" in out and not err
    code, out2, err = run_cli(capsys, "sweep", "status", str(spec))
    assert code == 0 and out2 == out and "deprecated" in err and "--status" in err
    code, _, err = run_cli(capsys, "sweep", "--spec", str(spec), "--status", "--local")
    assert code == 2 and "choose one" in err
    # submitting needs a partition, running here does not
    code, _, err = run_cli(capsys, "sweep", str(spec), "--dry-run")
    assert code == 2 and "slurm.partition" in err and "--local" in err


def test_unregistered_data_set_names_the_flag(capsys, tmp_path):
    d = tmp_path / "mine"
    (d / "qrels").mkdir(parents=True)
    (d / "corpus.jsonl").write_text(json.dumps({"_id": "d1", "title": "", "text": "hello"}) + "\n")
    (d / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "hi"}) + "\n")
    (d / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    code, _, err = run_cli(capsys, "evaluate", "--backbone", "tiny-llama", "--dataset", str(d),
                           "--out", str(tmp_path / "o"))
    assert code == 2 and "pass --instruction TEXT" in err and "instruction=" not in err
    assert "Traceback" not in err


def test_resume_prints_one_line_with_checkpoint_and_step(tmp_path, capsys, monkeypatch):
    from lr_core import progress

    monkeypatch.setattr(progress, "STATUS_INTERVAL_S", 0.0)  # stderr is no terminal here: status lines
    run = tmp_path / "run"
    code, _, err = run_cli(capsys, "fit", TINY, f"run_dir={run}", *FAST)
    assert code == 0 and "resuming" not in err and "training: 1/1 step (100%)" in err
    code, _, err = run_cli(capsys, "fit", TINY, f"run_dir={run}", *FAST[1:], "trainer.max_steps=2")
    lines = [line for line in err.splitlines() if "resuming from" in line]
    assert code == 0 and len(lines) == 1
    assert str(run / "checkpoints" / "last.ckpt") in lines[0] and "at step 1 of 2" in lines[0]
    code, _, err = run_cli(capsys, "fit", TINY, f"run_dir={run}", *FAST[1:], "trainer.max_steps=3", "-q")
    assert code == 0 and "resuming" not in err  # --quiet: errors only
