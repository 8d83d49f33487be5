"""lr_core.data.formats: training JSONL in both layouts, aliases, errors naming file/line/field, atomic writes.
"""
from __future__ import annotations

import json

import pytest

from lr_core.data.beir import Passage
from lr_core.errors import DataError
from lr_core.data.formats import TrainExample, read_train_jsonl, write_train_jsonl

from tests.helpers import write_jsonl


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
    p = write_jsonl(tmp_path / "mixed.jsonl", [GOOD_FF, "", GOOD_TEV])
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
    ex = read_train_jsonl(write_jsonl(tmp_path / "a.jsonl", rows))
    assert ex[0].instruction == "Given a query" and ex[0].query_id == "5" and ex[0].negatives == []
    assert ex[1].query_id == "x"


def test_write_read_roundtrip_atomic(tmp_path):
    ex = read_train_jsonl(write_jsonl(tmp_path / "src.jsonl", [GOOD_FF, GOOD_TEV]))
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
    p = write_jsonl(tmp_path / "bad.jsonl", [GOOD_FF, row])
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
def test_real_train_samples(shared_data, name, n, n_neg, has_instruction):
    ex = read_train_jsonl(shared_data / "train_samples" / f"{name}.jsonl")
    assert len(ex) == n
    assert all(e.source == name for e in ex)
    assert all(len(e.positives) == 1 and e.negatives for e in ex)
    if n_neg is not None:
        assert all(len(e.negatives) == n_neg for e in ex)
    assert all((e.instruction is not None) == has_instruction for e in ex)
    assert all(p.text.strip() for e in ex for p in e.positives + e.negatives)
