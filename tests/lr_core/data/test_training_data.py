"""Tests for lr_core.data.training_data: JSONL I/O, BM25 mining, grouping, batching."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lr_core.data.beir import BeirDataset, Passage, load_beir
from lr_core.errors import CacheMismatchError, DataError
from lr_core.data.training_data import (
    HomogeneousBatchSampler,
    TrainExample,
    TrainGroupDataset,
    load_training_sources,
    mine_hard_negatives,
    read_train_jsonl,
    write_train_jsonl,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def data_dir(shared_data) -> Path:
    return shared_data


def _write_lines(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


GOOD_FF = {"query": "what is a cat", "pos": ["a cat is an animal"], "neg": ["dogs bark", {"title": "T", "text": "x"}]}
GOOD_TEV = {
    "query_id": "q7",
    "query": "what is a dog",
    "instruction": "Retrieve passages",
    "positive_passages": [{"docid": "d1", "title": "Dog", "text": "a dog is an animal"}],
    "negative_passages": [{"docid": "d2", "title": "", "text": "cats purr"}],
}


# --------------------------------------------------------------------------- reading


def test_read_both_layouts(tmp_path):
    p = _write_lines(tmp_path / "mixed.jsonl", [GOOD_FF, "", GOOD_TEV])
    ex = read_train_jsonl(p)
    assert len(ex) == 2
    a, b = ex
    assert a.query == "what is a cat" and a.source == "mixed"
    assert a.positives == [Passage(None, "", "a cat is an animal")]
    assert a.negatives == [Passage(None, "", "dogs bark"), Passage(None, "T", "x")]
    assert a.query_id is None and a.instruction is None
    assert b.query_id == "q7" and b.instruction == "Retrieve passages"
    assert b.positives == [Passage("d1", "Dog", "a dog is an animal")]
    assert b.negatives == [Passage("d2", "", "cats purr")]
    assert read_train_jsonl(p, source="custom")[0].source == "custom"


def test_read_aliases_and_missing_neg(tmp_path):
    rows = [
        {"query": "q", "pos": ["p"], "prompt": "Given a query", "_id": 5},
        {"query": "q", "pos": ["p"], "neg": [], "qid": "x"},
    ]
    ex = read_train_jsonl(_write_lines(tmp_path / "a.jsonl", rows))
    assert ex[0].instruction == "Given a query" and ex[0].query_id == "5" and ex[0].negatives == []
    assert ex[1].query_id == "x"


def test_write_read_roundtrip_atomic(tmp_path):
    ex = read_train_jsonl(_write_lines(tmp_path / "src.jsonl", [GOOD_FF, GOOD_TEV]))
    out = tmp_path / "sub" / "out.jsonl"
    write_train_jsonl(ex, out)
    back = read_train_jsonl(out, source="src")
    assert back == ex
    first = json.loads(out.read_text().splitlines()[0])
    assert "positive_passages" in first and "negative_passages" in first and "pos" not in first
    assert [p.name for p in out.parent.iterdir()] == ["out.jsonl"]  # no temp file left


def test_write_failure_keeps_old_file(tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text("old\n")

    def bad_examples():
        yield TrainExample("q", [Passage(None, "", "p")], [])
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write_train_jsonl(bad_examples(), out)
    assert out.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]


@pytest.mark.parametrize(
    "row,pattern",
    [
        ('{"query": "q", "pos": [', r"bad\.jsonl:2: malformed JSON"),
        ({"question": "q", "answers": ["a"]}, r"bad\.jsonl:2: unknown layout; keys found: \['answers', 'question'\]; accepted layouts: .*pos.*positive_passages"),
        ({"query": "q", "neg": ["n"]}, r"bad\.jsonl:2: unknown layout"),
        ({"query": "q", "pos": ["p"], "positive_passages": [{"text": "p"}]}, r"bad\.jsonl:2: both"),
        ({"query": "  ", "pos": ["p"]}, r"bad\.jsonl:2: field 'query': empty"),
        ({"query": 3, "pos": ["p"]}, r"bad\.jsonl:2: field 'query'"),
        ({"query": "q", "pos": []}, r"bad\.jsonl:2: field 'pos': no positive"),
        ({"query": "q", "positive_passages": []}, r"bad\.jsonl:2: field 'positive_passages': no positive"),
        ({"query": "q", "pos": "p"}, r"bad\.jsonl:2: field 'pos': expected a list"),
        ({"query": "q", "pos": ["p"], "neg": ["n", 7]}, r"bad\.jsonl:2: field 'neg\[1\]': a passage must be"),
        ({"query": "q", "pos": [{"title": "t"}]}, r"bad\.jsonl:2: field 'pos\[0\]\.text': missing"),
        ({"query": "q", "pos": [""]}, r"bad\.jsonl:2: field 'pos\[0\]': empty"),
        (
            {"query": "q", "positive_passages": [{"docid": "1", "text": "p"}], "negative_passages": [{"text": ""}]},
            r"bad\.jsonl:2: field 'negative_passages\[0\]\.text': empty",
        ),
        ({"query": "q", "pos": [{"text": "p", "title": 1}]}, r"bad\.jsonl:2: field 'pos\[0\]\.title'"),
        ({"query": "q", "pos": ["p"], "instruction": ["x"]}, r"bad\.jsonl:2: field 'instruction'"),
        ([1, 2], r"bad\.jsonl:2: expected a JSON object"),
    ],
)
def test_read_errors(tmp_path, row, pattern):
    p = _write_lines(tmp_path / "bad.jsonl", [GOOD_FF, row])
    with pytest.raises(DataError, match=pattern):
        read_train_jsonl(p)


def test_read_missing_and_empty_file(tmp_path):
    with pytest.raises(DataError, match=r"nofile\.jsonl: file not found"):
        read_train_jsonl(tmp_path / "nofile.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(DataError, match=r"empty\.jsonl: no training examples"):
        read_train_jsonl(tmp_path / "empty.jsonl")


@pytest.mark.parametrize(
    "name,n,n_neg,has_instruction",
    [("msmarco", 10, 25, True), ("nq", 10, None, True), ("llara_toy_finetune_msmarco", 11, 30, False)],
)
def test_real_train_samples(data_dir, name, n, n_neg, has_instruction):
    ex = read_train_jsonl(data_dir / "train_samples" / f"{name}.jsonl")
    assert len(ex) == n
    assert all(e.source == name for e in ex)
    assert all(len(e.positives) == 1 and e.negatives for e in ex)
    if n_neg is not None:
        assert all(len(e.negatives) == n_neg for e in ex)
    assert all((e.instruction is not None) == has_instruction for e in ex)
    assert all(p.text.strip() for e in ex for p in e.positives + e.negatives)


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


def test_mining_scifact_train(data_dir):
    ds = load_beir("scifact", split="train", data_dir=data_dir)
    ex = mine_hard_negatives(ds, depth=100, n_negatives=30)  # its time is a benchmark's business, not a test's
    assert len(ex) == 809
    assert all(e.positives for e in ex)
    for e in ex:
        judged = ds.qrels[e.query_id]
        assert all(judged.get(p.docid, 0) > 0 for p in e.positives)
        assert not any(p.docid in judged for p in e.negatives)
        assert len({p.docid for p in e.negatives}) == len(e.negatives) <= 30
    assert sum(len(e.negatives) == 30 for e in ex) > 0.95 * len(ex)


# --------------------------------------------------------------------------- TrainGroupDataset


def _examples(n: int, n_pos: int = 3, n_neg: int = 5, source: str = "s") -> list[TrainExample]:
    return [
        TrainExample(
            query=f"q{i}",
            positives=[Passage(f"p{i}_{j}", "", f"pos {i} {j}") for j in range(n_pos)],
            negatives=[Passage(f"n{i}_{j}", "", f"neg {i} {j}") for j in range(n_neg)],
            query_id=str(i),
            instruction="inst" if i % 2 else None,
            source=source,
        )
        for i in range(n)
    ]


def test_group_dataset_shape_and_membership():
    ex = _examples(4)
    ds = TrainGroupDataset(ex, n_negatives=3)
    assert len(ds) == 4
    item = ds[1]
    assert set(item) == {"query", "instruction", "source", "passages"}
    assert item["query"] == "q1" and item["instruction"] == "inst" and item["source"] == "s"
    assert len(item["passages"]) == 4
    assert item["passages"][0] in ex[1].positives
    negs = item["passages"][1:]
    assert all(n in ex[1].negatives for n in negs)
    assert len(set(negs)) == 3  # enough negatives -> without replacement


def test_group_dataset_with_replacement_when_short():
    ex = _examples(2, n_neg=2)
    item = TrainGroupDataset(ex, n_negatives=7)[0]
    assert len(item["passages"]) == 8
    assert all(n in ex[0].negatives for n in item["passages"][1:])


def test_group_dataset_determinism_and_epoch():
    ex = _examples(20, n_pos=4, n_neg=30)
    a = TrainGroupDataset(ex, n_negatives=7, seed=1)
    b = TrainGroupDataset(ex, n_negatives=7, seed=1)
    assert [a[i] for i in range(20)] == [b[i] for i in range(20)]
    assert a[3] == a[3]
    e0 = [a[i]["passages"] for i in range(20)]
    a.set_epoch(1)
    e1 = [a[i]["passages"] for i in range(20)]
    assert e0 != e1
    a.set_epoch(0)
    assert [a[i]["passages"] for i in range(20)] == e0
    c = TrainGroupDataset(ex, n_negatives=7, seed=2)
    assert [c[i]["passages"] for i in range(20)] != e0


def test_group_dataset_no_negatives_error():
    ex = _examples(3)
    ex[2] = TrainExample("lonely query", [Passage(None, "", "p")], [], source="s")
    with pytest.raises(DataError, match="lonely query.*no negatives"):
        TrainGroupDataset(ex, n_negatives=2)
    assert len(TrainGroupDataset(ex, n_negatives=0)[2]["passages"]) == 1


# --------------------------------------------------------------------------- HomogeneousBatchSampler


SOURCES = ["a"] * 10 + ["b"] * 7 + ["c"] * 13 + ["a"] * 2


def test_sampler_homogeneous_and_complete():
    s = HomogeneousBatchSampler(SOURCES, batch_size=4, seed=0)
    batches = list(s)
    assert len(batches) == len(s) == 12 // 4 + 7 // 4 + 13 // 4
    for b in batches:
        assert len(b) == 4
        assert len({SOURCES[i] for i in b}) == 1
    flat = [i for b in batches for i in b]
    assert len(flat) == len(set(flat))
    # without drop_last every index appears exactly once
    s2 = HomogeneousBatchSampler(SOURCES, batch_size=4, seed=0, drop_last=False)
    flat2 = sorted(i for b in s2 for i in b)
    assert flat2 == list(range(len(SOURCES))) and len(s2) == 3 + 2 + 4
    # batches from different sources are interleaved, not grouped by source
    seq = [SOURCES[b[0]] for b in batches]
    assert seq != sorted(seq, key=["a", "b", "c"].index)


def test_sampler_determinism_and_epochs():
    s1 = HomogeneousBatchSampler(SOURCES, batch_size=3, seed=5)
    s2 = HomogeneousBatchSampler(SOURCES, batch_size=3, seed=5)
    e0 = list(s1)
    assert e0 == list(s2)
    s1.set_epoch(1)
    e1 = list(s1)
    assert e1 != e0
    s1.set_epoch(0)
    assert list(s1) == e0
    # an exhausted epoch moves on by itself
    s3 = HomogeneousBatchSampler(SOURCES, batch_size=3, seed=5)
    assert list(s3) == e0 and list(s3) == e1
    assert HomogeneousBatchSampler(SOURCES, batch_size=3, seed=6).batches_for_epoch(0) != e0


def test_sampler_resume_exact():
    ref = HomogeneousBatchSampler(SOURCES, batch_size=2, seed=3)
    ref.set_epoch(2)
    full = list(ref)
    s = HomogeneousBatchSampler(SOURCES, batch_size=2, seed=3)
    s.set_epoch(2)
    it = iter(s)
    served = [next(it) for _ in range(5)]
    state = s.state_dict()
    assert state == {"epoch": 2, "batches_done": 5}
    fresh = HomogeneousBatchSampler(SOURCES, batch_size=2, seed=3)
    fresh.load_state_dict(state)
    fresh.set_epoch(2)  # a training loop re-announcing the same epoch must not restart it
    rest = list(fresh)
    assert served + rest == full
    assert rest == full[5:]
    # after the epoch the next one follows
    nxt = HomogeneousBatchSampler(SOURCES, batch_size=2, seed=3)
    nxt.set_epoch(3)
    assert list(fresh) == list(nxt)


def test_sampler_resume_at_epoch_end_and_validation():
    s = HomogeneousBatchSampler(SOURCES, batch_size=2, seed=3)
    s.load_state_dict({"epoch": 0, "batches_done": len(s)})
    assert list(s) == s.batches_for_epoch(1)
    with pytest.raises(ValueError):
        s.load_state_dict({"epoch": 0, "batches_done": len(s) + 1})
    with pytest.raises(ValueError):
        s.load_state_dict({"epoch": 0})
    with pytest.raises(ValueError):
        HomogeneousBatchSampler(["a", "b"], batch_size=4)
    with pytest.raises(ValueError):
        HomogeneousBatchSampler(SOURCES, batch_size=0)


def test_sampler_with_dataloader():
    import torch

    ex = _examples(6, source="x") + _examples(6, source="y")
    ds = TrainGroupDataset(ex, n_negatives=2)
    sampler = HomogeneousBatchSampler([e.source for e in ex], batch_size=3)
    dl = torch.utils.data.DataLoader(ds, batch_sampler=sampler, collate_fn=lambda items: items)
    batches = list(dl)
    assert len(batches) == 4
    assert all(len({it["source"] for it in b}) == 1 for b in batches)


# --------------------------------------------------------------------------- load_training_sources


def _toy_beir_dir(root: Path) -> Path:
    ds = _toy_dataset()
    root.mkdir(parents=True)
    _write_lines(root / "corpus.jsonl", [{"_id": p.docid, "title": p.title, "text": p.text} for p in ds.corpus.values()])
    _write_lines(root / "queries.jsonl", [{"_id": q, "text": t} for q, t in ds.queries.items()])
    (root / "qrels").mkdir()
    rows = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t{s}" for q, j in ds.qrels.items() for d, s in j.items()]
    (root / "qrels" / "train.tsv").write_text("\n".join(rows) + "\n")
    return root


def test_load_training_sources_jsonl_and_beir_cache(tmp_path, data_dir):
    toy = _toy_beir_dir(tmp_path / "toy")
    cache = tmp_path / "cache" / "toy_bm25.jsonl"
    specs = [
        {"jsonl": "train_samples/msmarco.jsonl"},  # resolved under data_dir
        {"jsonl": str(data_dir / "train_samples" / "nq.jsonl"), "source": "NQ"},
        {"beir": str(toy), "split": "train", "depth": 100, "n_negatives": 2, "cache": str(cache)},
    ]
    ex = load_training_sources(specs, data_dir=data_dir)
    assert [e.source for e in ex] == ["msmarco"] * 10 + ["NQ"] * 10 + ["toy"] * 2
    assert cache.is_file() and cache.with_name(cache.name + ".meta.json").is_file()
    mined = ex[20:]
    assert mined[0].negatives[0].docid == "d2"
    # the cache is reused (mtime unchanged) and gives identical examples
    mtime = cache.stat().st_mtime_ns
    again = load_training_sources(specs[2:], data_dir=data_dir)
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


def test_load_training_sources_errors(tmp_path, data_dir):
    with pytest.raises(DataError, match=r"unknown key 'negatives'.*allowed keys.*n_negatives"):
        load_training_sources([{"beir": "scifact", "negatives": 3}], data_dir=data_dir)
    with pytest.raises(DataError, match=r"unknown key 'split'.*allowed keys.*\['jsonl', 'source'\]"):
        load_training_sources([{"jsonl": "x.jsonl", "split": "train"}])
    with pytest.raises(DataError, match="exactly one of 'jsonl', 'beir' or 'titles'"):
        load_training_sources([{"path": "x"}])
    with pytest.raises(DataError, match="exactly one of"):
        load_training_sources([{"jsonl": "x", "beir": "y"}])
    with pytest.raises(DataError, match=r"training file 'missing\.jsonl' not found"):
        load_training_sources([{"jsonl": "missing.jsonl"}], data_dir=tmp_path)
    with pytest.raises(DataError, match="'depth' must be an integer"):
        load_training_sources([{"beir": "scifact", "depth": "many"}], data_dir=data_dir)
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
    from lr_core.data.training_data import TITLE_INSTRUCTION, title_body_pairs

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
    from lr_core.data.training_data import load_training_sources

    monkeypatch.setattr(beir, "_load_qrels", lambda *a, **k: pytest.fail("judgments must not be read"))
    spec = {"titles": "scifact", "n_negatives": 2, "max_queries": 50, "cache": str(tmp_path / "t.jsonl")}
    first = load_training_sources([spec], data_dir=shared_data)
    assert len(first) == 50 and {e.source for e in first} == {"scifact-titles"}
    assert (tmp_path / "t.jsonl.meta.json").is_file()
    again = load_training_sources([spec], data_dir=shared_data)
    assert [(e.query, e.positives[0].docid) for e in again] == [(e.query, e.positives[0].docid) for e in first]
    with pytest.raises(DataError, match="unknown key 'split'"):
        load_training_sources([{"titles": "scifact", "split": "test"}], data_dir=shared_data)


# --------------------------------------------------------------------------- data parallelism


@pytest.mark.parametrize("world", [2, 4])
def test_sampler_rank_slices_are_disjoint_and_make_the_global_batch(world):
    single = HomogeneousBatchSampler(SOURCES, batch_size=4, seed=7)
    ranks = [HomogeneousBatchSampler(SOURCES, batch_size=4, seed=7, num_replicas=world, rank=r) for r in range(world)]
    for epoch in range(3):  # epochs follow one another the same way on every rank
        expected = list(single)
        per_rank = [list(s) for s in ranks]
        assert all(len(p) == len(expected) for p in per_rank)
        for step, batch in enumerate(expected):
            slices = [p[step] for p in per_rank]
            assert all(len(sl) == 4 // world for sl in slices)
            assert [i for sl in slices for i in sl] == batch  # rank order = the global batch
            assert len({i for sl in slices for i in sl}) == 4  # disjoint


def test_sampler_rank_resume_is_world_size_independent():
    """A checkpoint written with 2 ranks resumes the same global sequence with 1 (or 4) ranks."""
    two = HomogeneousBatchSampler(SOURCES, batch_size=4, seed=1, num_replicas=2, rank=1)
    it = iter(two)
    for _ in range(3):
        next(it)
    state = two.state_dict()
    assert state == {"epoch": 0, "batches_done": 3}
    one = HomogeneousBatchSampler(SOURCES, batch_size=4, seed=1)
    one.load_state_dict(state)
    four = [HomogeneousBatchSampler(SOURCES, batch_size=4, seed=1, num_replicas=4, rank=r) for r in range(4)]
    for s in four:
        s.load_state_dict(state)
    rest = list(one)
    assert rest == one.batches_for_epoch(0)[3:]
    assert [sum(parts, []) for parts in zip(*(list(s) for s in four))] == rest


def test_sampler_single_process_sequence_is_unchanged():
    """The rank logic must not move a single-process run's batches (committed results depend on them)."""
    s = HomogeneousBatchSampler(SOURCES, batch_size=4, seed=0, num_replicas=1, rank=0)
    assert list(s) == HomogeneousBatchSampler(SOURCES, batch_size=4, seed=0).batches_for_epoch(0)
    # pinned (computed before the rank logic existed): a change here changes every trained model
    assert list(HomogeneousBatchSampler(SOURCES, 4, 0))[:3] == [[1, 9, 8, 5], [27, 17, 22, 18], [24, 23, 29, 20]]


@pytest.mark.parametrize("kwargs, match", [
    ({"batch_size": 6, "num_replicas": 4}, "not divisible"),
    ({"batch_size": 4, "num_replicas": 2, "rank": 2}, "rank 2"),
    ({"batch_size": 4, "num_replicas": 0}, "rank"),
    ({"batch_size": 4, "num_replicas": 2, "drop_last": False}, "drop_last"),
])
def test_sampler_rank_settings_are_checked(kwargs, match):
    with pytest.raises(ValueError, match=match):
        HomogeneousBatchSampler(SOURCES, seed=0, **kwargs)
