"""Serving bundles on a trained tiny run: export, round trip against `lr evaluate`, checksums, no torch."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from lr_core.pipeline import export
from lr_core.serve import bundle_write
from lr_core.errors import ConfigError
from lr_core.serve.bundle import BundleError, load_bundle, sha256_file

from tests.helpers import REPO, fast_config, write_subset


def read_trec(path) -> dict[str, list[tuple[str, float]]]:
    run: dict[str, list[tuple[str, float]]] = {}
    for line in path.read_text().splitlines():
        qid, _, doc, _, score, _ = line.split()
        run.setdefault(qid, []).append((doc, float(score)))
    return run


def prefill_random_cache(model, instruction: str, seed: int = 0) -> None:
    """Put a random vocabulary cache where `vocab_cache_for` looks, with the metadata it checks.

    Building the real cache runs all 49k vocabulary ids through the LLM (about a minute on the
    busy 2-core test machine; tests/lr_core/test_cache.py covers building). Evaluation and the
    bundle then read this same file, which is all a round-trip test needs.
    """
    from lr_core.cache_build import vocab_cache_from_vectors
    from lr_core.retrieval.evaluate import vocab_cache_path

    enc = model.encoder
    vectors = np.random.default_rng(seed).standard_normal((enc.tokenizer.vocab_size, enc.hidden_size))
    cache = vocab_cache_from_vectors(vectors.astype(np.float32), enc, instruction, model.backbone,
                                     model.checkpoint_hash)
    cache.save(vocab_cache_path(model.work_dir, model.variant, instruction))


@pytest.fixture(scope="module")
def served(tmp_path_factory, shared_data):
    """A trained tiny run, its `lr evaluate` runs on a SciFact subset, and its bundle (via the CLI entry point)."""
    from lr_core.retrieval.evaluate import EvalSettings, evaluate, load_model_for_eval
    from lr_core.instructions import instruction_for
    from lr_core.train import fit

    tmp = tmp_path_factory.mktemp("serving")
    run = fit(fast_config(REPO / "experiments" / "tiny.yaml", tmp))
    data = tmp / "data"
    write_subset(shared_data, "scifact", data, n_queries=12, n_extra_docs=40)
    model = load_model_for_eval(run, max_doc_len=32)
    prefill_random_cache(model, instruction_for("scifact"))
    evaluate(model, "scifact", tmp / "eval", EvalSettings(representations=("dense", "sparse", "hybrid")),
             data_dir=data)
    bundle = tmp / "bundle"
    assert export.main([str(run), str(bundle), "--dataset", "scifact", "--data-dir", str(data),
                         "--max-doc-len", "32"]) == 0
    from lr_core.data.beir import load_beir

    queries = load_beir("scifact", "test", data_dir=data, load_corpus=False).queries
    return SimpleNamespace(run=run, data=data, model=model, eval=tmp / "eval", bundle=bundle, tmp=tmp,
                           qids=list(queries), texts=list(queries.values()))


def assert_same_lists(got: list[tuple[str, float]], want: list[tuple[str, float]], where: str) -> None:
    assert [d for d, _ in got] == [d for d, _ in want], where
    assert [s for _, s in got] == pytest.approx([s for _, s in want], abs=2e-6), where


@pytest.mark.parametrize("mode", ["dense", "sparse", "hybrid"])
def test_bundle_answers_what_evaluate_scored(served, mode):
    bundle = load_bundle(served.bundle)
    expected = read_trec(served.eval / "scifact" / mode / "run.trec")
    assert set(expected) == set(served.qids)
    for k in (10, 1000):  # the top of the list, and the whole list (the corpus is smaller than 1000)
        hits = bundle.search(served.texts, k=k, mode=mode)
        assert len(hits) == len(served.qids)
        for qid, got in zip(served.qids, hits):
            assert_same_lists(got, expected[qid][:k], f"{mode} k={k} query {qid}")
    if mode == "dense":
        assert all(len(h) == bundle.num_documents for h in hits)


def test_manifest_covers_every_file_and_config_records_the_rules(served):
    manifest = json.loads((served.bundle / "manifest.json").read_text())
    on_disk = {p.name for p in served.bundle.iterdir()} - {"manifest.json"}
    assert set(manifest["files"]) == on_disk
    assert {"tokenizer.json", "vocab_cache.npz", "dense.faiss", "dense.faiss.ids.json", "sparse.npz",
            "sparse.npz.ids.json", "config.json"} <= on_disk
    for name, entry in manifest["files"].items():
        assert entry["sha256"] == sha256_file(served.bundle / name) and entry["bytes"] > 0
    cfg = json.loads((served.bundle / "config.json").read_text())
    tok = served.model.encoder.tokenizer
    assert cfg["fusion"] == {"method": "linear", "w_dense": 0.7, "w_sparse": 0.3, "rrf_k": 60, "depth": 1000}
    assert cfg["dataset"] == "scifact" and "scientific claim" in cfg["instruction"]
    assert cfg["tokenizer"]["lowercase"] is True and cfg["tokenizer"]["max_query_tokens"] == tok.max_query_tokens == 16
    assert (cfg["tokenizer"]["bos_id"], cfg["tokenizer"]["eos_id"]) == (tok.bos_id, tok.eos_id)
    assert cfg["modes"] == ["dense", "sparse", "hybrid"] and cfg["cache_dtype"] == "float32"
    assert cfg["model"]["variant"] == "lightretriever" and cfg["model"]["checkpoint_hash"] == served.model.checkpoint_hash
    # the saved tokenizer carries the lowercasing rule itself
    bundle = load_bundle(served.bundle)
    assert bundle.tokenizer.light_query_ids("Vitamin C") == tok.light_query_ids("vitamin c")
    from lr_core.data.beir import load_beir

    corpus = load_beir("scifact", "test", data_dir=served.data).corpus
    assert manifest["num_documents"] == bundle.num_documents == len(corpus)
    assert bundle.dense.doc_ids == bundle.sparse.doc_ids == list(corpus)


def corrupt(path, offset_from_end: int = 100) -> None:
    data = bytearray(path.read_bytes())
    data[-offset_from_end] ^= 0xFF  # same size: only the checksum can notice
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("name", ["vocab_cache.npz", "dense.faiss", "sparse.npz", "tokenizer.json", "config.json"])
def test_tampering_is_detected_and_named(served, tmp_path, name):
    copy = tmp_path / "bundle"
    shutil.copytree(served.bundle, copy)
    load_bundle(copy)  # an untouched copy loads
    corrupt(copy / name, offset_from_end=3 if name.endswith(".json") else 100)
    with pytest.raises(BundleError, match=rf"bundle file {name}: sha256 .* does not match"):
        load_bundle(copy)


def test_missing_or_resized_files_and_lr_serve_refusal(served, tmp_path, capsys):
    from lr_core.serve import server

    copy = tmp_path / "bundle"
    shutil.copytree(served.bundle, copy)
    (copy / "dense.faiss.ids.json").unlink()
    with pytest.raises(BundleError, match="dense.faiss.ids.json is missing"):
        load_bundle(copy)
    shutil.copy(served.bundle / "dense.faiss.ids.json", copy)
    with open(copy / "sparse.npz", "ab") as fh:
        fh.write(b"x")
    with pytest.raises(BundleError, match="sparse.npz has .* bytes"):
        load_bundle(copy)
    assert server.main([str(copy), "--port", "0"]) == 2  # refuses before it listens
    assert "sparse.npz" in capsys.readouterr().err
    with pytest.raises(BundleError, match="not a serving bundle"):
        load_bundle(tmp_path)


def test_loading_and_searching_never_imports_torch(served):
    """In a fresh interpreter: import the serving modules, load the bundle, search every mode."""
    probe = ("import json, sys\n"
             "import lr_core.serve.server\n"
             "from lr_core.serve.bundle import load_bundle\n"
             f"b = load_bundle({str(served.bundle)!r})\n"
             "for m in ('dense', 'sparse', 'hybrid'):\n"
             "    assert len(b.search(['vitamin c and the common cold'], k=5, mode=m)[0]) == 5\n"
             "{extra}"
             "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers'))))\n")

    def loaded(extra: str = "") -> list[str]:
        out = subprocess.run([sys.executable, "-c", probe.replace("{extra}", extra)], capture_output=True, text=True,
                             cwd=REPO, timeout=300)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout.strip().splitlines()[-1])

    assert loaded() == []
    # control: the probe does see torch when something imports it (lr_core.sparse does, for documents)
    assert "torch" in loaded("import lr_core.sparse\n")


def test_sparse_queries_follow_the_one_query_side_rule(served):
    """The bundle's sparse query vectors are lr_core.query_side's, on its tokenizer's sparse ids."""
    from lr_core.query_side import query_term_vector

    bundle = load_bundle(served.bundle)
    texts = ["vitamin c vitamin c", "the common cold"]
    ids = bundle.tokenizer.sparse_query_ids(texts)
    assert bundle.encode_sparse(texts) == [query_term_vector(i, bundle.config["sparse_query_mode"]) for i in ids]
    assert max(bundle.encode_sparse(texts)[0].values()) >= 2.0  # counts, not bag of words


def test_float16_cache_bundle_matches_float16_evaluation_and_force_replaces(served, tmp_path):
    from lr_core.retrieval.evaluate import EvalSettings, evaluate

    out = tmp_path / "b16"
    export.export_bundle(served.model, "scifact", out, data_dir=served.data, cache_dtype="float16")
    bundle = load_bundle(out)
    assert bundle.cache.vectors.dtype == np.float16 and bundle.config["cache_dtype"] == "float16"
    assert json.loads((out / "manifest.json").read_text())["files"]["vocab_cache.npz"]["bytes"] < \
        json.loads((served.bundle / "manifest.json").read_text())["files"]["vocab_cache.npz"]["bytes"] * 0.6
    evaluate(served.model, "scifact", tmp_path / "eval16",
             EvalSettings(representations=("dense", "hybrid"), cache_dtype="float16"), data_dir=served.data)
    expected = read_trec(tmp_path / "eval16" / "scifact" / "dense" / "run.trec")
    for qid, got in zip(served.qids, bundle.search(served.texts, k=10, mode="dense")):
        assert_same_lists(got, expected[qid][:10], f"float16 dense query {qid}")
    # --force swaps in a new bundle whole; nothing temporary is left beside it
    with pytest.raises(ConfigError, match="already exists"):
        export.export_bundle(served.model, "scifact", out, data_dir=served.data)
    export.export_bundle(served.model, "scifact", out, data_dir=served.data, force=True,
                          settings=EvalSettings(fusion="rrf"))
    assert load_bundle(out).config["fusion"]["method"] == "rrf" and load_bundle(out).config["cache_dtype"] == "float32"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b16", "eval16"]


def test_export_refusals(served, tmp_path, capsys):
    from lr_core.cache import VocabCache
    from lr_core.retrieval.evaluate import EvalModel

    assert export.main([str(served.bundle), "--dataset", "scifact"]) == 2  # neither a run nor --backbone
    assert "RUN_DIR" in capsys.readouterr().err
    assert export.main([str(served.run), str(served.bundle), "--data-dir", str(served.data)]) == 2
    assert "already exists" in capsys.readouterr().err
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not a serving bundle"):
        export.export_bundle(served.model, "scifact", precious, data_dir=served.data, force=True)
    assert (precious / "notes.txt").read_text() == "keep me"
    symmetric = EvalModel(encoder=None, variant="symmetric", backbone="tiny-llama", work_dir=tmp_path,
                          representations=("symmetric",))
    with pytest.raises(ConfigError, match="no light dense representation"):
        export.export_bundle(symmetric, "scifact", tmp_path / "sym", data_dir=served.data)
    # a failure while writing leaves neither the bundle nor a temporary directory behind
    bundle = load_bundle(served.bundle)
    cache = VocabCache(bundle.cache.vectors, bundle.cache.metadata)
    bad_sparse = bundle.sparse.matrix[:, :100]  # wrong number of term columns
    with pytest.raises(ConfigError, match="columns"):
        bundle_write.write_bundle(tmp_path / "half", bundle.tokenizer, cache, bundle.dense.doc_ids,
                                  np.ones((bundle.num_documents, cache.vectors.shape[1]), np.float32), bad_sparse,
                                  dataset="scifact", instruction=bundle.config["instruction"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["precious"]
