"""The mteb wrapper: query/document routing, local tasks, and an end-to-end run checked
against lr_core.retrieval.metrics on the same vectors."""
from __future__ import annotations

from pathlib import Path

import mteb
import numpy as np
import pytest
import torch

from lr_core.data.beir import load_beir
from lr_core.retrieval.tasks import TASKS, get_task
from lr_core.cache import CacheMetadata, VocabCache
from lr_core.errors import CacheMismatchError, ConfigError
from lr_core.retrieval.metrics import evaluate_run
from lr_core.retrieval.mteb_integration import LightRetrieverMTEB, local_retrieval_task, run_mteb
from mteb.types import PromptType

from tests.helpers import write_beir_slice

SCIFACT = TASKS["scifact"].instruction


# -- registry versus the installed mteb ----------------------------------------------------
def test_registry_matches_mteb_task_metadata():
    for b in TASKS.values():
        if b.mteb_name is None:
            continue
        task = mteb.get_task(b.mteb_name)
        assert task.metadata.eval_splits == [b.eval_split], b.name
        subtasks = getattr(task.metadata, "tasks", None) or [task]  # CQADupstackRetrieval aggregates 12 tasks
        for sub in subtasks:
            assert get_task(sub.metadata.name) is b
            # mteb gives the CQADupStack sub-forum tasks no prompt; the registry supplies it.
            if sub.metadata.prompt is not None:
                assert sub.metadata.prompt["query"] == b.instruction, sub.metadata.name


# -- helpers ---------------------------------------------------------------------------------
def partial_cache(encoder, instruction: str, texts) -> VocabCache:
    """A vocabulary cache whose rows are real for the tokens of ``texts`` (zero elsewhere):
    the same vectors ``build_vocab_cache`` computes, without encoding all 49k ids in a test."""
    tok = encoder.tokenizer
    ids = sorted({t for q in tok.light_query_ids(list(texts)) for t in q})
    vectors = np.zeros((tok.vocab_size, encoder.hidden_size), dtype=np.float32)
    vectors[ids] = encoder.token_vectors_block(instruction, torch.tensor(ids)).numpy()
    meta = CacheMetadata("tiny-llama", "random-seed-0", tok.fingerprint(), instruction, "float32",
                         tok.vocab_size, encoder.hidden_size)
    return VocabCache(vectors, meta)


class LLMCallCounter:
    """Counts forward passes of the transformer stack (a forward pre-hook on the decoder)."""

    def __init__(self, encoder):
        self.calls = 0
        self.handle = encoder.decoder.register_forward_pre_hook(self._hook)

    def _hook(self, module, args):
        self.calls += 1

    def close(self):
        self.handle.remove()


@pytest.fixture
def llm_calls(tiny_encoder):
    counter = LLMCallCounter(tiny_encoder)
    yield counter
    counter.close()


QUERIES = ["Do cells divide by mitosis?", "BM25 beats dense retrieval", "0-dimensional biomaterials show inductive properties."]
DOCS = [{"title": "Mitosis", "body": "Cells divide."}, {"title": "", "body": "A text without a title."},
        {"title": "Retrieval", "body": "Sparse and dense retrievers compared on BEIR."}]


def query_loader(texts, batch_size=2):
    """What mteb's query dataloader yields: dicts of lists with ``id`` and ``text``."""
    return [{"id": [f"q{i}" for i in range(lo, min(lo + batch_size, len(texts)))], "text": texts[lo:lo + batch_size]}
            for lo in range(0, len(texts), batch_size)]


def doc_loader(docs, batch_size=2):
    """What mteb's corpus dataloader yields: ``text`` = title + " " + body, plus ``body``/``title``."""
    out = []
    for lo in range(0, len(docs), batch_size):
        chunk = docs[lo:lo + batch_size]
        out.append({"id": [f"d{lo + i}" for i in range(len(chunk))],
                    "text": [f"{d['title']} {d['body']}".strip() for d in chunk],
                    "body": [d["body"] for d in chunk], "title": [d["title"] for d in chunk]})
    return out


# -- routing ---------------------------------------------------------------------------------
def test_is_an_mteb_encoder(tiny_encoder):
    from mteb.models import EncoderProtocol

    w = LightRetrieverMTEB(tiny_encoder)
    assert isinstance(w, EncoderProtocol)
    meta = w.mteb_model_meta
    assert meta.name == "lightretriever/light" and meta.embed_dim == tiny_encoder.hidden_size
    with pytest.raises(ValueError, match="mode"):
        LightRetrieverMTEB(tiny_encoder, mode="dense")


def test_light_queries_with_cache_never_call_the_llm(tiny_encoder, llm_calls, monkeypatch):
    cache = partial_cache(tiny_encoder, SCIFACT, QUERIES)
    w = LightRetrieverMTEB(tiny_encoder, cache=cache, batch_size=2)

    def forbidden(*a, **k):
        raise AssertionError("the LLM query encoders must not run when a cache is given")

    monkeypatch.setattr(tiny_encoder, "encode_light_queries", forbidden)
    monkeypatch.setattr(tiny_encoder, "encode_full_queries", forbidden)
    llm_calls.calls = 0
    got = w.encode(query_loader(QUERIES), task_metadata=mteb.get_task("SciFact").metadata, hf_split="test",
                   hf_subset="default", prompt_type=PromptType.query)
    assert llm_calls.calls == 0
    assert got.dtype == np.float32 and got.shape == (3, tiny_encoder.hidden_size)
    np.testing.assert_allclose(got, cache.encode(tiny_encoder.tokenizer.light_query_ids(QUERIES)), rtol=0, atol=0)
    monkeypatch.undo()
    # The online lookup equals the training-time light vector (METHOD.md section 2 invariant).
    with torch.no_grad():
        light = tiny_encoder.encode_light_queries(QUERIES, SCIFACT).numpy()
    np.testing.assert_allclose(got, light, atol=2e-5)


def test_light_queries_without_cache_symmetric_queries_and_documents(tiny_encoder, llm_calls, monkeypatch):
    meta = mteb.get_task("SciFact").metadata
    kw = dict(task_metadata=meta, hf_split="test", hf_subset="default")
    with torch.no_grad():
        light = tiny_encoder.encode_light_queries(QUERIES, SCIFACT).numpy()
        full = tiny_encoder.encode_full_queries(QUERIES, SCIFACT).numpy()
        dense = tiny_encoder.encode_documents([d["title"] for d in DOCS], [d["body"] for d in DOCS],
                                              dense=True, sparse=False)["dense"].numpy()

    light_w = LightRetrieverMTEB(tiny_encoder, batch_size=2)
    np.testing.assert_allclose(light_w.encode(query_loader(QUERIES), prompt_type=PromptType.query, **kw), light,
                               atol=1e-5)
    sym_w = LightRetrieverMTEB(tiny_encoder, mode="symmetric", batch_size=2)
    np.testing.assert_allclose(sym_w.encode(query_loader(QUERIES), prompt_type="query", **kw), full, atol=1e-5)
    assert not np.allclose(light, full, atol=1e-3)  # the two modes really differ

    def forbidden(*a, **k):
        raise AssertionError("documents must not go through a query encoder")

    monkeypatch.setattr(tiny_encoder, "encode_light_queries", forbidden)
    monkeypatch.setattr(tiny_encoder, "encode_full_queries", forbidden)
    cache = partial_cache(tiny_encoder, SCIFACT, QUERIES)
    for w in (light_w, sym_w, LightRetrieverMTEB(tiny_encoder, cache=cache, batch_size=1)):
        llm_calls.calls = 0
        got = w.encode(doc_loader(DOCS), prompt_type=PromptType.document, **kw)
        assert llm_calls.calls >= 1  # documents always use the full encoder
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, dense, atol=1e-5)
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    # A corpus without titles: mteb then gives only text/body.
    untitled = [{k: v for k, v in b.items() if k != "title"} for b in doc_loader(DOCS)]
    for b in untitled:
        b["text"] = b["body"]
    with torch.no_grad():
        no_title = tiny_encoder.encode_documents([""] * 3, [d["body"] for d in DOCS])["dense"].numpy()
    np.testing.assert_allclose(light_w.encode(untitled, prompt_type=PromptType.document, **kw), no_title, atol=1e-5)


def test_instruction_comes_from_the_task_or_an_override(tiny_encoder, tmp_path):
    w = LightRetrieverMTEB(tiny_encoder)
    assert w.instruction_for_task(mteb.get_task("NFCorpus").metadata) == TASKS["nfcorpus"].instruction
    assert w.instruction_for_task(mteb.get_task("CQADupstackGisRetrieval").metadata) == \
        TASKS["cqadupstack"].instruction
    assert LightRetrieverMTEB(tiny_encoder, instruction="Find it").instruction_for_task(
        mteb.get_task("NFCorpus").metadata) == "Find it"
    with pytest.raises(KeyError, match="unknown benchmark"):
        w.instruction_for_task(mteb.get_task("STS12").metadata)

    # A cache for one instruction is refused for a task with another (no silent LLM fall-back).
    cache = partial_cache(tiny_encoder, SCIFACT, QUERIES)
    cw = LightRetrieverMTEB(tiny_encoder, cache=cache)
    with pytest.raises(CacheMismatchError, match="no vocabulary cache"):
        cw.encode(query_loader(QUERIES), task_metadata=mteb.get_task("NFCorpus").metadata, hf_split="test",
                  hf_subset="default", prompt_type=PromptType.query)
    with pytest.raises(ValueError, match="symmetric"):
        LightRetrieverMTEB(tiny_encoder, cache=cache, mode="symmetric")
    bad = VocabCache(cache.vectors, CacheMetadata(**{**cache.metadata.__dict__, "tokenizer_hash": "other"}))
    with pytest.raises(CacheMismatchError, match="tokenizer"):
        LightRetrieverMTEB(tiny_encoder, cache=bad)


# -- local tasks and the end-to-end run ----------------------------------------------------------
@pytest.fixture(scope="module")
def small_scifact(shared_data, tmp_path_factory) -> Path:
    """20 SciFact test queries, their relevant documents and distractors: 50 documents."""
    return write_beir_slice(shared_data, "scifact", tmp_path_factory.mktemp("beir"), n_queries=20, n_docs=50)


def test_local_retrieval_task_reads_beir_files(small_scifact, tiny_encoder, tmp_path):
    task = local_retrieval_task(small_scifact)
    assert task.metadata.name == "scifact" and task.metadata.eval_splits == ["test"]
    assert task.metadata.prompt == {"query": SCIFACT} and task.ignore_identical_ids is False
    task.load_data()
    split = task.dataset["default"]["test"]
    ds = load_beir(small_scifact, "test")
    assert list(split["queries"]["id"]) == list(ds.queries) and list(split["corpus"]["id"]) == list(ds.corpus)
    assert split["relevant_docs"] == ds.qrels

    # An unregistered directory needs an instruction, which then reaches the wrapper.
    other = tmp_path / "my_set"
    other.mkdir()
    for name in ("corpus.jsonl", "queries.jsonl", "qrels"):
        (other / name).symlink_to(small_scifact / name)
    with pytest.raises(ConfigError, match="instruction"):
        local_retrieval_task(other)
    t2 = local_retrieval_task(other, instruction="Given a claim, find papers", name="MySet")
    assert t2.metadata.name == "MySet"
    assert LightRetrieverMTEB(tiny_encoder).instruction_for_task(t2.metadata) == "Given a claim, find papers"


class RecordingWrapper(LightRetrieverMTEB):
    """Keeps every vector mteb asked for, with the ids of its dataloader rows."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.seen = {"query": ([], []), "document": ([], [])}

    def encode(self, inputs, **kw):
        inputs = list(inputs)
        vecs = super().encode(inputs, **kw)
        ids, chunks = self.seen[getattr(kw.get("prompt_type"), "value", "query")]
        ids.extend(i for b in inputs for i in b["id"])
        chunks.append(vecs)
        return vecs


@pytest.mark.parametrize("mode", ["light-cached", "symmetric"])
def test_mteb_end_to_end_matches_lr_core_metrics(small_scifact, tiny_encoder, tmp_path, mode, llm_calls):
    ds = load_beir(small_scifact, "test")
    if mode == "light-cached":
        w = RecordingWrapper(tiny_encoder, cache=partial_cache(tiny_encoder, SCIFACT, ds.queries.values()),
                             batch_size=16)
    else:
        w = RecordingWrapper(tiny_encoder, mode="symmetric", batch_size=16)
    llm_calls.calls = 0
    res = run_mteb(w, local_retrieval_task(small_scifact), tmp_path / "mteb")
    assert res["task"] == "scifact" and res["split"] == "test" and res["main_score"] == res["ndcg_at_10"]
    assert Path(res["results_path"]).is_file() and Path(res["predictions_path"]).is_file()
    n_doc_batches = -(-len(ds.corpus) // 16)
    assert llm_calls.calls == (n_doc_batches if mode == "light-cached" else n_doc_batches + -(-len(ds.queries) // 16))

    qids, qchunks = w.seen["query"]
    dids, dchunks = w.seen["document"]
    assert qids == list(ds.queries) and sorted(dids) == sorted(ds.corpus)
    q, d = np.concatenate(qchunks), np.concatenate(dchunks)
    # Same vectors as encoding directly with lr_core, outside mteb.
    with torch.no_grad():
        direct_q = (w.caches[SCIFACT].encode(tiny_encoder.tokenizer.light_query_ids(list(ds.queries.values())))
                    if mode == "light-cached" else
                    tiny_encoder.encode_full_queries(list(ds.queries.values()), SCIFACT).numpy())
    np.testing.assert_allclose(q, direct_q, atol=1e-5)

    scores = q @ d.T
    run = {qid: {did: float(s) for did, s in zip(dids, row)} for qid, row in zip(qids, scores)}
    # mteb keeps identical query/doc ids for SciFact (lr_core drops them by default) and rounds to 5 decimals.
    ours = evaluate_run(ds.qrels, run, ks_ndcg=(10, 100), ks_recall=(20, 100), ignore_identical_ids=False)
    assert abs(ours["ndcg@10"] - res["ndcg_at_10"]) < 1e-3
    assert abs(ours["ndcg@100"] - res["ndcg_at_100"]) < 1e-3
    assert abs(ours["recall@20"] - res["recall_at_20"]) < 1e-3
    assert abs(ours["recall@100"] - res["recall_at_100"]) < 1e-3
    assert abs(ours["mrr@10"] - res["mrr_at_10"]) < 1e-3
    assert ours["num_queries"] == 20
