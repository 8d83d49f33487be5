"""lr_core.data.mining: BM25 hard negatives, title pseudo-queries, the data.train source specs and their cache.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from lr_core.data.beir import BeirDataset, Passage, load_beir
from lr_core.errors import CacheMismatchError, DataError
from lr_core.data.mining import load_training_sources, mine_hard_negatives

from tests.helpers import write_jsonl


# --------------------------------------------------------------------------- mining


def _toy_dataset() -> BeirDataset:
    docs = {
        "d1": ("Solar power", "solar panels convert sunlight into electricity"),
        "d2": ("Solar panels", "solar panels sunlight electricity efficiency of solar panels"),
        "d3": ("Wind power", "wind turbines generate electricity"),
        "d4": ("Cooking", "how to bake bread at home"),
        "d5": ("Gardening", "tomatoes need sunlight"),
        "d6": ("Judged irrelevant", "solar panels sunlight electricity"),
        "d7": ("Football", "the match ended in a draw"),
    }
    corpus = {k: Passage(k, t, x) for k, (t, x) in docs.items()}
    queries = {"q1": "solar panels sunlight electricity", "q2": "bake bread", "q3": "football draw"}
    qrels = {"q1": {"d1": 1, "d6": 0}, "q2": {"d4": 2}, "q3": {"d7": 0}}
    return BeirDataset(name="toy", corpus=corpus, queries=queries, qrels=qrels, split="train")


def test_mining_toy():
    ds = _toy_dataset()
    ex = mine_hard_negatives(ds, depth=100, n_negatives=3)
    # q3 has no positive judgment -> skipped
    assert [e.query_id for e in ex] == ["q1", "q2"]
    q1 = ex[0]
    assert q1.source == "toy" and q1.instruction is None
    assert [p.docid for p in q1.positives] == ["d1"]
    # d2 is the obvious match; d1 (positive) and d6 (judged, score 0) are never negatives
    assert q1.negatives[0].docid == "d2"
    ids = [p.docid for p in q1.negatives]
    assert "d1" not in ids and "d6" not in ids
    assert len(ids) == len(set(ids)) <= 3
    # documents without any query term (score 0) are not "hits"
    assert "d4" not in ids and "d7" not in ids
    # q2's only matching doc is its positive -> no negatives
    assert ex[1].negatives == []


def test_mining_limits_and_determinism():
    ds = _toy_dataset()
    one = mine_hard_negatives(ds, depth=100, n_negatives=1, source="s")
    assert [len(e.negatives) for e in one] == [1, 0] and one[0].source == "s"
    # depth counts judged docs too: top-2 = d2/d6/d1 region, minus judged -> at most 1
    shallow = mine_hard_negatives(ds, depth=2, n_negatives=10)
    assert len(shallow[0].negatives) <= 1
    a = mine_hard_negatives(ds, depth=100, n_negatives=5)
    b = mine_hard_negatives(ds, depth=100, n_negatives=5)
    assert a == b
    with pytest.raises(ValueError):
        mine_hard_negatives(ds, depth=0)


def test_mining_requires_corpus():
    ds = _toy_dataset()
    ds.corpus = {}
    with pytest.raises(DataError, match="corpus is empty"):
        mine_hard_negatives(ds)


def test_mining_scifact_train(shared_data):
    ds = load_beir("scifact", split="train", data_dir=shared_data)
    ex = mine_hard_negatives(ds, depth=100, n_negatives=30)  # its time is a benchmark's business, not a test's
    assert len(ex) == 809
    assert all(e.positives for e in ex)
    for e in ex:
        judged = ds.qrels[e.query_id]
        assert all(judged.get(p.docid, 0) > 0 for p in e.positives)
        assert not any(p.docid in judged for p in e.negatives)
        assert len({p.docid for p in e.negatives}) == len(e.negatives) <= 30
    assert sum(len(e.negatives) == 30 for e in ex) > 0.95 * len(ex)


# --------------------------------------------------------------------------- load_training_sources


def _toy_beir_dir(root: Path) -> Path:
    ds = _toy_dataset()
    root.mkdir(parents=True)
    write_jsonl(root / "corpus.jsonl", [{"_id": p.docid, "title": p.title, "text": p.text} for p in ds.corpus.values()])
    write_jsonl(root / "queries.jsonl", [{"_id": q, "text": t} for q, t in ds.queries.items()])
    (root / "qrels").mkdir()
    rows = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t{s}" for q, j in ds.qrels.items() for d, s in j.items()]
    (root / "qrels" / "train.tsv").write_text("\n".join(rows) + "\n")
    return root


def test_load_training_sources_jsonl_and_beir_cache(tmp_path, shared_data):
    toy = _toy_beir_dir(tmp_path / "toy")
    cache = tmp_path / "cache" / "toy_bm25.jsonl"
    specs = [
        {"jsonl": "train_samples/msmarco.jsonl"},  # resolved under shared_data
        {"jsonl": str(shared_data / "train_samples" / "nq.jsonl"), "source": "NQ"},
        {"beir": str(toy), "split": "train", "depth": 100, "n_negatives": 2, "cache": str(cache)},
    ]
    ex = load_training_sources(specs, data_dir=shared_data)
    assert [e.source for e in ex] == ["msmarco"] * 10 + ["NQ"] * 10 + ["toy"] * 2
    assert cache.is_file() and cache.with_name(cache.name + ".meta.json").is_file()
    mined = ex[20:]
    assert mined[0].negatives[0].docid == "d2"
    # the cache is reused (mtime unchanged) and gives identical examples
    mtime = cache.stat().st_mtime_ns
    again = load_training_sources(specs[2:], data_dir=shared_data)
    assert again == mined and cache.stat().st_mtime_ns == mtime
    # the cache is really read: tamper with it
    lines = cache.read_text().splitlines()
    obj = json.loads(lines[0])
    obj["query"] = "tampered"
    cache.write_text("\n".join([json.dumps(obj)] + lines[1:]) + "\n")
    assert load_training_sources(specs[2:])[0].query == "tampered"
    # different mining settings than the cache -> mismatch
    with pytest.raises(CacheMismatchError, match="n_negatives"):
        load_training_sources([{**specs[2], "n_negatives": 5}])


def test_load_training_sources_errors(tmp_path, shared_data):
    with pytest.raises(DataError, match=r"unknown key 'negatives'.*allowed keys.*n_negatives"):
        load_training_sources([{"beir": "scifact", "negatives": 3}], data_dir=shared_data)
    with pytest.raises(DataError, match=r"unknown key 'split'.*allowed keys.*\['jsonl', 'source'\]"):
        load_training_sources([{"jsonl": "x.jsonl", "split": "train"}])
    with pytest.raises(DataError, match="exactly one of 'jsonl', 'beir' or 'titles'"):
        load_training_sources([{"path": "x"}])
    with pytest.raises(DataError, match="exactly one of"):
        load_training_sources([{"jsonl": "x", "beir": "y"}])
    with pytest.raises(DataError, match=r"training file 'missing\.jsonl' not found"):
        load_training_sources([{"jsonl": "missing.jsonl"}], data_dir=tmp_path)
    with pytest.raises(DataError, match="'depth' must be an integer"):
        load_training_sources([{"beir": "scifact", "depth": "many"}], data_dir=shared_data)
    with pytest.raises(DataError, match="not found"):
        load_training_sources([{"beir": "no_such_set"}], data_dir=tmp_path)


# --------------------------------------------------------------------------- title pseudo-queries


def _corpus():
    from lr_core.data.beir import Passage

    texts = {"a": ("Vitamin D and bone density", "calcium absorption in the elderly and bone mass"),
             "b": ("Bone density in athletes", "running and calcium and bone mass in young athletes"),
             "c": ("Short", "a title too short to be a query"),
             "d": ("Protein folding kinetics study", "folding rates of small proteins measured by stopped flow"),
             "e": ("", "no title at all, calcium")}
    return {d: Passage(docid=d, title=t, text=x) for d, (t, x) in texts.items()}


def test_title_pairs_use_titles_as_queries_and_title_less_bodies_as_passages():
    from lr_core.data.mining import TITLE_INSTRUCTION, title_body_pairs

    examples = title_body_pairs(_corpus(), depth=10, n_negatives=3, source="toy-titles")
    assert [e.query for e in examples] == ["Vitamin D and bone density", "Bone density in athletes",
                                           "Protein folding kinetics study"]
    assert TITLE_INSTRUCTION == "Given a title, retrieve the abstract from scientific papers"
    for e in examples:
        assert e.instruction == TITLE_INSTRUCTION and e.source == "toy-titles"
        assert [p.docid for p in e.positives] == [e.query_id]
        assert all(p.title == "" for p in e.positives + e.negatives)  # the title is never in a passage
        assert e.query_id not in {p.docid for p in e.negatives}
    assert {p.docid for p in examples[0].negatives} >= {"b"}  # "bone density" matches b's body
    assert len(title_body_pairs(_corpus(), max_queries=2, n_negatives=1)) == 2
    assert title_body_pairs(_corpus(), max_queries=2, n_negatives=1, seed=5)[0].query_id in {"a", "b", "d"}


def test_titles_source_is_cached_and_reads_no_judgments(shared_data, tmp_path, monkeypatch):
    import lr_core.data.beir as beir
    from lr_core.data.mining import load_training_sources

    monkeypatch.setattr(beir, "_load_qrels", lambda *a, **k: pytest.fail("judgments must not be read"))
    spec = {"titles": "scifact", "n_negatives": 2, "max_queries": 50, "cache": str(tmp_path / "t.jsonl")}
    first = load_training_sources([spec], data_dir=shared_data)
    assert len(first) == 50 and {e.source for e in first} == {"scifact-titles"}
    assert (tmp_path / "t.jsonl.meta.json").is_file()
    again = load_training_sources([spec], data_dir=shared_data)
    assert [(e.query, e.positives[0].docid) for e in again] == [(e.query, e.positives[0].docid) for e in first]
    with pytest.raises(DataError, match="unknown key 'split'"):
        load_training_sources([{"titles": "scifact", "split": "test"}], data_dir=shared_data)
