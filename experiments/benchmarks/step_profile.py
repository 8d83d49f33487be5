"""Where one LightRetriever training step's time goes (issue 16, "cheaper CPU steps").

    python -m experiments.benchmarks.step_profile [--rounds 3] [--profile] [override ...]

At the recipe-search settings (experiments/sweeps/recipe_search/base.yaml: documents of 64
tokens, LoRA dropout 0, seed 42) on one real batch, times forward and forward+backward of
each encoding pass (documents dense, documents dense+sparse, full queries, light queries),
the whole joint step and an AdamW step. Parts are timed round-robin and each part's minimum
over ``--rounds`` is printed: on a shared machine noise only adds time. ``--profile`` adds
torch.profiler's operator table of one joint step (self CPU time).
"""
from __future__ import annotations

import argparse
import time

RECIPE = ["variant=lightretriever", "data.max_doc_len=64", "model.lora.dropout=0.0", "trainer.seed=42"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="experiments/lightretriever_scifact.yaml")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--profile", action="store_true")
    p.add_argument("overrides", nargs="*")
    args = p.parse_args(argv)

    import torch

    from experiments.benchmarks.common import lightretriever_batches

    cfg, m, batches = lightretriever_batches(args.config, [*RECIPE, *args.overrides])
    b = next(batches)
    enc = m.encoder
    print(f"torch threads {torch.get_num_threads()}; documents {tuple(b.doc_ids.shape)} ({int(b.doc_mask.sum())} real "
          f"tokens); full queries {tuple(b.full_query_ids.shape)} ({int(b.full_query_mask.sum())} real); light queries "
          f"{tuple(b.light.input_ids.shape)} per-query layout ({int(b.light.token_mask.sum())} blocks)")
    params = [p for p in m.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)

    def docs(sparse, backward):
        out = enc.encode_document_ids(b.doc_ids, b.doc_mask, sparse=sparse)
        if backward:
            sum(v.sum() for v in out.values()).backward()

    def full(backward):
        out = enc.encode_full_query_ids(b.full_query_ids, b.full_query_mask, share_prefix=True)
        if backward:
            out.sum().backward()

    def light(backward):
        out = m.light_dense_queries(b)
        if backward:
            out.sum().backward()

    def joint_step(m, b):
        sum(t.weight * t.backward for t in m.loss_terms(b).values()).backward()

    def adamw():
        for q in params:
            q.grad = torch.zeros_like(q)
        opt.step()

    parts = {
        "documents dense, forward": lambda: docs(False, False),
        "documents dense, forward+backward": lambda: docs(False, True),
        "documents dense+sparse, forward": lambda: docs(True, False),
        "documents dense+sparse, forward+backward": lambda: docs(True, True),
        "full queries, forward": lambda: full(False),
        "full queries, forward+backward": lambda: full(True),
        "light queries, forward": lambda: light(False),
        "light queries, forward+backward": lambda: light(True),
        "joint step (loss terms + backward)": lambda: joint_step(m, b),
        "AdamW step": adamw,
    }
    best = {k: float("inf") for k in parts}
    for _ in range(args.rounds + 1):  # + warm-up
        for name, fn in parts.items():
            m.zero_grad(set_to_none=True)
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    start = time.perf_counter()
    next(batches)
    print(f"{'collating the next batch':45s} {time.perf_counter() - start:7.3f} s")
    for name, s in best.items():
        print(f"{name:45s} {s:7.3f} s")
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        m.zero_grad(set_to_none=True)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            joint_step(m, b)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
