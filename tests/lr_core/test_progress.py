"""The progress policy: bars on a terminal only, never under Slurm; status lines otherwise."""
from __future__ import annotations

import io

import pytest

from lr_core import progress as P


class Tty(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture(autouse=True)
def reset(monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.delenv("LR_NO_PROGRESS", raising=False)
    P.configure(disabled=False, quiet=False)
    yield
    P.configure(disabled=False, quiet=False)


def test_bars_only_on_a_terminal_outside_slurm(monkeypatch):
    assert P.bars_enabled(Tty()) and not P.bars_enabled(io.StringIO())
    monkeypatch.setenv("SLURM_JOB_ID", "123")
    assert not P.bars_enabled(Tty())
    monkeypatch.delenv("SLURM_JOB_ID")
    monkeypatch.setenv("LR_NO_PROGRESS", "1")
    assert not P.bars_enabled(Tty())
    monkeypatch.delenv("LR_NO_PROGRESS")
    P.configure(disabled=True)
    assert not P.bars_enabled(Tty())
    P.configure(disabled=False, quiet=True)
    assert not P.bars_enabled(Tty()) and not P.status_enabled()


def test_status_lines_instead_of_a_bar(monkeypatch, capsys):
    monkeypatch.setattr(P, "STATUS_INTERVAL_S", 0.0)
    bar = P.progress(total=4, desc="indexing", unit="doc")  # pytest's stderr is not a terminal
    assert isinstance(bar, P.StatusLine)
    for _ in range(4):
        bar.update()
    bar.close()
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0].startswith("indexing: 1/4 doc (25%)") and "4/4 doc (100%) done" in lines[-1]
    assert len(lines) == 5  # one per update (interval 0) and the closing line
    assert list(P.progress(range(3), desc="x", enabled=False)) == [0, 1, 2]
    P.configure(quiet=True)
    list(P.progress(range(3), desc="quiet"))
    assert capsys.readouterr().err == ""


def test_status_line_is_periodic(monkeypatch, capsys):
    now = [0.0]
    line = P.StatusLine(total=10, desc="mining", unit="q", interval=30, clock=lambda: now[0])
    for t, n in ((1, 1), (2, 1), (31, 3), (32, 1)):  # a line at t=31 only
        now[0] = t
        line.update(n)
    now[0] = 40.0
    line.close()  # a loop this long gets a closing line
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("mining: 5/10 q (50%), 31 s")
    assert lines[1].startswith("mining: 6/10 q (60%) done, 40 s")
    quick = P.StatusLine(total=2, desc="quick", clock=lambda: 0.0)
    quick.update(2)
    quick.close()  # a short loop ends silently
    assert capsys.readouterr().err == ""


def test_lucene_indexer_lines_move_the_bar():
    from lr_core.retrieval.lucene_jvm import _indexing_progress

    bar = P.StatusLine(total=3000, desc="Lucene", silent=True)
    feed = _indexing_progress(bar)
    feed("2026-01-01 INFO [pool-1] IndexCollection - part00.json: 1,000 docs added.\n")
    feed("2026-01-01 INFO [pool-1] IndexCollection - part01.json: 1000 docs added.\n")
    assert bar.n == 2000
    feed("INFO 66.67% of files completed, 2,500 documents indexed\n")
    assert bar.n == 2500
    feed("unrelated line\n")
    assert bar.n == 2500


def test_corpus_encoding_reports_progress_without_a_terminal(tiny_encoder, tmp_path, monkeypatch, capsys):
    from lr_core.data.beir import Passage
    from lr_core.retrieval.corpus_encoding import encode_corpus

    monkeypatch.setattr(P, "STATUS_INTERVAL_S", 0.0)
    corpus = {f"d{i}": Passage(f"d{i}", f"title {i}", f"some text {i}") for i in range(6)}
    encode_corpus(tiny_encoder, corpus, tmp_path / "enc", {"model": "tiny"}, batch_size=2)
    err = capsys.readouterr().err
    assert "encoding corpus enc: 2/6 doc" in err and "6/6 doc (100%)" in err
