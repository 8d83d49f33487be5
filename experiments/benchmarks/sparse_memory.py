"""Peak CPU memory and wall time of the sparse doc-vector forward+backward: fused vs naive.

Usage::

    python -m experiments.benchmarks.sparse_memory --out reports/benchmarks/sparse_memory.json \
        [--batch 2 --length 512 --vocab 49152 --hidden 576 --chunk-size 16 --threads 1]

Each implementation runs in its own fresh Python subprocess so that neither
inherits the other's allocator state. In the child, the inputs are allocated
(hidden [B,L,H] with requires_grad, LM head weight [V,H] frozen as under LoRA,
all-True mask), a tiny warm-up run initialises lazy kernel state, and then:

* peak memory = peak RSS during forward+backward minus the RSS just before it.
  On Linux the kernel's high-water mark is reset first (``echo 5 >
  /proc/self/clear_refs``) and read back as VmHWM from /proc/self/status, so
  earlier transient peaks (import, input creation) cannot hide or inflate the
  measurement. Where that is unavailable it falls back to
  ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` minus the baseline peak; the
  JSON names the method used.
* wall time = median over ``--repeats`` forward+backward runs (first one is the
  memory run).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from experiments.benchmarks.common import write_json_atomic

MODES = ("fused", "naive")
_REPO_ROOT = Path(__file__).resolve().parents[2]


def _read_status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_hwm() -> bool:
    """Reset the kernel's peak-RSS counter to the current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return _read_status_kb("VmHWM") is not None
    except OSError:
        return False


def _maxrss_kb() -> int:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r // 1024 if sys.platform == "darwin" else r  # macOS reports bytes


def _child(args) -> dict:
    import torch

    from lr_core.sparse import naive_sparse_doc_vectors, sparse_doc_vectors

    torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)

    def step(hidden, weight, mask):
        if args.mode == "fused":
            out = sparse_doc_vectors(hidden, weight, mask, chunk_size=args.chunk_size)
        else:
            out = naive_sparse_doc_vectors(hidden, weight, mask)
        out.sum().backward()
        return out

    # Warm-up on tiny inputs: lazy kernel/threadpool setup is not what we measure.
    wh = torch.randn(1, 4, args.hidden, dtype=dtype, requires_grad=True)
    step(wh, torch.randn(8, args.hidden, dtype=dtype), torch.ones(1, 4, dtype=torch.bool))
    del wh

    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(args.batch, args.length, args.hidden, generator=g, dtype=dtype)
    hidden.requires_grad_(True)
    weight = (torch.randn(args.vocab, args.hidden, generator=g, dtype=dtype) * 0.05)
    mask = torch.ones(args.batch, args.length, dtype=torch.bool)
    gc.collect()

    use_hwm = _reset_hwm()
    base_kb = _read_status_kb("VmRSS") if use_hwm else _maxrss_kb()
    t0 = time.perf_counter()
    out = step(hidden, weight, mask)
    times = [time.perf_counter() - t0]
    peak_kb = _read_status_kb("VmHWM") if use_hwm else _maxrss_kb()
    checksum = {"out_sum": float(out.double().sum()), "grad_sum": float(hidden.grad.double().sum())}
    del out
    for _ in range(args.repeats - 1):
        hidden.grad = None
        t0 = time.perf_counter()
        step(hidden, weight, mask)
        times.append(time.perf_counter() - t0)

    return {
        "mode": args.mode,
        "memory_method": (
            "VmHWM after clear_refs reset minus VmRSS baseline" if use_hwm
            else "ru_maxrss growth over baseline ru_maxrss"
        ),
        "baseline_mb": base_kb / 1024,
        "peak_mb": max(0, peak_kb - base_kb) / 1024,
        "wall_s_first": times[0],
        "wall_s_median": statistics.median(times),
        "wall_s_all": times,
        **checksum,
    }


def _size_args(args) -> list[str]:
    return [
        "--batch", str(args.batch), "--length", str(args.length), "--vocab", str(args.vocab),
        "--hidden", str(args.hidden), "--chunk-size", str(args.chunk_size),
        "--threads", str(args.threads), "--dtype", args.dtype, "--repeats", str(args.repeats),
    ]


def _run_child(mode: str, args) -> dict:
    cmd = [sys.executable, "-m", "experiments.benchmarks.sparse_memory", "--child", mode,
           *_size_args(args)]
    proc = subprocess.run(cmd, cwd=_REPO_ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{mode} benchmark failed (rc={proc.returncode}):\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m experiments.benchmarks.sparse_memory",
        description="Peak memory and time of fused vs naive sparse doc vectors (forward+backward).",
    )
    p.add_argument("--out", type=Path, default=Path("reports/benchmarks/sparse_memory.json"))
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--length", type=int, default=512)
    p.add_argument("--vocab", type=int, default=49152)
    p.add_argument("--hidden", type=int, default=576)
    p.add_argument("--chunk-size", type=int, default=16)
    p.add_argument("--threads", type=int, default=1, help="torch threads in each child")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float64"])
    p.add_argument("--repeats", type=int, default=3, help="timed runs per mode (>= 1)")
    p.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: run the benchmark, write ``--out``, print a summary; returns 0."""
    args = _parser().parse_args(argv)
    if args.repeats < 1:
        raise SystemExit("--repeats must be >= 1")
    if args.child:
        args.mode = args.child
        print(json.dumps(_child(args)))
        return 0
    run_benchmark(args, argv)
    return 0


def run_benchmark(args: argparse.Namespace, argv: list[str] | None = None) -> dict:
    """Run both modes in fresh subprocesses, write the JSON report to ``args.out``, return it."""
    import torch

    results = {mode: _run_child(mode, args) for mode in MODES}
    fused, naive = results["fused"], results["naive"]
    scale = max(1.0, abs(naive["out_sum"]))
    report = {
        "benchmark": "sparse_memory",
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
        },
        "torch_version": torch.__version__,
        "command": " ".join(
            ["python -m experiments.benchmarks.sparse_memory",
             *(sys.argv[1:] if argv is None else argv)]
        ),
        "sizes": {
            "batch": args.batch, "length": args.length, "vocab": args.vocab,
            "hidden": args.hidden, "chunk_size": args.chunk_size, "dtype": args.dtype,
        },
        "setting": "forward + backward, grad w.r.t. hidden only (LM head frozen), all positions counted",
        "threads": args.threads,
        "memory_method": fused["memory_method"],
        "peak_mb": {"fused": round(fused["peak_mb"], 1), "naive": round(naive["peak_mb"], 1)},
        "ratio_naive_over_fused": round(naive["peak_mb"] / max(fused["peak_mb"], 1e-9), 1),
        "wall_s_median": {
            "fused": round(fused["wall_s_median"], 3), "naive": round(naive["wall_s_median"], 3)
        },
        "outputs_match": abs(fused["out_sum"] - naive["out_sum"]) <= 1e-3 * scale,
        "runs": results,
    }
    write_json_atomic(args.out, report)
    print(json.dumps({k: report[k] for k in
                      ("sizes", "peak_mb", "ratio_naive_over_fused", "wall_s_median",
                       "outputs_match", "memory_method")}, indent=2))
    return report


if __name__ == "__main__":
    raise SystemExit(main())
