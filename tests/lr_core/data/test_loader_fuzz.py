"""Seeded fuzzing of the data loaders: malformed BEIR directories and training JSONL files.

Every generated input must end in either a one-line :class:`DataError` naming the file (and,
for a bad line, the line) or a result that satisfies the loaders' contract -- never another
exception. Cases: truncated lines and files, wrong types, odd and duplicate ids, ids a TREC run
file cannot hold (whitespace), encodings (Latin-1, UTF-16, BOM, NUL, lone surrogates), deep
nesting, empty files, missing files.

The seed is printed; rerun one with ``LR_FUZZ_SEED=<seed>``; ``LR_FUZZ_SEED=random`` draws a new one.
"""
from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

import pytest

from lr_core.data.beir import load_beir
from lr_core.errors import DataError
from lr_core.data.formats import read_train_jsonl

DEFAULT_SEED = 20201
N_BEIR = 1500
N_JSONL = 1500
MAX_SECONDS = 20.0  # per test: stop early on a slow, shared machine (the seed fixes the cases' order)
MIN_CASES = 200


def _seed_from_env() -> int:
    raw = os.environ.get("LR_FUZZ_SEED", "")
    if raw == "random":
        return int(time.time() * 1000) % 2**31
    return int(raw) if raw else DEFAULT_SEED


_SEED = _seed_from_env()  # one seed for the whole module, printed by each test


def fuzz_seed() -> int:
    return _SEED


WEIRD_VALUES = [None, 0, 1, -7, 3.5, float("inf"), True, False, [], ["a"], {}, {"text": "x"}, "", " ", "\t",
                "a b", "x\ny", "é", "\u3000", "0" * 300, "\\ud800"]
WEIRD_IDS = ["", " ", "a b", "a\tb", " lead", "trail ", "new\nline", "\u00a0nbsp", "id\u2028sep", "ünï", "7", 7,
             7.0, None, True, ["x"], "d1", "q1", "\x00nul", "a" * 500]


def _trec_safe(identifier: str) -> bool:
    try:
        identifier.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return bool(identifier) and not any(c.isspace() or ord(c) < 32 for c in identifier)


# --------------------------------------------------------------------------- BEIR directories
def valid_beir() -> dict[str, list[str]]:
    corpus = [json.dumps({"_id": f"d{i}", "title": f"title {i}", "text": f"text of document {i}"}) for i in range(5)]
    queries = [json.dumps({"_id": f"q{i}", "text": f"question {i}"}) for i in range(3)]
    qrels = ["query-id\tcorpus-id\tscore", "q0\td0\t1", "q0\td1\t0", "q1\td2\t2", "q2\td4\t1"]
    return {"corpus.jsonl": corpus, "queries.jsonl": queries, "qrels/test.tsv": qrels}


def _mutate_json_line(rng: random.Random, line: str) -> str:
    try:
        obj = json.loads(line)
    except (json.JSONDecodeError, RecursionError):  # already broken: leave it
        return line
    if not isinstance(obj, dict):
        return line
    key = rng.choice(["_id", "_id", "text", "title", "extra"])
    if key == "_id":
        obj["_id"] = rng.choice(WEIRD_IDS)
    elif rng.random() < 0.2:
        obj.pop(key, None)
    else:
        obj[key] = rng.choice(WEIRD_VALUES)
    text = json.dumps(obj, ensure_ascii=rng.random() < 0.5)
    return text.replace("\\\\ud800", "\\ud800")  # a lone surrogate escape, as some exporters write them


def mutate_beir(rng: random.Random, files: dict[str, list[str]]) -> tuple[dict[str, bytes | None], list[str]]:
    """Apply 1-3 random mutations; returns file contents (None: file absent) and what was done."""
    files = {k: list(v) for k, v in files.items()}
    raw: dict[str, bytes | None] = {}
    done = []
    for _ in range(rng.randint(1, 3)):
        name = rng.choice(list(files))
        lines = files[name]
        kind = rng.choice(["truncate_line", "truncate_file", "field", "field", "dup_line", "qrels_cols",
                           "qrels_id", "qrels_score", "blank", "empty", "deep", "swap_header", "crlf", "not_json"])
        done.append(f"{kind}:{name}")
        if not lines:
            continue
        i = rng.randrange(len(lines))
        if kind == "truncate_line":
            lines[i] = lines[i][: rng.randrange(len(lines[i]) + 1)]
        elif kind == "truncate_file":
            files[name] = lines[: rng.randrange(len(lines) + 1)]
        elif kind == "field" and name.endswith(".jsonl"):
            lines[i] = _mutate_json_line(rng, lines[i])
        elif kind == "dup_line":
            lines.insert(rng.randrange(len(lines) + 1), lines[i])
        elif kind == "qrels_cols" and name.endswith(".tsv"):
            lines[i] = rng.choice([lines[i].replace("\t", " "), lines[i] + "\textra", lines[i].split("\t")[0]])
        elif kind == "qrels_id" and name.endswith(".tsv") and i > 0:
            cols = lines[i].split("\t")
            if len(cols) == 3:
                cols[rng.randrange(2)] = str(rng.choice(WEIRD_IDS))
                lines[i] = "\t".join(cols)
        elif kind == "qrels_score" and name.endswith(".tsv") and i > 0:
            cols = lines[i].split("\t")
            cols[-1] = rng.choice(["1.0", "x", "", "-1", "99999999999999999999", "1e3", " 2 ", "½"])
            lines[i] = "\t".join(cols)
        elif kind == "blank":
            lines.insert(rng.randrange(len(lines) + 1), rng.choice(["", "   ", "\t"]))
        elif kind == "empty":
            files[name] = []
        elif kind == "deep":
            lines[i] = "[" * rng.choice([50, 5000, 200000]) + "]" * rng.choice([0, 3])
        elif kind == "swap_header" and name.endswith(".tsv"):
            lines[0] = rng.choice(["query-id corpus-id score", "qid\tdocid\trel", "", "corpus-id\tquery-id\tscore"])
        elif kind == "crlf":
            lines[i] = lines[i] + "\r"
        elif kind == "not_json" and name.endswith(".jsonl"):
            lines[i] = rng.choice(["[1, 2]", '"text"', "42", "null", "{'_id': 'd0'}", "{" + lines[i]])
    for name, lines in files.items():
        raw[name] = ("\n".join(lines) + ("\n" if lines else "")).encode("utf-8", "surrogatepass")
    # encodings and missing files, applied to the bytes
    if rng.random() < 0.25:
        name = rng.choice(list(raw))
        how = rng.choice(["latin1", "utf16", "bom", "nul", "bad_byte", "missing", "surrogate"])
        done.append(f"{how}:{name}")
        text = raw[name].decode("utf-8", "surrogatepass")
        if how == "latin1":
            raw[name] = text.replace("text", "téxt").encode("latin-1", "replace")
        elif how == "utf16":
            raw[name] = text.encode("utf-16", "surrogatepass")
        elif how == "bom":
            raw[name] = b"\xef\xbb\xbf" + raw[name]
        elif how == "nul":
            raw[name] = raw[name].replace(b"d1", b"d\x001", 1)
        elif how == "bad_byte":
            cut = rng.randrange(len(raw[name]) + 1)
            raw[name] = raw[name][:cut] + b"\xff\xfe\xc3" + raw[name][cut:]
        elif how == "missing":
            raw[name] = None
        elif how == "surrogate":
            raw[name] = raw[name].replace(b'"d2"', b'"d\\udc802"', 1)
    return raw, done


def write_files(root: Path, raw: dict[str, bytes | None]) -> None:
    (root / "qrels").mkdir(parents=True, exist_ok=True)
    for name, data in raw.items():
        if data is not None:
            (root / name).write_bytes(data)


def check_beir(ds, root: Path) -> None:
    """The loader's contract for an accepted directory."""
    assert ds.queries.keys() == ds.qrels.keys() and ds.qrels
    for qid, docs in ds.qrels.items():
        assert _trec_safe(qid), f"query id {qid!r} accepted but cannot go into a TREC run file"
        assert isinstance(ds.queries[qid], str) and ds.queries[qid].strip()
        for did, score in docs.items():
            assert did in ds.corpus and isinstance(score, int) and not isinstance(score, bool)
    for did, p in ds.corpus.items():
        assert _trec_safe(did), f"document id {did!r} accepted but cannot go into a TREC run file"
        assert isinstance(p.text, str) and isinstance(p.title, str) and p.docid == did
        p.text.encode("utf-8")  # what the run and the tokenizer need
        p.title.encode("utf-8")
    for text in ds.queries.values():
        text.encode("utf-8")


def check_error(exc: DataError, root: Path) -> None:
    msg = str(exc)
    assert "\n" not in msg, f"multi-line error: {msg!r}"
    assert str(root) in msg, f"error does not name the file: {msg!r}"


def fuzz(label: str, seed: int, n_cases: int, make_case, load, check, capsys) -> None:
    """One fuzz loop, shared by both loaders: ``make_case(case) -> (target, mutations)`` writes a
    case, ``load(target)`` reads it; a DataError must name the target, and whatever is accepted
    must pass ``check(loaded, target)``. Both outcomes must occur often enough to mean something."""
    outcomes = {"error": 0, "loaded": 0}
    start = time.perf_counter()
    for case in range(n_cases):
        if time.perf_counter() - start > MAX_SECONDS:
            break
        target, done = make_case(case)
        try:
            loaded = load(target)
        except DataError as exc:
            check_error(exc, target)
            outcomes["error"] += 1
            continue
        except Exception as exc:  # noqa: BLE001 -- the point of the test
            pytest.fail(f"seed {seed} case {case} ({', '.join(done)}): {type(exc).__name__}: {exc}")
        try:
            check(loaded, target)
        except (AssertionError, UnicodeEncodeError) as exc:
            pytest.fail(f"seed {seed} case {case} ({', '.join(done)}): accepted but wrong: {exc!r}")
        outcomes["loaded"] += 1
    with capsys.disabled():
        print(f"[fuzz] {case + 1} {label} cases in {time.perf_counter() - start:.1f} s: {outcomes}")
    assert sum(outcomes.values()) >= MIN_CASES
    assert outcomes["error"] > sum(outcomes.values()) // 4 and outcomes["loaded"] > 10  # both paths exercised


def test_fuzz_beir_directories(tmp_path, capsys):
    seed = fuzz_seed()
    with capsys.disabled():
        print(f"\n[fuzz] BEIR directories: seed {seed} (rerun with LR_FUZZ_SEED={seed})")
    rng = random.Random(seed)

    def make_case(case):
        root = tmp_path / f"case{case}" / "set"
        raw, done = mutate_beir(rng, valid_beir())
        write_files(root, raw)
        return root, done

    fuzz("BEIR", seed, N_BEIR, make_case, lambda root: load_beir(root, "test"), check_beir, capsys)


# --------------------------------------------------------------------------- training JSONL
def valid_train_lines(rng: random.Random) -> list[str]:
    lines = []
    for i in range(4):
        if rng.random() < 0.5:
            obj = {"query": f"question {i}", "pos": [f"positive {i}"], "neg": [f"negative {i}", {"text": "n2"}]}
        else:
            obj = {"query_id": f"q{i}", "query": f"question {i}",
                   "positive_passages": [{"docid": f"d{i}", "title": "t", "text": f"positive {i}"}],
                   "negative_passages": [{"docid": f"n{i}", "text": f"negative {i}"}]}
        lines.append(json.dumps(obj))
    return lines


def _mutate_train(rng: random.Random, obj):
    if not isinstance(obj, dict):
        return obj
    key = rng.choice(list(obj) + ["instruction", "extra"])
    r = rng.random()
    if r < 0.5:
        obj[key] = rng.choice(WEIRD_VALUES + [[None], [1], [{"text": None}], [{"text": "x", "docid": ["a"]}],
                                              [{"text": "x", "title": 5}], [{"docid": "a b", "text": "ok"}]])
    elif r < 0.7:
        obj.pop(key, None)
    elif isinstance(obj.get(key), list) and obj[key]:
        item = obj[key][0]
        if isinstance(item, dict):
            item[rng.choice(["text", "title", "docid", "_id"])] = rng.choice(WEIRD_VALUES + WEIRD_IDS)
    else:
        obj[key] = rng.choice(WEIRD_IDS)
    return obj


def mutate_train(rng: random.Random) -> tuple[bytes | None, list[str]]:
    lines = valid_train_lines(rng)
    done = []
    for _ in range(rng.randint(1, 3)):
        kind = rng.choice(["truncate_line", "truncate_file", "field", "field", "field", "dup", "blank", "empty",
                           "deep", "not_object", "both_layouts"])
        done.append(kind)
        if not lines:
            continue
        i = rng.randrange(len(lines))
        if kind == "truncate_line":
            lines[i] = lines[i][: rng.randrange(len(lines[i]) + 1)]
        elif kind == "truncate_file":
            lines = lines[: rng.randrange(len(lines) + 1)]
        elif kind == "field":
            try:
                lines[i] = json.dumps(_mutate_train(rng, json.loads(lines[i])), ensure_ascii=rng.random() < 0.5)
            except (json.JSONDecodeError, RecursionError):  # already broken: leave it
                pass
        elif kind == "dup":
            lines.append(lines[i])
        elif kind == "blank":
            lines.insert(i, rng.choice(["", " ", "\t"]))
        elif kind == "empty":
            lines = []
        elif kind == "deep":
            lines[i] = '{"query": ' + "[" * rng.choice([100, 100000]) + "}"
        elif kind == "not_object":
            lines[i] = rng.choice(["[]", "1", '"q"', "null", "true"])
        elif kind == "both_layouts":
            lines[i] = json.dumps({"query": "q", "pos": ["a"], "positive_passages": [{"text": "a"}]})
    data = ("\n".join(lines) + ("\n" if lines else "")).encode("utf-8")
    if rng.random() < 0.25:
        how = rng.choice(["latin1", "utf16", "bom", "bad_byte", "surrogate", "missing"])
        done.append(how)
        if how == "latin1":
            data = data.decode().replace("question", "quéstion").encode("latin-1")
        elif how == "utf16":
            data = data.decode().encode("utf-16")
        elif how == "bom":
            data = b"\xef\xbb\xbf" + data
        elif how == "bad_byte":
            cut = rng.randrange(len(data) + 1)
            data = data[:cut] + b"\x80\xff" + data[cut:]
        elif how == "surrogate":
            data = data.replace(b"question", b"quest\\ud800ion", 1)
        elif how == "missing":
            return None, done
    return data, done


def check_examples(examples) -> None:
    assert examples
    for ex in examples:
        assert isinstance(ex.query, str) and ex.query.strip()
        ex.query.encode("utf-8")
        assert ex.positives
        for p in [*ex.positives, *ex.negatives]:
            assert isinstance(p.text, str) and p.text.strip() and isinstance(p.title, str)
            p.text.encode("utf-8")
            p.title.encode("utf-8")
            assert p.docid is None or (isinstance(p.docid, str) and p.docid.strip())
        for value in (ex.query_id, ex.instruction):
            assert value is None or (isinstance(value, str) and value.strip())
            if value is not None:
                value.encode("utf-8")


def test_fuzz_training_jsonl(tmp_path, capsys):
    seed = fuzz_seed()
    with capsys.disabled():
        print(f"\n[fuzz] training JSONL: seed {seed} (rerun with LR_FUZZ_SEED={seed})")
    rng = random.Random(seed + 1)

    def make_case(case):
        path = tmp_path / f"train{case}.jsonl"
        data, done = mutate_train(rng)
        if data is not None:
            path.write_bytes(data)
        return path, done

    fuzz("training JSONL", seed, N_JSONL, make_case, read_train_jsonl, lambda examples, _: check_examples(examples),
         capsys)
