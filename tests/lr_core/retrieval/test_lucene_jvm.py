"""lr_core.retrieval.lucene_jvm: Java found and recent enough; index builds are atomic (a failure leaves nothing); foreign directories refused.

Nothing is skipped: a missing Java or pyserini fails.
"""
from __future__ import annotations

import os
import stat

import pytest

from lr_core.retrieval import lucene_jvm
from lr_core.errors import ConfigError, DataError
from lr_core.retrieval.lucene_impact import LuceneImpactSearcher, build_impact_index, write_impact_collection
from lr_core.retrieval.lucene_jvm import ensure_java

from tests.helpers import leftover_temp_dirs


# --------------------------------------------------------------------------- java


def test_java_present_and_recent():
    java = ensure_java()
    assert os.path.isfile(java)


def test_ensure_java_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigError, match="apt-get install openjdk-17-jre-headless"):
        ensure_java()


def test_ensure_java_too_old(tmp_path, monkeypatch):
    fake = tmp_path / "java"
    fake.write_text('#!/bin/sh\necho \'java version "1.8.0_292"\' >&2\n')
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigError, match=r"Java 8.*openjdk-17-jre-headless"):
        ensure_java()


def test_parse_java_version():
    assert lucene_jvm._parse_java_version('openjdk version "17.0.15" 2025-04-15') == 17
    assert lucene_jvm._parse_java_version('java version "1.8.0_292"') == 8
    assert lucene_jvm._parse_java_version('openjdk version "21" 2023-09-19') == 21
    assert lucene_jvm._parse_java_version("no version here") is None


# --------------------------------------------------------------------------- atomic builds


def test_failed_build_leaves_no_index_malformed_collection(tmp_path):
    coll = tmp_path / "bad"
    coll.mkdir()
    (coll / "docs.jsonl").write_text('{"id": "x", "contents": "", "vector": {"t1": 3}}\n{"id": "y", "vector": \n')
    with pytest.raises(DataError):
        build_impact_index(coll, tmp_path / "index")
    assert not (tmp_path / "index").exists()
    assert leftover_temp_dirs(tmp_path, "index") == []


def test_failed_build_leaves_no_index_indexer_crash(tmp_path):
    # the indexer itself exits non-zero (input directory missing under its feet)
    settings = {"collection": "JsonVectorCollection", "impact": True, "pretokenized": True}
    with pytest.raises(DataError, match="exit status"):
        lucene_jvm.build_index(
            tmp_path / "missing", tmp_path / "index", "impact", "JsonVectorCollection",
            ["-impact", "-pretokenized"], settings, "0" * 64, 1, 1,
        )  # fmt: skip
    assert not (tmp_path / "index").exists()
    assert leftover_temp_dirs(tmp_path, "index") == []


def test_missing_collection_and_foreign_index_dir(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        build_impact_index(tmp_path / "nope", tmp_path / "index")
    assert not (tmp_path / "index").exists()
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "segments_1").write_bytes(b"")
    coll = tmp_path / "coll"
    write_impact_collection({"a": {1: 1}}, coll)
    with pytest.raises(ConfigError, match="not a complete index"):
        build_impact_index(coll, foreign)
    assert sorted(p.name for p in foreign.iterdir()) == ["segments_1"]  # untouched
    with pytest.raises(DataError):
        LuceneImpactSearcher(foreign)
