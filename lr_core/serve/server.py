"""The LLM-free query server: an aiohttp app over a serving bundle (no torch, no transformers).

    lr serve bundles/scifact [--host 127.0.0.1] [--port 8000] [--max-batch 256] [--workers 1]

Endpoints (every answer, errors included, is JSON)::

    GET  /health   {"status": "ok", "dataset": ..., "documents": N, "modes": [...], "llm_free": true, ...}
    POST /search   {"query": "what causes scurvy?", "k": 10, "mode": "hybrid"}
                   {"queries": ["q1", "q2", ...], "k": 10, "mode": "dense"}
         -> 200    {"mode": "hybrid", "k": 10, "took_ms": 1.9,
                    "results": [{"query": "...", "hits": [{"doc_id": "d1", "score": 0.93}, ...]}, ...]}

``k`` is 1..1000 (default 10); ``mode`` is dense, sparse or hybrid (default: hybrid when the
bundle has both sides). A bad request (not JSON, wrong types, empty query, k out of range,
unknown mode or field, more than ``--max-batch`` queries, a body over 1 MiB) is answered 4xx
with ``{"error": "..."}``; an unexpected failure inside a search is a 500 with a JSON body and is
logged; the process keeps serving either way.

Searches run on a small thread pool (``--workers``, default 1) so the event loop stays free to
parse requests and answer /health while Faiss and SciPy (which release the GIL) compute. The
searches of requests that arrive while one runs are joined into one batch (same mode and fusion
depth; at most ``MAX_COALESCED`` queries): one pass over the dense vectors then serves them all,
which is what makes the server fast under concurrency (a single-query search is memory-bound).
Every request gets exactly the hits it would get alone; a query that fails in a joined batch is
retried alone, so one bad query fails only its own request.
``--port 0`` picks a free port; the first line on stdout is ``listening on http://HOST:PORT``.

>>> app = create_app(load_bundle("bundles/scifact"))     # doctest: +SKIP
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from lr_core.errors import ConfigError, DataError
from lr_core.serve.bundle import BundleError, ServingBundle, load_bundle

log = logging.getLogger(__name__)

MAX_K = 1000
DEFAULT_K = 10
DEFAULT_MAX_BATCH = 256
MAX_BODY_BYTES = 1 << 20
REQUEST_FIELDS = ("query", "queries", "k", "mode")
# A module name in sys.modules means the process loaded it; the server promises it never does.
LLM_MODULES = ("torch", "transformers")

MAX_COALESCED = 256  # most queries in one joined search

BUNDLE_KEY = web.AppKey("bundle", ServingBundle)
STATE_KEY = web.AppKey("state", dict)


class RequestError(Exception):
    """A client mistake: answered with ``status`` and a JSON message."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def llm_modules_loaded() -> list[str]:
    return [m for m in LLM_MODULES if m in sys.modules]


def parse_search_request(body, modes: tuple[str, ...], default_mode: str,
                         max_batch: int = DEFAULT_MAX_BATCH) -> tuple[list[str], int, str]:
    """Validate a decoded /search body; returns ``(queries, k, mode)`` or raises :class:`RequestError`."""
    if not isinstance(body, dict):
        raise RequestError(f"the body must be a JSON object, got {type(body).__name__}")
    unknown = sorted(set(body) - set(REQUEST_FIELDS))
    if unknown:
        raise RequestError(f"unknown field(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(REQUEST_FIELDS)}")
    if ("query" in body) == ("queries" in body):
        raise RequestError('give exactly one of "query" (a string) or "queries" (a list of strings)')
    if "query" in body:
        queries = [body["query"]]
        if not isinstance(body["query"], str):
            raise RequestError(f'"query" must be a string, got {type(body["query"]).__name__}')
    else:
        queries = body["queries"]
        if not isinstance(queries, list):
            raise RequestError(f'"queries" must be a list of strings, got {type(queries).__name__}')
        if not queries:
            raise RequestError('"queries" is empty')
        if len(queries) > max_batch:
            raise RequestError(f'"queries" holds {len(queries)} queries; at most {max_batch} per request', status=413)
        bad = next((i for i, q in enumerate(queries) if not isinstance(q, str)), None)
        if bad is not None:
            raise RequestError(f'"queries"[{bad}] must be a string, got {type(queries[bad]).__name__}')
    empty = next((i for i, q in enumerate(queries) if not q.strip()), None)
    if empty is not None:
        raise RequestError("the query is empty" if "query" in body else f'"queries"[{empty}] is empty')
    k = body.get("k", DEFAULT_K)
    if isinstance(k, bool) or not isinstance(k, int):
        raise RequestError(f'"k" must be an integer, got {json.dumps(k)}')
    if not 1 <= k <= MAX_K:
        raise RequestError(f'"k" must be between 1 and {MAX_K}, got {k}')
    mode = body.get("mode", default_mode)
    if not isinstance(mode, str) or mode not in modes:
        raise RequestError(f'"mode" must be one of {", ".join(modes)}, got {json.dumps(mode)}')
    return queries, k, mode


def _json_error(message: str, status: int, headers: dict | None = None) -> web.Response:
    return web.json_response({"error": message, "status": status}, status=status, headers=headers)


@web.middleware
async def json_errors(request: web.Request, handler):
    """aiohttp's own errors (404, 405, 413) as JSON; anything unexpected becomes a logged 500."""
    state = request.app[STATE_KEY]
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        state["errors"] += 1
        if exc.status < 400:
            raise
        keep = {h: v for h, v in exc.headers.items() if h.lower() == "allow"}  # 405 must say what is allowed
        message = exc.reason if exc.status != 413 else f"request body larger than {MAX_BODY_BYTES} bytes"
        return _json_error(message, exc.status, keep)
    except Exception:  # the server must outlive any single request
        state["errors"] += 1
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _json_error("internal server error", 500)
    if response.status >= 400:
        state["errors"] += 1
    return response


async def health(request: web.Request) -> web.Response:
    bundle = request.app[BUNDLE_KEY]
    state = request.app[STATE_KEY]
    cfg = bundle.config
    return web.json_response({
        "status": "ok", "dataset": cfg["dataset"], "documents": bundle.num_documents, "modes": list(bundle.modes),
        "default_mode": bundle.default_mode, "instruction": cfg["instruction"], "cache_dtype": cfg["cache_dtype"],
        "variant": cfg["model"].get("variant"), "backbone": cfg["model"].get("backbone"),
        "uptime_s": round(time.monotonic() - state["started"], 3), "requests": state["requests"],
        "errors": state["errors"], "searches": state["batcher"].batches if state.get("batcher") else 0,
        "llm_free": not llm_modules_loaded(), "llm_modules_loaded": llm_modules_loaded(),
    })


async def search(request: web.Request) -> web.Response:
    bundle = request.app[BUNDLE_KEY]
    state = request.app[STATE_KEY]
    state["requests"] += 1
    raw = await request.read()  # over client_max_size: aiohttp raises 413 (turned into JSON by json_errors)
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return _json_error(f"the body is not valid JSON ({exc})", 400)
    try:
        queries, k, mode = parse_search_request(body, bundle.modes, bundle.default_mode, state["max_batch"])
    except RequestError as exc:
        return _json_error(str(exc), exc.status)
    start = time.perf_counter()
    try:
        hits = await state["batcher"].search(queries, k, mode)
    except (DataError, ConfigError) as exc:  # e.g. a query the tokenizer maps to no token at all
        return _json_error(str(exc), 400)
    took = (time.perf_counter() - start) * 1000
    return web.json_response({
        "mode": mode, "k": k, "took_ms": round(took, 3),
        "results": [{"query": q, "hits": [{"doc_id": d, "score": s} for d, s in h]} for q, h in zip(queries, hits)],
    })


class SearchBatcher:
    """Joins the searches of concurrent requests (see the module docstring).

    >>> hits = await batcher.search(["what causes scurvy?"], 10, "hybrid")   # doctest: +SKIP
    """

    def __init__(self, bundle: ServingBundle, executor, max_queries: int = MAX_COALESCED):
        self.bundle, self.executor, self.max_queries = bundle, executor, max_queries
        self.pending: list[tuple[list[str], int, str, asyncio.Future]] = []
        self.draining = False
        self.batches = 0  # searches run (for /health and tests)

    def _group_key(self, k: int, mode: str):
        # hybrid lists are fused max(k, depth) deep and min-max normalised over that depth: only
        # requests with the same depth may share a search; dense and sparse take the largest k and cut
        if mode == "hybrid":
            return mode, max(k, int(self.bundle.config["fusion"]["depth"]))
        return mode, None

    async def search(self, queries: list[str], k: int, mode: str) -> list[list[tuple[str, float]]]:
        future = asyncio.get_running_loop().create_future()
        self.pending.append((queries, k, mode, future))
        if not self.draining:
            self.draining = True
            asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self.pending:
                taken, self.pending = self.pending, []
                groups: dict = {}
                for item in taken:
                    groups.setdefault(self._group_key(item[1], item[2]), []).append(item)
                for (mode, _), items in groups.items():
                    while items:
                        chunk, n = [], 0
                        while items and (not chunk or n + len(items[0][0]) <= self.max_queries):
                            chunk.append(items.pop(0))
                            n += len(chunk[-1][0])
                        await self._run(mode, chunk)
        finally:
            self.draining = False

    async def _run(self, mode: str, chunk: list) -> None:
        loop = asyncio.get_running_loop()
        texts = [q for queries, _, _, _ in chunk for q in queries]
        k = max(item[1] for item in chunk)
        self.batches += 1
        try:
            hits = await loop.run_in_executor(self.executor, self.bundle.search, texts, k, mode)
        except Exception as exc:
            if len(chunk) == 1:
                chunk[0][3].set_exception(exc)
                return
            for item in chunk:  # find the culprit: every request alone
                await self._run(mode, [item])
            return
        start = 0
        for queries, k_i, _, future in chunk:
            if not future.done():
                future.set_result([h[:k_i] for h in hits[start:start + len(queries)]])
            start += len(queries)


def create_app(bundle: ServingBundle, max_batch: int = DEFAULT_MAX_BATCH, workers: int = 1) -> web.Application:
    """The aiohttp application serving ``bundle`` (routes /health and /search)."""
    if max_batch < 1 or workers < 1:
        raise ConfigError(f"max_batch and workers must be >= 1, got {max_batch} and {workers}")
    app = web.Application(middlewares=[json_errors], client_max_size=MAX_BODY_BYTES)
    app[BUNDLE_KEY] = bundle
    app[STATE_KEY] = {"started": time.monotonic(), "requests": 0, "errors": 0, "max_batch": max_batch,
                      "executor": None}

    async def start_pool(app):
        executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="search")
        app[STATE_KEY]["executor"] = executor
        app[STATE_KEY]["batcher"] = SearchBatcher(bundle, executor)

    async def stop_pool(app):
        app[STATE_KEY]["executor"].shutdown(wait=True)

    app.on_startup.append(start_pool)
    app.on_cleanup.append(stop_pool)
    app.router.add_get("/health", health)
    app.router.add_post("/search", search)
    return app


async def serve(app: web.Application, host: str, port: int) -> None:
    """Run ``app`` until SIGINT/SIGTERM; prints ``listening on http://HOST:PORT`` once bound."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1] if runner.addresses else port
    print(f"listening on http://{host}:{bound}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def start_server_process(bundle: str | os.PathLike, host: str = "127.0.0.1", port: int = 0,
                         extra_args: list[str] | None = None, timeout: float = 120.0):
    """Start ``lr serve BUNDLE`` in a child process; returns ``(process, "http://HOST:PORT")`` once it listens.

    The child's stderr goes to a temporary file, shown in the error if it exits before listening.
    Stop it with ``process.terminate(); process.wait()``.
    """
    import select
    import subprocess
    import tempfile

    err = tempfile.TemporaryFile()
    cmd = [sys.executable, "-m", "lr_core.serve.server", str(bundle), "--host", host, "--port", str(port), *(extra_args or [])]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
    deadline = time.monotonic() + timeout
    line = ""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            line = proc.stdout.readline()
            if line.startswith("listening on "):
                return proc, line.split("listening on ", 1)[1].strip()
        if proc.poll() is not None:
            break
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    err.seek(0)
    message = err.read().decode(errors="replace").strip()
    raise RuntimeError(f"`lr serve {bundle}` did not start within {timeout:.0f} s (exit {proc.returncode}): "
                       f"{message or line or 'no output'}")


DESCRIPTION = "serve a bundle over HTTP without an LLM (POST /search, GET /health)"
EXAMPLE = "lr serve bundles/scifact --port 8000"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``lr serve`` (shared by ``lr``'s parser and :func:`build_parser`)."""
    p.add_argument("bundle", nargs="?", metavar="BUNDLE", help="directory written by `lr export-serving` (or --bundle)")
    p.add_argument("--bundle", dest="bundle_opt", metavar="BUNDLE", help="same as the BUNDLE positional")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default loopback; the API has no auth)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (0: pick a free one)")
    p.add_argument("--max-batch", type=int, default=DEFAULT_MAX_BATCH, help="most queries in one request")
    p.add_argument("--workers", type=int, default=1, help="search threads")
    p.add_argument("--no-verify", action="store_true", help="skip the sha256 check of the bundle files")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lr serve", description=DESCRIPTION, epilog=f"example: {EXAMPLE}")
    add_arguments(p)
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    return p


def main(argv: list[str] | None = None) -> int:
    """``lr serve``: blocks until interrupted; 2 when the bundle cannot be loaded."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    return run(args)


def run(args: argparse.Namespace) -> int:
    """Run ``lr serve`` with parsed arguments (logging is the caller's)."""
    if args.bundle and args.bundle_opt and args.bundle != args.bundle_opt:
        print(f"lr serve: error: the bundle given twice ({args.bundle!r} and {args.bundle_opt!r})", file=sys.stderr)
        return 2
    args.bundle = args.bundle or args.bundle_opt
    if not args.bundle:
        print("lr serve: error: give the bundle directory: BUNDLE (or --bundle BUNDLE)", file=sys.stderr)
        return 2
    try:
        bundle = load_bundle(args.bundle, verify=not args.no_verify)
        app = create_app(bundle, max_batch=args.max_batch, workers=args.workers)
    except (BundleError, ConfigError, DataError, FileNotFoundError) as exc:
        print(f"lr serve: error: {exc}", file=sys.stderr)
        return 2
    print(f"bundle {args.bundle}: {bundle.num_documents} documents of {bundle.config['dataset']}, "
          f"modes {', '.join(bundle.modes)}", file=sys.stderr, flush=True)
    try:
        asyncio.run(serve(app, args.host, args.port))
    except OSError as exc:  # port in use, address not available
        print(f"lr serve: error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
