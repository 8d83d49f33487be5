"""A bounded load generator for the local query server: QPS and latency percentiles per concurrency.

    lr loadtest --url http://127.0.0.1:8000 --out reports/benchmarks/loadtest.json
    lr loadtest --bundle bundles/scifact --concurrency 1,4,16,64 --requests 2000 --out DIR/loadtest.json

``--bundle`` starts ``lr serve BUNDLE`` on a free loopback port for the run and stops it after;
``--url`` targets a server already running. Only loopback hosts (127.0.0.0/8, ::1, localhost) are
accepted: this tool is for measuring the local server, never for loading somebody else's.

For each concurrency level C, C client coroutines (one keep-alive HTTP/1.1 connection each, a lean
client: :class:`KeepAliveConnection`) share one budget of ``--requests`` requests
(each a POST /search of one query, or ``--batch`` queries, cycled from the SciFact test queries or
``--query-file``) and stop early after ``--duration`` seconds. A few warm-up requests first are
not counted. Reported per level: requests sent, successes, errors by status, wall seconds, QPS
(successful requests per second, and queries per second when batching) and latency in ms (mean,
p50, p95, p99, max) of the successful requests. The JSON also records the server's /health and,
with ``--bundle``, the server's peak resident memory next to the bundle size (target: bundle + 300 MB).
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as _dt
import ipaddress
import os
import platform
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

from lr_core.errors import ConfigError, DataError

DEFAULT_LEVELS = (1, 4, 16, 64)
MAX_CONCURRENCY = 256
MAX_REQUESTS = 100_000
MAX_DURATION_S = 600.0
WARMUP_REQUESTS = 5


def check_loopback_url(url: str) -> str:
    """``url`` without a trailing slash, if it is http(s) on a loopback host; else :class:`ConfigError`."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"--url must look like http://127.0.0.1:8000, got {url!r}")
    host = parts.hostname
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name other than localhost: never resolved, never loaded
        loopback = False
    if not loopback:
        raise ConfigError(f"refusing to load non-loopback host {host!r}: the load test only targets a local server "
                          "(127.0.0.1, ::1 or localhost)")
    return url.rstrip("/")


def _proc_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (Linux /proc), so ``--server-workers N`` counts every worker."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").iterdir():
            children = (task / "children").read_text().split()
            todo += [int(c) for c in children]
    return out


def server_memory(pid: int, bundle: str | os.PathLike) -> dict | None:
    """Peak and current resident memory (MB) of the server process tree, beside the bundle's size
    and the target (bundle + 300 MB); ``None`` where /proc is not available (not Linux)."""
    if not Path(f"/proc/{pid}/status").exists():
        return None
    pids = _process_tree(pid)
    peak = sum(_proc_kb(p, "VmHWM") for p in pids) / 1024
    rss = sum(_proc_kb(p, "VmRSS") for p in pids) / 1024
    bundle_mb = sum(f.stat().st_size for f in Path(bundle).rglob("*") if f.is_file()) / 2**20
    return {"processes": len(pids), "peak_rss_mb": round(peak, 1), "rss_mb": round(rss, 1),
            "bundle_mb": round(bundle_mb, 1), "target_mb": round(bundle_mb + 300, 1),
            "peak_within_target": peak <= bundle_mb + 300}


def parse_levels(text: str) -> list[int]:
    try:
        levels = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"--concurrency must be comma-separated integers, got {text!r}") from None
    if not levels or any(not 1 <= c <= MAX_CONCURRENCY for c in levels):
        raise ConfigError(f"--concurrency levels must be between 1 and {MAX_CONCURRENCY}, got {text!r}")
    return levels


def load_query_texts(query_file: str | None, dataset: str, data_dir: str | None) -> list[str]:
    if query_file:
        from lr_core.data.beir import read_query_file

        texts = read_query_file(query_file)
    else:
        from lr_core.data.beir import load_beir

        texts = list(load_beir(dataset, "test", data_dir=data_dir, load_corpus=False).queries.values())
    texts = [t for t in texts if t.strip()]
    if not texts:
        raise DataError("no queries for the load test")
    return texts


def latency_summary(seconds: list[float]) -> dict:
    if not seconds:
        return {"mean": None, "p50": None, "p95": None, "p99": None, "max": None}
    ms = np.asarray(seconds) * 1000.0
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return {"mean": round(float(ms.mean()), 3), "p50": round(float(p50), 3), "p95": round(float(p95), 3),
            "p99": round(float(p99), 3), "max": round(float(ms.max()), 3)}


class KeepAliveConnection:
    """One keep-alive HTTP/1.1 connection on asyncio streams: the load generator's client.

    The generator shares the machine with the server it measures, so its own CPU per request
    counts against the server; this costs a fraction of a general HTTP client's (pre-encoded
    requests, Content-Length or chunked bodies, nothing else). A failed or timed-out exchange
    closes the connection and the next request opens a new one.
    """

    def __init__(self, host: str, port: int, timeout: float):
        self.host, self.port, self.timeout = host, port, timeout
        self.reader = self.writer = None

    async def post(self, request: bytes) -> tuple[int, bytes]:
        try:
            return await asyncio.wait_for(self._exchange(request), self.timeout)
        except BaseException:
            self.close()
            raise

    async def _exchange(self, request: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(request)
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionResetError("the server closed the connection")
        status = int(status_line.split(b" ", 2)[1])
        length, chunked, close = None, False, False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value:
                chunked = True
            elif name == b"connection" and value == b"close":
                close = True
        if chunked:
            parts = []
            while True:
                size = int((await self.reader.readline()).split(b";")[0], 16)
                chunk = await self.reader.readexactly(size + 2)
                if size == 0:
                    break
                parts.append(chunk[:-2])
            body = b"".join(parts)
        elif length is not None:
            body = await self.reader.readexactly(length)
        else:
            body, close = await self.reader.read(), True
        if close:
            self.close()
        return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def encode_post(url: str, path: str, payload: dict) -> bytes:
    """A complete HTTP/1.1 POST of ``payload`` as JSON (keep-alive)."""
    import json

    body = json.dumps(payload).encode()
    host = urlsplit(url).netloc
    return (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


async def run_level(url: str, concurrency: int, requests: int, duration: float, payloads: list[dict],
                    queries_per_request: int, timeout: float = 60.0) -> dict:
    """``concurrency`` workers, one keep-alive connection each, share ``requests`` requests (or stop after ``duration`` s)."""
    parts = urlsplit(url)
    encoded = [encode_post(url, "/search", p) for p in payloads]
    tickets = iter(range(requests))  # each worker takes the next request number; shared, so none is sent twice
    latencies: list[float] = []
    statuses: Counter = Counter()
    start = time.perf_counter()

    async def worker():
        conn = KeepAliveConnection(parts.hostname, parts.port or 80, timeout)
        try:
            for i in tickets:
                if time.perf_counter() - start > duration:
                    return
                t0 = time.perf_counter()
                try:
                    code, _ = await conn.post(encoded[i % len(encoded)])
                    status = str(code)
                except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
                    status = type(exc).__name__
                if status == "200":
                    latencies.append(time.perf_counter() - t0)
                statuses[status] += 1
        finally:
            conn.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - start
    ok = statuses.get("200", 0)
    return {"concurrency": concurrency, "requests": sum(statuses.values()), "ok": ok,
            "errors": sum(statuses.values()) - ok, "status_counts": dict(statuses), "wall_s": round(wall, 4),
            "qps": round(ok / wall, 2) if wall > 0 else None,
            "queries_per_s": round(ok * queries_per_request / wall, 2) if wall > 0 else None,
            "latency_ms": latency_summary(latencies)}


async def run_loadtest(url: str, levels: list[int], requests: int, duration: float, payloads: list[dict],
                       queries_per_request: int, timeout: float) -> tuple[dict, list[dict]]:
    import aiohttp

    client_timeout = aiohttp.ClientTimeout(total=timeout)
    connector = aiohttp.TCPConnector(limit=max(levels))
    async with aiohttp.ClientSession(timeout=client_timeout, connector=connector) as session:
        try:
            async with session.get(url + "/health") as resp:
                health = await resp.json()
                if resp.status != 200:
                    raise ConfigError(f"{url}/health answered {resp.status}: {health}")
        except aiohttp.ClientError as exc:
            raise ConfigError(f"no server at {url} ({exc}); start one with `lr serve BUNDLE` or pass --bundle") from None
        for p in payloads[:WARMUP_REQUESTS]:  # not measured: connection set-up, first-request paths
            async with session.post(url + "/search", json=p) as resp:
                body = await resp.read()
                if resp.status != 200:
                    raise ConfigError(f"the warm-up request failed with {resp.status}: {body[:300]!r}")
    results = [await run_level(url, c, requests, duration, payloads, queries_per_request, timeout) for c in levels]
    return health, results


DESCRIPTION = "QPS and latency percentiles of the local query server, per concurrency level (loopback only)"
EXAMPLE = "lr loadtest bundles/scifact --concurrency 1,4,16,64 --requests 2000"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``lr loadtest`` (shared by ``lr``'s parser and :func:`_parser`)."""
    p.add_argument("bundle_pos", nargs="?", metavar="BUNDLE", help="same as --bundle BUNDLE")
    target = p.add_mutually_exclusive_group()
    target.add_argument("--url", default=None, help="a running local server (default http://127.0.0.1:8000)")
    target.add_argument("--bundle", help="start `lr serve BUNDLE` on a free loopback port for this run")
    p.add_argument("--server-workers", type=int, default=1, help="with --bundle: the server's --workers")
    p.add_argument("--concurrency", default=",".join(map(str, DEFAULT_LEVELS)),
                   help="comma-separated concurrency levels (default 1,4,16,64)")
    p.add_argument("--requests", type=int, default=1000, help=f"requests per level (at most {MAX_REQUESTS})")
    p.add_argument("--duration", type=float, default=60.0, help=f"seconds per level at most (<= {MAX_DURATION_S:.0f})")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--mode", default=None, help="dense, sparse or hybrid (default: the server's)")
    p.add_argument("--batch", type=int, default=1, help="queries per request")
    p.add_argument("--dataset", default="scifact", help="whose test queries to send (default scifact)")
    p.add_argument("--data-dir", help="where --dataset lives (default: $LR_DATA_DIR)")
    p.add_argument("--query-file", help="queries from a file instead (one per line, or JSONL with 'text')")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per request before it counts as an error")
    p.add_argument("--out", type=Path, default=Path("reports/benchmarks/loadtest.json"), help="JSON report path")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lr loadtest", description=DESCRIPTION, epilog=f"example: {EXAMPLE}")
    add_arguments(p)
    return p


def main(argv: list[str] | None = None) -> int:
    """``lr loadtest``: writes the JSON report; 2 on a user error (non-loopback host, bad bounds, no server)."""
    return run(_parser().parse_args(argv), argv)


def run(args: argparse.Namespace, argv: list[str] | None = None) -> int:
    """Run ``lr loadtest`` with parsed arguments; ``argv`` is recorded in the report."""
    from lr_core.io import atomic_write_json

    proc = memory = None
    try:
        if args.bundle_pos:
            if (args.bundle and args.bundle != args.bundle_pos) or args.url:
                raise ConfigError("give one target: BUNDLE (or --bundle BUNDLE), or --url URL")
            args.bundle = args.bundle_pos
        url = check_loopback_url(args.url or "http://127.0.0.1:8000")
        levels = parse_levels(args.concurrency)
        if not 1 <= args.requests <= MAX_REQUESTS:
            raise ConfigError(f"--requests must be between 1 and {MAX_REQUESTS}, got {args.requests}")
        if not 0 < args.duration <= MAX_DURATION_S:
            raise ConfigError(f"--duration must be in (0, {MAX_DURATION_S:.0f}] seconds, got {args.duration}")
        if args.batch < 1:
            raise ConfigError(f"--batch must be >= 1, got {args.batch}")
        texts = load_query_texts(args.query_file, args.dataset, args.data_dir)
        extra = {"k": args.k, **({"mode": args.mode} if args.mode else {})}
        if args.batch == 1:
            payloads = [{"query": t, **extra} for t in texts]
        else:
            payloads = [{"queries": [texts[(i + j) % len(texts)] for j in range(args.batch)], **extra}
                        for i in range(0, len(texts), args.batch)]
        if args.bundle:
            from lr_core.serve.server import start_server_process

            proc, url = start_server_process(args.bundle, extra_args=["--workers", str(args.server_workers)])
        health, results = asyncio.run(run_loadtest(url, levels, args.requests, args.duration, payloads, args.batch,
                                                   args.timeout))
        if proc is not None:  # read before the server stops: peak RSS over the whole run
            memory = server_memory(proc.pid, args.bundle)
    except (ConfigError, DataError, FileNotFoundError, RuntimeError) as exc:
        print(f"lr loadtest: error: {exc}", file=sys.stderr)
        return 2
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
    report = {"benchmark": "loadtest", "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
              "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(),
                          "python": platform.python_version()},
              "command": " ".join(["lr", "loadtest", *(argv if argv is not None else sys.argv[1:])]),
              "url": url, "server": health, "started_server": bool(args.bundle), "server_memory": memory,
              "settings": {"levels": levels, "requests_per_level": args.requests, "max_duration_s": args.duration,
                           "k": args.k, "mode": args.mode or health.get("default_mode"), "queries_per_request": args.batch,
                           "distinct_queries": len(texts), "timeout_s": args.timeout,
                           "warmup_requests": min(WARMUP_REQUESTS, len(payloads))},
              "levels": results}
    path = atomic_write_json(args.out, report)
    for r in results:
        lat = r["latency_ms"]
        print(f"concurrency {r['concurrency']:>3}: {r['ok']:>6} ok, {r['errors']} errors, {r['qps']:>9} QPS, "
              f"p50 {lat['p50']} ms, p95 {lat['p95']} ms, p99 {lat['p99']} ms")
    print(f"report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
