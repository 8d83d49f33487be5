"""lr_core.retrieval.representations: one function per representation, shared work done once."""
from __future__ import annotations

from lr_core.retrieval.evaluate import REPRESENTATIONS, EvalSettings
from lr_core.retrieval.fusion import fuse
from lr_core.retrieval.representations import REPRESENTERS, Retrieval, timed


def test_every_representation_has_exactly_one_function():
    assert tuple(REPRESENTERS) == REPRESENTATIONS


def _bare(settings: EvalSettings) -> Retrieval:
    r = Retrieval.__new__(Retrieval)  # no model or corpus: the stubbed representations need none
    r.runs, r.timings, r.settings = {}, {}, settings
    return r


def test_runs_are_memoised_and_hybrid_fuses_the_shared_runs(monkeypatch):
    calls = []
    dense_run, sparse_run = {"q": {"a": 1.0, "b": 0.5}}, {"q": {"b": 2.0, "c": 1.0}}
    monkeypatch.setitem(REPRESENTERS, "dense", lambda r: calls.append("dense") or dense_run)
    monkeypatch.setitem(REPRESENTERS, "sparse", lambda r: calls.append("sparse") or sparse_run)
    r = _bare(EvalSettings(top_k=3))
    got = r.run("hybrid")
    assert r.run("dense") is dense_run and r.run("hybrid") is got
    assert calls == ["dense", "sparse"]  # each shared run once, however many representations use it
    assert got == fuse(dense_run, sparse_run, method="linear", top_k=3, w_dense=0.7, w_sparse=0.3)
    assert set(r.timing("hybrid")) == {"fuse_s"}


def test_rrf_settings_reach_the_fusion(monkeypatch):
    monkeypatch.setitem(REPRESENTERS, "dense", lambda r: {"q": {"a": 1.0, "b": 0.5}})
    monkeypatch.setitem(REPRESENTERS, "sparse", lambda r: {"q": {"b": 2.0, "c": 1.0}})
    r = _bare(EvalSettings(top_k=3, fusion="rrf", rrf_k=5))
    assert r.run("hybrid") == fuse({"q": {"a": 1.0, "b": 0.5}}, {"q": {"b": 2.0, "c": 1.0}}, method="rrf", top_k=3, k=5)


def test_timed_accumulates():
    t: dict = {}
    for _ in range(2):
        with timed(t, "x"):
            pass
    assert set(t) == {"x"} and t["x"] >= 0
