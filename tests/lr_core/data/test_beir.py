"""Tests for lr_core.data.beir: loading and validating BEIR-format directories."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from lr_core.data.beir import BeirDataset, Passage, load_beir, resolve_dataset_dir
from lr_core.errors import DataError

from tests.helpers import write_jsonl


@pytest.fixture(scope="module")
def data_dir(shared_data) -> Path:
    return shared_data


def make_beir(
    root: Path,
    corpus: list | None = None,
    queries: list | None = None,
    qrels: str | None = None,
    split: str = "test",
) -> Path:
    """A small valid BEIR dir; any part can be replaced to inject an error."""
    root.mkdir(parents=True, exist_ok=True)
    if corpus is None:
        corpus = [
            {"_id": "d1", "title": "Cats", "text": "cats purr"},
            {"_id": "d2", "title": "Dogs", "text": "dogs bark"},
            {"_id": "d3", "text": "birds sing"},  # title missing -> ""
        ]
    if queries is None:
        queries = [
            {"_id": "q1", "text": "do cats purr"},
            {"_id": "q2", "text": "do dogs bark"},
            {"_id": "q3", "text": "unjudged query"},
        ]
    if qrels is None:
        qrels = "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t2\nq2\td3\t0\n"
    write_jsonl(root / "corpus.jsonl", corpus)
    write_jsonl(root / "queries.jsonl", queries)
    (root / "qrels").mkdir(exist_ok=True)
    (root / "qrels" / f"{split}.tsv").write_text(qrels, encoding="utf-8")
    return root


# --------------------------------------------------------------------------- valid synthetic data


def test_load_valid_synthetic(tmp_path):
    root = make_beir(tmp_path / "toy")
    ds = load_beir(root)
    assert isinstance(ds, BeirDataset)
    assert ds.name == "toy" and ds.split == "test"
    assert ds.corpus["d1"] == Passage(docid="d1", title="Cats", text="cats purr")
    assert ds.corpus["d3"].title == ""
    # only judged queries are kept; q3 has no qrels row
    assert set(ds.queries) == {"q1", "q2"}
    # score 0 rows are kept; graded scores are ints
    assert ds.qrels == {"q1": {"d1": 1}, "q2": {"d2": 2, "d3": 0}}


def test_load_corpus_false_skips_doc_check(tmp_path):
    root = make_beir(tmp_path / "toy", qrels="query-id\tcorpus-id\tscore\nq1\tnot-a-doc\t1\n")
    ds = load_beir(root, load_corpus=False)
    assert ds.corpus == {}
    assert ds.qrels == {"q1": {"not-a-doc": 1}}
    with pytest.raises(DataError, match=r"test\.tsv:2.*corpus-id.*not-a-doc"):
        load_beir(root)


def test_integer_ids_and_blank_lines(tmp_path):
    root = make_beir(
        tmp_path / "toy",
        corpus=[{"_id": 7, "title": None, "text": "seven"}, "", {"_id": "8", "text": "eight"}],
        queries=[{"_id": 1, "text": "q"}],
        qrels="query-id\tcorpus-id\tscore\n1\t7\t1\n\n",
    )
    ds = load_beir(root)
    assert ds.corpus["7"] == Passage("7", "", "seven")
    assert ds.qrels == {"1": {"7": 1}}


def test_duplicate_identical_qrels_row_ok_conflicting_rejected(tmp_path):
    ok = make_beir(tmp_path / "a", qrels="query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td1\t1\n")
    assert load_beir(ok).qrels == {"q1": {"d1": 1}}
    bad = make_beir(tmp_path / "b", qrels="query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td1\t2\n")
    with pytest.raises(DataError, match=r"test\.tsv:3.*conflicting.*line 2"):
        load_beir(bad)


# --------------------------------------------------------------------------- resolve_dataset_dir


def test_resolve_existing_path_and_data_dir(tmp_path, monkeypatch):
    root = make_beir(tmp_path / "toy")
    assert resolve_dataset_dir(str(root)) == root
    assert resolve_dataset_dir("toy", data_dir=tmp_path) == tmp_path / "toy"
    monkeypatch.setenv("LR_DATA_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path / "toy")  # "toy" is not a path relative to cwd here
    assert resolve_dataset_dir("toy") == tmp_path / "toy"
    assert load_beir("toy").name == "toy"


def test_resolve_missing_lists_tries(tmp_path, monkeypatch):
    monkeypatch.delenv("LR_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match=r"nope.*tried.*LR_DATA_DIR is not set"):
        resolve_dataset_dir("nope")
    with pytest.raises(DataError) as exc:
        resolve_dataset_dir("nope", data_dir=tmp_path / "dd")
    assert str(tmp_path / "dd" / "nope") in str(exc.value)


def test_resolve_file_not_dir(tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(DataError, match="not a directory"):
        resolve_dataset_dir(str(f))


# --------------------------------------------------------------------------- error cases


@pytest.mark.parametrize("missing", ["corpus.jsonl", "queries.jsonl", "qrels/test.tsv"])
def test_missing_file_named(tmp_path, missing):
    root = make_beir(tmp_path / "toy")
    (root / missing).unlink()
    with pytest.raises(DataError, match=re.escape(str(root / missing)) + ": file not found"):
        load_beir(root)


def test_missing_split_lists_available(tmp_path):
    root = make_beir(tmp_path / "toy")
    with pytest.raises(DataError, match=r"dev\.tsv.*available splits.*test"):
        load_beir(root, split="dev")


def test_malformed_json_line(tmp_path):
    corpus = [{"_id": "d1", "text": "a"}, '{"_id": "d2", "text": ', {"_id": "d3", "text": "c"}]
    root = make_beir(tmp_path / "toy", corpus=corpus)
    with pytest.raises(DataError, match=r"corpus\.jsonl:2: malformed JSON"):
        load_beir(root)


def test_non_object_line(tmp_path):
    root = make_beir(tmp_path / "toy", queries=[{"_id": "q1", "text": "x"}, "[1, 2]"])
    with pytest.raises(DataError, match=r"queries\.jsonl:2: expected a JSON object"):
        load_beir(root)


@pytest.mark.parametrize(
    "fname,row,field",
    [
        ("corpus", {"title": "t", "text": "x"}, "_id"),
        ("corpus", {"_id": "d9", "title": "t"}, "text"),
        ("corpus", {"_id": "d9", "text": 3}, "text"),
        ("corpus", {"_id": "d9", "text": "x", "title": ["no"]}, "title"),
        ("queries", {"text": "x"}, "_id"),
        ("queries", {"_id": "q9"}, "text"),
        ("queries", {"_id": "q9", "text": "   "}, "text"),
        ("queries", {"_id": "", "text": "x"}, "_id"),
    ],
)
def test_missing_or_bad_field(tmp_path, fname, row, field):
    root = make_beir(tmp_path / "toy")
    path = root / f"{fname}.jsonl"
    lines = path.read_text().splitlines()
    lines.insert(1, json.dumps(row))  # becomes line 2
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=rf"{fname}\.jsonl:2: field '{field}'"):
        load_beir(root)


@pytest.mark.parametrize("fname", ["corpus", "queries"])
def test_duplicate_ids_both_lines(tmp_path, fname):
    root = make_beir(tmp_path / "toy")
    path = root / f"{fname}.jsonl"
    lines = path.read_text().splitlines()
    lines.append(lines[0])  # duplicate of line 1 at line 4
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=rf"{fname}\.jsonl:4: .*duplicate id.*line 1"):
        load_beir(root)


def test_empty_corpus(tmp_path):
    root = make_beir(tmp_path / "toy", corpus=[])
    with pytest.raises(DataError, match=r"corpus\.jsonl: corpus is empty"):
        load_beir(root)


def test_qrels_unknown_query(tmp_path):
    root = make_beir(tmp_path / "toy", qrels="query-id\tcorpus-id\tscore\nq1\td1\t1\nq404\td1\t1\n")
    with pytest.raises(DataError, match=r"test\.tsv:3: field 'query-id'.*q404"):
        load_beir(root)
    with pytest.raises(DataError, match=r"test\.tsv:3"):
        load_beir(root, load_corpus=False)


def test_qrels_unknown_doc(tmp_path):
    root = make_beir(tmp_path / "toy", qrels="query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td404\t1\n")
    with pytest.raises(DataError, match=r"test\.tsv:3: field 'corpus-id'.*d404"):
        load_beir(root)


@pytest.mark.parametrize(
    "qrels,pattern",
    [
        ("qid\tdocid\tscore\nq1\td1\t1\n", r"test\.tsv:1: bad header"),
        ("query-id corpus-id score\nq1\td1\t1\n", r"test\.tsv:1: bad header"),
        ("query-id\tcorpus-id\tscore\nq1\td1\n", r"test\.tsv:2: expected 3 tab-separated columns"),
        ("query-id\tcorpus-id\tscore\nq1\td1\t1\t9\n", r"test\.tsv:2: expected 3 tab-separated columns"),
        ("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1.5\n", r"test\.tsv:3: field 'score'.*not an integer"),
        ("query-id\tcorpus-id\tscore\nq1\td1\trel\n", r"test\.tsv:2: field 'score'"),
        ("query-id\tcorpus-id\tscore\n\td1\t1\n", r"test\.tsv:2: field 'query-id': empty"),
        ("query-id\tcorpus-id\tscore\n", r"test\.tsv: no judgments"),
        ("", r"test\.tsv: empty file"),
    ],
)
def test_qrels_format_errors(tmp_path, qrels, pattern):
    root = make_beir(tmp_path / "toy", qrels=qrels)
    with pytest.raises(DataError, match=pattern):
        load_beir(root)


def test_invalid_utf8(tmp_path):
    root = make_beir(tmp_path / "toy")
    with open(root / "corpus.jsonl", "ab") as fh:
        fh.write(b'{"_id": "d9", "text": "\xff\xfe"}\n')
    with pytest.raises(DataError, match=r"corpus\.jsonl:4: not valid UTF-8"):
        load_beir(root)


def test_data_error_is_value_error():
    assert issubclass(DataError, ValueError)


# --------------------------------------------------------------------------- real shared data


def test_scifact_test_split(data_dir):
    ds = load_beir("scifact", split="test", data_dir=data_dir)
    assert ds.name == "scifact"
    assert len(ds.corpus) == 5183
    assert len(ds.queries) == 300
    assert sum(len(v) for v in ds.qrels.values()) == 339
    assert set(ds.queries) == set(ds.qrels)
    assert ds.qrels["1"] == {"31715818": 1}
    assert all(p.text for p in ds.corpus.values())


def test_scifact_train_split_without_corpus(data_dir):
    ds = load_beir(data_dir / "scifact", split="train", load_corpus=False)
    assert ds.corpus == {}
    assert len(ds.queries) == 809
    assert sum(len(v) for v in ds.qrels.values()) == 919


def test_cranfield_graded_scores_kept(data_dir):
    ds = load_beir("cranfield", data_dir=data_dir)
    assert len(ds.corpus) == 1400
    assert len(ds.queries) == 225
    assert sum(len(v) for v in ds.qrels.values()) == 1837
    scores = {s for v in ds.qrels.values() for s in v.values()}
    assert scores == {0, 1, 2, 3, 4}
    assert ds.qrels["1"]["184"] == 3


def test_write_beir_subset_keeps_judged_docs_and_splits(shared_data, tmp_path):
    from lr_core.data.beir import load_beir, write_beir_subset

    out = write_beir_subset(shared_data / "scifact", tmp_path / "scifact", {"test": 10, "train": 5}, 30, seed=1)
    full = load_beir(shared_data / "scifact", "test")
    test, train = load_beir(out, "test"), load_beir(out, "train")
    assert sorted(test.qrels) == sorted(full.qrels)[:10] and len(train.queries) == 5
    judged = {d for q in test.qrels for d in test.qrels[q]} | {d for q in train.qrels for d in train.qrels[q]}
    assert judged <= set(test.corpus) and len(test.corpus) == len(judged) + 30
    assert all(test.qrels[q] == full.qrels[q] for q in test.qrels)  # nothing judged was lost
    again = write_beir_subset(shared_data / "scifact", tmp_path / "again", {"test": 10, "train": 5}, 30, seed=1)
    assert (again / "corpus.jsonl").read_bytes() == (out / "corpus.jsonl").read_bytes()


# -- found by tests/lr_core/test_loader_fuzz.py --------------------------------------------------
def _beir_dir(root, corpus_line: str, qrels_row: str = "q1\td1\t1"):
    from pathlib import Path

    root = Path(root)
    (root / "qrels").mkdir(parents=True, exist_ok=True)
    (root / "corpus.jsonl").write_text(corpus_line + "\n")
    (root / "queries.jsonl").write_text('{"_id": "q1", "text": "a question"}\n')
    (root / "qrels" / "test.tsv").write_text(f"query-id\tcorpus-id\tscore\n{qrels_row}\n")
    return root


def test_ids_a_trec_run_cannot_hold_are_refused(tmp_path):
    import pytest as _pytest

    from lr_core.data.beir import load_beir as _load
    from lr_core.errors import DataError as _DataError

    for bad in ("d 1", "d\\u20281", "d\\u00a01", "d\\t1"):
        root = _beir_dir(tmp_path / f"c{len(list(tmp_path.iterdir()))}", '{"_id": "%s", "text": "x"}' % bad)
        with _pytest.raises(_DataError, match=r"corpus.jsonl:1: field '_id': id .* whitespace"):
            _load(root, "test")
    root = _beir_dir(tmp_path / "q", '{"_id": "d1", "text": "x"}', qrels_row="q1\td 1\t1")
    with _pytest.raises(_DataError, match=r"test.tsv:2: field 'corpus-id'"):
        _load(root, "test", load_corpus=False)


def test_lone_surrogates_and_deep_nesting_are_one_line_errors(tmp_path):
    import pytest as _pytest

    from lr_core.data.beir import load_beir as _load, read_query_file
    from lr_core.errors import DataError as _DataError

    root = _beir_dir(tmp_path / "s", '{"_id": "d1", "title": "ok \\ud83d\\ude00", "text": "bad \\udc80"}')
    with _pytest.raises(_DataError, match=r"corpus.jsonl:1: field 'text': a lone surrogate"):
        _load(root, "test")
    root = _beir_dir(tmp_path / "e", '{"_id": "d1", "title": "emoji \\ud83d\\ude00", "text": "fine"}')
    assert _load(root, "test").corpus["d1"].title == "emoji \U0001F600"  # a valid pair is text
    root = _beir_dir(tmp_path / "n", "[" * 100000)
    with _pytest.raises(_DataError, match=r"corpus.jsonl:1: malformed JSON \(nested too deeply\)"):
        _load(root, "test")
    qf = tmp_path / "queries.txt"
    qf.write_text('plain query\n{"text": "json query"}\n')
    assert read_query_file(qf) == ["plain query", "json query"]
    qf.write_text('plain query\n{"txt": "json query"}\n')
    with _pytest.raises(_DataError, match=r"queries.txt:2: field 'text'"):
        read_query_file(qf)
    qf.write_text('{"text": \n')
    with _pytest.raises(_DataError, match=r"queries.txt:1: malformed JSON"):
        read_query_file(qf)
