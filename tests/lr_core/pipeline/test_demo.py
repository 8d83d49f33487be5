"""`lr demo` end to end on the tiny model and a small SciFact cut (train + test split)."""
from __future__ import annotations

import json

from lr_core.data.beir import load_beir
from experiments import DEMO_CONFIGS
from lr_core.pipeline.demo import DEMO_MAX_DOC_LEN, format_table, run_demo


def write_small_scifact(shared_data, root):
    test, train = load_beir(shared_data / "scifact", "test"), load_beir(shared_data / "scifact", "train")
    splits = {"test": (test, sorted(test.qrels)[:8]), "train": (train, sorted(train.qrels)[:12])}
    docs = {d for ds, qids in splits.values() for q in qids for d in ds.qrels[q]} | set(sorted(test.corpus)[:80])
    (root / "qrels").mkdir(parents=True)
    with open(root / "corpus.jsonl", "w") as fh:
        for d in sorted(docs):
            fh.write(json.dumps({"_id": d, "title": test.corpus[d].title, "text": test.corpus[d].text}) + "\n")
    with open(root / "queries.jsonl", "w") as fh:
        for ds, qids in splits.values():
            for q in qids:
                fh.write(json.dumps({"_id": q, "text": ds.queries[q]}) + "\n")
    for split, (ds, qids) in splits.items():
        with open(root / "qrels" / f"{split}.tsv", "w") as fh:
            fh.write("query-id\tcorpus-id\tscore\n")
            for q in qids:
                fh.writelines(f"{q}\t{d}\t{s}\n" for d, s in ds.qrels[q].items())


def test_demo_runs_every_step_and_prints_one_table(shared_data, tmp_path, capsys):
    data = tmp_path / "data"
    write_small_scifact(shared_data, data / "scifact")
    shrink = ["model.backbone=tiny-llama", "data.batch_size=2", "data.n_negatives=1", "data.max_doc_len=32"]
    records = run_demo(tmp_path / "demo", steps=1, configs=DEMO_CONFIGS, data_dir=str(data), overrides=shrink)
    got = {(r["variant"], r["representation"]) for r in records}
    assert got == {("bm25", "bm25"), ("untrained", "symmetric"), ("lightretriever", "dense"), ("lightretriever", "sparse"),
                   ("lightretriever", "hybrid"), ("lightretriever", "symmetric"), ("symmetric", "symmetric")}
    assert all(r["num_queries"] == 8 for r in records)
    # every row of the table is its own metrics.json, in its model's directory (none overwrites another)
    files = sorted((tmp_path / "demo").glob("*/eval/scifact/*/metrics.json"))
    on_disk = {(json.loads(f.read_text())["variant"], json.loads(f.read_text())["representation"]) for f in files}
    assert len(files) == len(records) and on_disk == got
    for r in records:
        f = tmp_path / "demo" / r["variant"] / "eval" / "scifact" / r["representation"] / "metrics.json"
        assert json.loads(f.read_text())["ndcg@10"] == r["ndcg@10"]
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert summary["seconds"]["total"] > 0 and "train lightretriever" in summary["seconds"]
    # the demo's CPU document length comes first, so a caller's override still wins
    assert summary["overrides"][0] == f"data.max_doc_len={DEMO_MAX_DOC_LEN}" and shrink[-1] in summary["overrides"]
    assert "max_doc_len: 32" in (tmp_path / "demo" / "lightretriever" / "config.yaml").read_text()
    out = capsys.readouterr().out
    assert format_table(records) in out and "nDCG@10" in out


def test_table_shows_percentages():
    rec = {"variant": "bm25", "representation": "bm25", "ndcg@10": 0.6647, "recall@20": 0.8, "recall@50": 0.9,
           "recall@100": 0.9076}
    assert "66.5" in format_table([rec]) and "90.8" in format_table([rec])
    long = {**rec, "variant": "a3_one_layer_query", "representation": "hybrid"}
    row = format_table([rec, long]).splitlines()[-1]
    assert row.startswith("a3_one_layer_query  hybrid")  # long names keep their columns apart


def test_compare_command_trains_each_variant_with_one_budget(shared_data, tmp_path, capsys, monkeypatch):
    from lr_core.cli import main
    from tests.helpers import REPO

    monkeypatch.chdir(REPO)
    data = tmp_path / "data"
    write_small_scifact(shared_data, data / "scifact")
    assert main(["compare", "--config", "experiments/tiny.yaml", "--variant", "lightretriever",
                 "--variant", "a2_embedding_query", "--steps", "1", "--out", str(tmp_path / "cmp"),
                 "--data-dir", str(data), "--representation", "lightretriever=dense,light_both",
                 "--representation", "a2_embedding_query=dense",
                 "data.batch_size=2", "data.n_negatives=1", "data.max_doc_len=32"]) == 0
    summary = json.loads((tmp_path / "cmp" / "summary.json").read_text())
    got = [(r["variant"], r["representation"]) for r in summary["records"]]
    assert got == [("lightretriever", "dense"), ("lightretriever", "light_both"), ("a2_embedding_query", "dense")]
    assert "data.max_doc_len=32" in summary["overrides"]
    # a second, tagged comparison in the same --out reuses the finished run and keeps its own table
    trained = (tmp_path / "cmp" / "lightretriever" / "checkpoints" / "last.ckpt").stat().st_mtime_ns
    assert main(["compare", "--config", "experiments/tiny.yaml", "--variant", "lightretriever", "--steps", "1",
                 "--out", str(tmp_path / "cmp"), "--data-dir", str(data), "--tag", "dense-only",
                 "--representation", "lightretriever=dense",
                 "data.batch_size=2", "data.n_negatives=1", "data.max_doc_len=32"]) == 0
    tagged = json.loads((tmp_path / "cmp" / "summary-dense-only.json").read_text())
    assert [(r["variant"], r["representation"]) for r in tagged["records"]] == [("lightretriever", "dense")]
    assert json.loads((tmp_path / "cmp" / "summary.json").read_text()) == summary
    assert (tmp_path / "cmp" / "table-dense-only.txt").exists()
    assert (tmp_path / "cmp" / "lightretriever" / "checkpoints" / "last.ckpt").stat().st_mtime_ns == trained
    assert main(["compare", "--config", "experiments/tiny.yaml", "--variant", "lightretriever", "--steps", "1",
                 "--out", str(tmp_path / "x"), "--representation", "kl=dense"]) == 2


def test_demo_configs_come_from_the_experiments_package():
    """The library never looks for experiments/*.yaml by a repository-relative path: the CLI passes these."""
    import experiments

    assert set(DEMO_CONFIGS) == {"lightretriever", "symmetric"}
    assert all(p.is_file() and p.parent == experiments.CONFIG_DIR for p in DEMO_CONFIGS.values())


def _published_tiny(tmp_path, variant):
    from lr_core.adapters import export_adapter
    from lr_core.train import fit, load_trained
    from tests.helpers import REPO, fast_config

    run = fit(fast_config(REPO / "experiments" / "tiny.yaml", tmp_path / variant, [f"variant={variant}"]))
    return export_adapter(*load_trained(run), run, tmp_path / "published" / variant)


def test_default_demo_scores_published_adapters_and_times_the_query_side(shared_data, tmp_path, capsys):
    """`lr demo` trains nothing: it scores the published adapters beside BM25 and the untrained
    backbone, writes nothing into the adapters, then runs the speed comparison on their encodings."""
    from lr_core.cli import main

    data = tmp_path / "data"
    write_small_scifact(shared_data, data / "scifact")
    adapters = {v: _published_tiny(tmp_path, v) for v in ("lightretriever", "symmetric")}
    before = sorted(str(p) for p in (tmp_path / "published").rglob("*"))
    out = tmp_path / "demo"
    argv = ["demo", "--out", str(out), "--data-dir", str(data), "--speed-queries", "16", "--untrained",
            *(a for v, p in adapters.items() for a in ("--adapter", f"{v}={p}"))]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    got = {(r["variant"], r["representation"]) for r in summary["records"]}
    assert got == {("bm25", "bm25"), ("untrained", "symmetric"), ("lightretriever", "dense"), ("lightretriever", "sparse"),
                   ("lightretriever", "hybrid"), ("lightretriever", "symmetric"), ("symmetric", "symmetric")}
    assert not any(k.startswith("train") for k in summary["seconds"])  # nothing was trained
    rec = json.loads((out / "lightretriever" / "eval" / "scifact" / "hybrid" / "metrics.json").read_text())
    assert rec["checkpoint"] == str(adapters["lightretriever"]) and rec["num_queries"] == 8
    assert rec["precision"] == "bfloat16" and (out / "lightretriever" / "corpus" / "scifact-len48-bf16").is_dir()
    assert sorted(str(p) for p in (tmp_path / "published").rglob("*")) == before
    speed = json.loads((out / "speed" / "speed.json").read_text())
    assert speed["N"] == 16 and speed["model"]["checkpoint"] == str(adapters["lightretriever"])
    assert speed["M"] == len(load_beir(data / "scifact", "test").corpus)
    assert "nDCG@10" in printed and "encode speedup" in printed
    # rerunning reuses the cache and corpus encodings (resumable) and gives the same table
    assert main(argv) == 0
    again = json.loads((out / "summary.json").read_text())["records"]
    key = ("variant", "representation", "ndcg@10", "recall@100", "checkpoint_hash")
    assert [[r[k] for k in key] for r in again] == [[r[k] for k in key] for r in summary["records"]]


def test_default_demo_says_which_adapter_directory_is_missing(tmp_path, capsys):
    from lr_core.cli import main

    assert main(["demo", "--out", str(tmp_path / "d"), "--adapter", f"lightretriever={tmp_path / 'nope'}"]) == 2
    err = capsys.readouterr().err
    assert "nope: not a published adapter directory" in err and "--train" in err and len(err.strip().splitlines()) == 1
    assert main(["demo", "--out", str(tmp_path / "d"), "--adapter", "bogus=x"]) == 2
    assert "expected LABEL=DIR" in capsys.readouterr().err
    assert main(["demo", "--out", str(tmp_path / "d"), "optim.lr=1"]) == 2
    assert "only apply with --train" in capsys.readouterr().err


def test_published_demo_adapters_are_the_committed_ones():
    """`make demo`'s default adapters exist in the repository and are published adapter directories."""
    from experiments import DEMO_ADAPTERS
    from lr_core.adapters import is_adapter_dir

    assert set(DEMO_ADAPTERS) == {"lightretriever", "symmetric"}
    assert all(is_adapter_dir(p) for p in DEMO_ADAPTERS.values())


def test_default_demo_scores_lightretriever_alone_and_the_standalone_symmetric_on_request(tmp_path, monkeypatch,
                                                                                          capsys):
    """The released recipe's symmetric baseline is LightRetriever's own symmetric row; the standalone
    symmetric model (one more corpus encoding) is scored with --standalone-symmetric or --adapter."""
    from experiments import DEMO_ADAPTERS
    from lr_core.cli import main

    seen = []
    monkeypatch.setattr("lr_core.pipeline.demo.run_published_demo", lambda out, adapters, **kw: seen.append(adapters))
    base = ["demo", "--out", str(tmp_path / "d"), "--speed-queries", "0"]
    assert main(base) == 0
    assert seen[-1] == {"lightretriever": DEMO_ADAPTERS["lightretriever"]}
    assert "--standalone-symmetric" in capsys.readouterr().out
    assert main([*base, "--standalone-symmetric"]) == 0
    assert seen[-1] == {"lightretriever": DEMO_ADAPTERS["lightretriever"], "symmetric": DEMO_ADAPTERS["symmetric"]}
    assert main([*base, "--adapter", f"symmetric={tmp_path}"]) == 0
    assert seen[-1] == {"lightretriever": DEMO_ADAPTERS["lightretriever"], "symmetric": tmp_path}
