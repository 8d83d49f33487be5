"""`lr serve` as a real child process over HTTP, and `lr loadtest` against it.

The bundle here is built without any model (lr_core.serve.bundle.write_bundle): SmolLM2's tokenizer, a
random vocabulary cache, and a SciFact subset whose documents are the mean of their tokens' cached
vectors (dense) and their token counts (sparse). Round trips against a trained model's evaluation
are in test_bundle.py; this file is about the HTTP service.
"""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse as sp

from lr_core.serve import loadtest
from lr_core.serve.server import start_server_process
from lr_core.serve.bundle import load_bundle
from lr_core.serve.bundle_write import write_bundle

from tests.helpers import write_subset


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, shared_data, tokenizer):
    from lr_core.data.beir import load_beir
    from lr_core.cache import CacheMetadata, VocabCache
    from lr_core.instructions import instruction_for

    tmp = tmp_path_factory.mktemp("server")
    data = load_beir(write_subset(shared_data, "scifact", tmp / "data", n_queries=10, n_extra_docs=40), "test")
    instruction = instruction_for("scifact")
    vocab, hidden = tokenizer.vocab_size, 32
    vectors = np.random.default_rng(0).standard_normal((vocab, hidden)).astype(np.float32)
    cache = VocabCache(vectors, CacheMetadata("synthetic", "-", tokenizer.fingerprint(), instruction, "float32",
                                              vocab, hidden))
    passages = list(data.corpus.values())
    body = tokenizer.doc_body_ids([p.title for p in passages], [p.text for p in passages])
    rows = np.repeat(np.arange(len(body)), [len(b) for b in body])
    counts = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, np.concatenate(body))), shape=(len(body), vocab))
    counts.sum_duplicates()
    counts.data = np.log1p(counts.data)
    path = write_bundle(tmp / "bundle", tokenizer, cache, list(data.corpus), cache.encode(body), counts,
                        dataset="scifact", instruction=instruction,
                        model_info={"variant": "synthetic", "backbone": "none"})
    return SimpleNamespace(path=path, data=data, data_dir=tmp / "data")


@pytest.fixture(scope="module")
def server(bundle):
    proc, url = start_server_process(bundle.path)
    try:
        yield SimpleNamespace(proc=proc, url=url)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def call(url: str, path: str, body=None, method: str | None = None) -> tuple[int, dict]:
    """(status, decoded JSON) of one request; ``body`` is bytes as sent, or an object sent as JSON."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    req = urllib.request.Request(url + path, data=data, method=method or ("GET" if data is None else "POST"))
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_search_over_http_equals_the_in_process_bundle(server, bundle):
    local = load_bundle(bundle.path)
    texts = list(bundle.data.queries.values())
    for mode in ("dense", "sparse", "hybrid"):
        status, body = call(server.url, "/search", {"queries": texts, "k": 7, "mode": mode})
        assert status == 200 and body["mode"] == mode and body["k"] == 7
        assert [r["query"] for r in body["results"]] == texts
        for got, want in zip(body["results"], local.search(texts, k=7, mode=mode)):
            assert [h["doc_id"] for h in got["hits"]] == [d for d, _ in want]
            assert [h["score"] for h in got["hits"]] == pytest.approx([s for _, s in want], abs=1e-6)
    # one query, defaults: hybrid, k=10
    status, body = call(server.url, "/search", {"query": texts[0]})
    assert status == 200 and body["mode"] == "hybrid" and body["k"] == 10 and len(body["results"]) == 1
    assert len(body["results"][0]["hits"]) == 10
    assert [h["doc_id"] for h in body["results"][0]["hits"]] == [d for d, _ in local.search(texts[:1], 10)[0]]


def test_a_documents_own_title_finds_it(server, bundle):
    """Sparse weights are the documents' token counts: a title query ranks its own document first."""
    docs = [(d, p.title) for d, p in bundle.data.corpus.items() if len(p.title.split()) >= 6][:12]
    status, body = call(server.url, "/search", {"queries": [t for _, t in docs], "k": 3, "mode": "hybrid"})
    assert status == 200
    top1 = sum(r["hits"][0]["doc_id"] == d for (d, _), r in zip(docs, body["results"]))
    assert top1 >= 0.75 * len(docs), top1


def test_health_and_the_process_never_loads_torch(server):
    assert call(server.url, "/search", {"query": "statins and heart disease", "mode": "dense"})[0] == 200
    status, health = call(server.url, "/health")
    assert status == 200 and health["status"] == "ok" and health["dataset"] == "scifact"
    assert health["modes"] == ["dense", "sparse", "hybrid"] and health["documents"] > 40
    assert health["llm_modules_loaded"] == [] and health["llm_free"] is True


BAD_REQUESTS = [
    (b"this is not json", 400, "not valid JSON"),
    (b"\xff\xfe\x00", 400, "not valid JSON"),
    (b"[1, 2]", 400, "JSON object"),
    ({}, 400, "exactly one of"),
    ({"query": "a", "queries": ["b"]}, 400, "exactly one of"),
    ({"query": ""}, 400, "empty"),
    ({"query": "   \n"}, 400, "empty"),
    ({"query": 42}, 400, "must be a string"),
    ({"query": None}, 400, "must be a string"),
    ({"queries": "one string"}, 400, "list of strings"),
    ({"queries": []}, 400, "empty"),
    ({"queries": ["fine", 7]}, 400, '"queries"[1] must be a string'),
    ({"queries": ["fine", ""]}, 400, '"queries"[1] is empty'),
    ({"queries": ["q"] * 257}, 413, "at most 256"),
    ({"query": "a", "k": 0}, 400, "between 1 and 1000"),
    ({"query": "a", "k": 1001}, 400, "between 1 and 1000"),
    ({"query": "a", "k": -5}, 400, "between 1 and 1000"),
    ({"query": "a", "k": "10"}, 400, "must be an integer"),
    ({"query": "a", "k": 2.5}, 400, "must be an integer"),
    ({"query": "a", "k": True}, 400, "must be an integer"),
    ({"query": "a", "mode": "magic"}, 400, "must be one of dense, sparse, hybrid"),
    ({"query": "a", "mode": ["dense"]}, 400, "must be one of"),
    ({"query": "a", "top_k": 3}, 400, "unknown field"),
    (b"{" + b" " * (1 << 20) + b"}", 413, "larger than"),
]


def test_bad_requests_get_json_4xx_and_the_server_survives(server):
    for body, status, message in BAD_REQUESTS:
        got, answer = call(server.url, "/search", body)
        assert got == status and message in answer["error"], (body[:60], got, answer)
    assert call(server.url, "/search", method="GET")[0] == 405
    assert call(server.url, "/nowhere")[0] == 404
    assert server.proc.poll() is None  # still running
    status, body = call(server.url, "/search", {"query": "vitamin d and bone density", "k": 2})
    assert status == 200 and len(body["results"][0]["hits"]) == 2
    assert call(server.url, "/health")[1]["errors"] >= len(BAD_REQUESTS) + 2


def test_concurrent_requests_all_succeed(server, bundle):
    texts = list(bundle.data.queries.values())
    jobs = [{"query": texts[i % len(texts)], "k": 5, "mode": ("dense", "sparse", "hybrid")[i % 3]} for i in range(48)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(lambda b: call(server.url, "/search", b), jobs))
    assert all(status == 200 and len(body["results"][0]["hits"]) == 5 for status, body in answers)


def test_concurrent_requests_are_joined_and_each_gets_its_own_answer(server, bundle):
    """Requests that arrive together share searches; every answer equals that request's search alone."""
    local = load_bundle(bundle.path)
    texts = list(bundle.data.queries.values())
    jobs = [{"query": texts[i % len(texts)], "k": (1, 5, 10, 30)[i % 4], "mode": ("dense", "sparse", "hybrid")[i % 3]}
            for i in range(96)]
    before = call(server.url, "/health")[1]["searches"]
    with ThreadPoolExecutor(max_workers=32) as pool:
        answers = list(pool.map(lambda b: call(server.url, "/search", b), jobs))
    searches = call(server.url, "/health")[1]["searches"] - before
    for job, (status, body) in zip(jobs, answers):
        assert status == 200 and body["k"] == job["k"] and body["mode"] == job["mode"]
        want = local.search([job["query"]], k=job["k"], mode=job["mode"])[0]
        assert [h["doc_id"] for h in body["results"][0]["hits"]] == [d for d, _ in want]
        assert [h["score"] for h in body["results"][0]["hits"]] == pytest.approx([s for _, s in want], abs=1e-6)
    assert searches < len(jobs)  # 32 clients at once: some searches served several requests


def test_a_failing_query_in_a_joined_batch_fails_only_its_request():
    import asyncio
    from concurrent.futures import ThreadPoolExecutor as Pool

    from lr_core.errors import DataError
    from lr_core.serve.server import SearchBatcher

    class Bundle:
        config = {"fusion": {"depth": 100}}
        calls = []

        def search(self, texts, k, mode):
            self.calls.append(list(texts))
            if "bad" in texts:
                raise DataError("query 'bad' has no tokens")
            return [[(f"{t}-{i}", 1.0 / (i + 1)) for i in range(k)] for t in texts]

    async def go():
        batcher = SearchBatcher(Bundle(), Pool(1))
        jobs = [(["a"], 2), (["bad"], 3), (["b", "c"], 1)]
        return await asyncio.gather(*(batcher.search(q, k, "dense") for q, k in jobs), return_exceptions=True)

    a, bad, bc = asyncio.run(go())
    assert a == [[("a-0", 1.0), ("a-1", 0.5)]] and bc == [[("b-0", 1.0)], [("c-0", 1.0)]]
    assert isinstance(bad, DataError)
    assert Bundle.calls[0] == ["a", "bad", "b", "c"]  # one joined search first, then each request alone


def test_loadtest_reports_every_level(server, bundle, tmp_path):
    out = tmp_path / "load.json"
    assert loadtest.main(["--url", server.url, "--concurrency", "1,4", "--requests", "24", "--mode", "dense",
                          "--data-dir", str(bundle.data_dir), "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["server"]["llm_free"] is True and report["settings"]["mode"] == "dense"
    assert [lvl["concurrency"] for lvl in report["levels"]] == [1, 4]
    for lvl in report["levels"]:
        assert lvl["ok"] == lvl["requests"] == 24 and lvl["errors"] == 0 and lvl["qps"] > 0
        lat = lvl["latency_ms"]
        assert 0 < lat["p50"] <= lat["p95"] <= lat["p99"] <= lat["max"]


def test_loadtest_can_start_its_own_server(bundle, tmp_path):
    out = tmp_path / "own.json"
    assert loadtest.main(["--bundle", str(bundle.path), "--concurrency", "2", "--requests", "10", "--batch", "3",
                          "--data-dir", str(bundle.data_dir), "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["started_server"] is True and report["url"].startswith("http://127.0.0.1:")
    assert report["levels"][0]["ok"] == 10 and report["levels"][0]["queries_per_s"] == pytest.approx(
        3 * report["levels"][0]["qps"], rel=0.01)
    mem = report["server_memory"]  # a python process with numpy/faiss loaded: tens of MB at least
    assert mem["processes"] == 1 and 20 < mem["rss_mb"] <= mem["peak_rss_mb"]
    size = sum(f.stat().st_size for f in bundle.path.rglob("*") if f.is_file()) / 2**20
    assert mem["bundle_mb"] == pytest.approx(size, abs=0.1) and mem["target_mb"] == pytest.approx(size + 300, abs=0.1)


@pytest.mark.parametrize("url", ["http://example.com:8000", "http://10.0.0.7:8000", "http://192.168.1.2",
                                 "http://0.0.0.0:8000", "ftp://127.0.0.1/", "127.0.0.1:8000"])
def test_loadtest_refuses_anything_but_loopback(url, tmp_path, capsys):
    assert loadtest.main(["--url", url, "--out", str(tmp_path / "x.json")]) == 2
    assert "error" in capsys.readouterr().err and not (tmp_path / "x.json").exists()


def test_loadtest_bounds():
    assert loadtest.check_loopback_url("http://localhost:8000/") == "http://localhost:8000"
    assert loadtest.check_loopback_url("http://[::1]:8000") == "http://[::1]:8000"
    assert loadtest.check_loopback_url("http://127.0.0.2:1") == "http://127.0.0.2:1"
    for levels in ("0", "1,300", "a,b", ""):
        with pytest.raises(loadtest.ConfigError):
            loadtest.parse_levels(levels)
    for argv in (["--requests", "0"], ["--requests", "1000000"], ["--duration", "0"], ["--batch", "0"]):
        assert loadtest.main(argv) == 2


def test_keep_alive_client_reads_length_chunked_and_closing_responses():
    """The load generator's own HTTP/1.1 client against a hand-written server: Content-Length
    (kept alive), chunked, and Connection: close (reconnects for the next request)."""
    import asyncio

    from lr_core.serve.loadtest import KeepAliveConnection, encode_post

    replies = [b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
               b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
               b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno"]
    seen = {"connections": 0, "requests": 0}

    async def handle(reader, writer):
        seen["connections"] += 1
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            reply = replies[seen["requests"] % len(replies)]
            seen["requests"] += 1
            writer.write(reply)
            await writer.drain()
            if b"Connection: close" in reply:
                writer.close()
                return

    async def go():
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        conn = KeepAliveConnection("127.0.0.1", port, timeout=10)
        request = encode_post(f"http://127.0.0.1:{port}", "/search", {"query": "x"})
        got = [await conn.post(request) for _ in range(4)]
        conn.close()
        server.close()
        return got

    got = asyncio.run(go())
    assert got == [(200, b"hello"), (200, b"abcde"), (503, b"no"), (200, b"hello")]
    assert seen["connections"] == 2  # one kept alive for three requests, a new one after the close
