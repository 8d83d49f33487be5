"""Time of one joint-recipe training step against a symmetric-only step on the same batch.

    lr bench train-step [--config experiments/lightretriever_scifact.yaml] [--repeats 3]

Three forward+backward passes on one real batch (SciFact train, BM25 negatives):

* ``symmetric``: full dense CE only (the baseline's step);
* ``joint_without_light``: symmetric + sparse CE + FLOPs (everything but the light query pass);
* ``joint``: the released recipe (adds the light dense query pass).

``light_pass_overhead`` = (joint - joint_without_light) / symmetric is what the light dense
query pass adds (target <= 0.30); ``joint_overhead`` = joint / symmetric - 1 is the whole
recipe's extra cost. The three steps are interleaved in every round and the ratios use each
step's fastest round: on a shared VM, noise only ever adds time, so the minimum is the most
repeatable estimate (medians are recorded too).

Before/after a code change (issue 16, "cheaper CPU steps"), ``--before CHECKOUT`` times whole
training steps (loss, backward, AdamW) of this checkout against another one, e.g. an export
of ``main``::

    git archive main | tar -x -C /tmp/before
    lr bench train-step --before /tmp/before [--after /tmp/after] --steps 3 --rounds 3 \
        --out reports/benchmarks/step_ab.json \
        data.max_doc_len=64 model.lora.dropout=0.0 trainer.seed=42

Each round runs one worker process per checkout, alternately (A B A B ...), so a machine
shared with other jobs slows both sides alike; every worker builds the model from the same
seed and trains ``--steps`` steps (after one untimed warm-up step) on the same batches. The
report gives each side's min and median step time, the ratio of medians, and the largest
relative difference between the two sides' losses (an exact change keeps them equal up to float
rounding).

``--components --before CHECKOUT`` times each exact change on its own, old and new form
alternately in one process on one batch (forward + backward of the part only): the per-query
vs packed light queries, the padded vs shared-prefix full queries, and the sparse head
(max-projection) of CHECKOUT vs this one, on the documents' real hidden states with every
positive entry receiving a gradient (the FLOPs term makes that so once its weight is non-zero);
it also reports which share of the vocabulary is positive in some document of the batch.

``--bf16`` times the joint step (loss + backward) in float32 and under CPU bf16 autocast
(``trainer.precision=bf16-mixed``), alternately on the same ``--repeats`` batches (4 distinct ones,
cycled; no optimizer step, so both see the same weights), and reports the speed-up and how far
each loss term moves: bf16 is not exact, so the change is judged on validation, not here.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run by path as a --worker: only lr_core is importable, see train_steps_worker
    lightretriever_batches = report_header = write_json_atomic = None
else:
    from experiments.benchmarks.common import lightretriever_batches, report_header, write_json_atomic


def _parser():
    p = argparse.ArgumentParser(prog="lr bench train-step", description=__doc__.splitlines()[0])
    p.add_argument("--config", default="experiments/lightretriever_scifact.yaml")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", type=Path, default=Path("reports/benchmarks/train_step.json"))
    p.add_argument("--before", type=Path, help="another checkout: time whole training steps of both (see above)")
    p.add_argument("--after", type=Path, help="the checkout to compare with --before (default: this one)")
    p.add_argument("--steps", type=int, default=3, help="timed training steps per worker (--before)")
    p.add_argument("--rounds", type=int, default=3, help="worker pairs, alternating (--before)")
    p.add_argument("--components", action="store_true", help="time each change on its own (see above)")
    p.add_argument("--bf16", action="store_true", help="float32 vs CPU bf16 autocast joint steps (see above)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("overrides", nargs="*", help="config overrides key.sub=value")
    return p


def train_steps_worker(config: str, overrides: list[str], steps: int) -> dict:
    """One untimed warm-up and ``steps`` timed training steps, with the ``lr_core`` on ``sys.path``.

    Uses only the module API both sides share (``loss_terms``, ``backward_total``,
    ``configure_optimizers``), so it can time an older checkout too.
    """
    import torch

    import ablations  # noqa: F401  (the variant catalog; in older checkouts the registry imported it itself)
    from lr_core.config import load_config
    from lr_core.variants import list_variants

    try:
        from lr_core.data.datamodule import RetrievalDataModule
    except ImportError:  # a checkout from before lr_core/data/ existed (issue 18's layout)
        from lr_core.datamodule import RetrievalDataModule

    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(config, [f"run_dir={tmp}", *overrides])
        torch.manual_seed(cfg.trainer.seed)  # the LoRA initialisation
        module = list_variants()[cfg.variant].cls(cfg)
        module.train()
        data = RetrievalDataModule(cfg.data, module.tokenizer, seed=cfg.trainer.seed)
        data.setup()
        batches = iter(data.train_dataloader())
        opt = module.configure_optimizers()["optimizer"]
        seconds, losses = [], []
        for step in range(steps + 1):
            batch = next(batches)
            start = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            terms = module.loss_terms(batch)
            module.backward_total(terms, {n: t.weight for n, t in terms.items()}).backward()
            opt.step()
            if step:  # the first step is warm-up (allocator, oneDNN kernel selection)
                seconds.append(time.perf_counter() - start)
            losses.append({n: float(t.loss.detach()) for n, t in terms.items()})
    return {"seconds": seconds, "losses": losses, "lr_core": str(Path(sys.modules["lr_core"].__file__).parent)}


def compare_checkouts(args, argv) -> int:
    """``--before``: alternate worker processes of the two checkouts; report times and loss agreement."""
    here = Path(__file__).resolve()
    # Export both sides (git archive) when editing meanwhile: a worker imports lr_core when it starts.
    sides = {"before": args.before.resolve(), "after": (args.after or here.parents[2]).resolve()}
    for name, root in sides.items():
        if not (root / "lr_core" / "__init__.py").is_file():
            raise SystemExit(f"--before: {root} has no lr_core package (give a checkout of this repository)")
    config = str(Path(args.config).resolve())
    runs: dict[str, list[dict]] = {k: [] for k in sides}
    for rnd in range(args.rounds):
        for name, root in sides.items():
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp) / "worker.json"
                env = {**os.environ, "PYTHONPATH": str(root)}
                # Run this file by path: sys.path[0] is then its folder, so lr_core comes from PYTHONPATH.
                cmd = [sys.executable, str(here), "--worker", "--config", config, "--steps", str(args.steps),
                       "--out", str(out), *args.overrides]
                subprocess.run(cmd, env=env, cwd=root, check=True, stdout=subprocess.DEVNULL)
                runs[name].append(json.loads(out.read_text()))
            print(f"round {rnd + 1}/{args.rounds} {name}: " + ", ".join(f"{s:.2f}" for s in runs[name][-1]["seconds"])
                  + " s/step", flush=True)
    seconds = {k: [s for r in v for s in r["seconds"]] for k, v in runs.items()}
    summary = {k: {"min": min(v), "median": statistics.median(v), "n": len(v)} for k, v in seconds.items()}
    # Pair the two workers of each round: the machine's load is most alike within a round.
    pair_ratios = [statistics.median(b["seconds"]) / statistics.median(a["seconds"])
                   for b, a in zip(runs["before"], runs["after"])]
    loss_diff = max(abs(lb[n] - la[n]) / max(abs(lb[n]), 1e-12) for b, a in zip(runs["before"], runs["after"])
                    for lb, la in zip(b["losses"], a["losses"]) for n in lb)
    report = report_header("train_step", argv)
    report.update({"mode": "before_after", "config": args.config, "overrides": args.overrides,
                   "steps_per_worker": args.steps, "rounds": args.rounds,
                   "checkouts": {k: str(v) for k, v in sides.items()}, "seconds": seconds, "summary": summary,
                   "speedup_of_medians": summary["before"]["median"] / summary["after"]["median"],
                   "speedup_of_minima": summary["before"]["min"] / summary["after"]["min"],
                   "per_round_speedups": pair_ratios, "max_relative_loss_difference": loss_diff,
                   "losses": {k: [r["losses"] for r in v] for k, v in runs.items()}})
    write_json_atomic(args.out, report)
    print(f"before {summary['before']['median']:.2f} s/step (min {summary['before']['min']:.2f}), after "
          f"{summary['after']['median']:.2f} s/step (min {summary['after']['min']:.2f}): "
          f"{report['speedup_of_medians']:.2f}x of medians, {report['speedup_of_minima']:.2f}x of minima; "
          f"largest relative loss difference {loss_diff:.1e} -> {args.out}")
    return 0


def component_timings(args, argv) -> int:
    """``--components``: old and new form of each part, alternately, in this process."""
    import importlib.util

    import torch

    from lr_core.dense import mean_of_token_states
    from lr_core.sparse import SparseMaxProjection, sparse_doc_mask

    if args.before is None:
        raise SystemExit("--components needs --before CHECKOUT (its lr_core/sparse.py is the old sparse head)")
    spec = importlib.util.spec_from_file_location("before_sparse", args.before / "lr_core" / "sparse.py")
    before_sparse = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(before_sparse)
    cfg, module, batches = lightretriever_batches(args.config, args.overrides)
    b = next(batches)
    enc = module.encoder
    with torch.no_grad():
        doc_hidden = enc.last_hidden(b.doc_ids, b.doc_mask)
    doc_mask = sparse_doc_mask(b.doc_ids, b.doc_mask, enc.tokenizer.special_ids)
    chunk = enc.sparse_chunk_size

    def sparse_with(proj):
        def run():
            h = doc_hidden.clone().requires_grad_(True)
            return torch.log1p(torch.relu(proj.apply(h, enc.lm_head_weight, doc_mask, chunk))), h
        return run

    def with_input_grad(fn):  # the encoders' outputs; LoRA weights receive the gradients
        return lambda: (fn(), None)

    parts = {
        "light_queries": (with_input_grad(lambda: mean_of_token_states(enc.light_token_states(b.light),
                                                                        b.light.token_mask)),
                          with_input_grad(lambda: enc.encode_light_query_batch(b.light))),
        "full_queries": (with_input_grad(lambda: enc.encode_full_query_ids(b.full_query_ids, b.full_query_mask)),
                         with_input_grad(lambda: enc.encode_full_query_ids(b.full_query_ids, b.full_query_mask,
                                                                            share_prefix=True))),
        "sparse_head": (sparse_with(before_sparse.SparseMaxProjection), sparse_with(SparseMaxProjection)),
    }
    trainable = [p for p in module.parameters() if p.requires_grad]
    seconds = {name: {"old": [], "new": []} for name in parts}
    agreement = {}
    for rnd in range(args.repeats + 1):  # round 0: warm-up
        for name, forms in parts.items():
            grads = {}
            for form, fn in zip(("old", "new"), forms):
                module.zero_grad(set_to_none=True)
                start = time.perf_counter()
                out, leaf = fn()
                out.sum().backward()
                if rnd:
                    seconds[name][form].append(time.perf_counter() - start)
                grads[form] = (out.detach(), leaf.grad if leaf is not None else
                               torch.cat([p.grad.flatten() for p in trainable if p.grad is not None]))
            agreement[name] = {"max_abs_output_diff": float((grads["old"][0] - grads["new"][0]).abs().max()),
                               "max_abs_grad_diff": float((grads["old"][1] - grads["new"][1]).abs().max()),
                               "max_abs_grad": float(grads["old"][1].abs().max())}
    out = sparse_with(SparseMaxProjection)()[0]
    summary = {name: {form: {"min": min(v), "median": statistics.median(v)} for form, v in forms.items()}
               for name, forms in seconds.items()}
    report = report_header("train_step", argv)
    report.update({
        "mode": "components", "config": args.config, "overrides": args.overrides, "repeats": args.repeats,
        "shapes": {"docs": list(b.doc_ids.shape), "full_queries": list(b.full_query_ids.shape),
                   "full_query_tokens": int(b.full_query_mask.sum()), "light_per_query": list(b.light.input_ids.shape),
                   "light_blocks": int(b.light.token_mask.sum())},
        "sparse_active_vocabulary_fraction": float((out > 0).any(dim=0).float().mean()),
        "seconds": seconds, "summary": summary, "agreement": agreement,
        "speedup_of_medians": {n: s["old"]["median"] / s["new"]["median"] for n, s in summary.items()},
    })
    write_json_atomic(args.out, report)
    for n, s in summary.items():
        print(f"{n}: old {s['old']['median']:.3f} s, new {s['new']['median']:.3f} s (medians of {args.repeats}); "
              f"{report['speedup_of_medians'][n]:.2f}x; max |grad diff| {agreement[n]['max_abs_grad_diff']:.1e} "
              f"of max |grad| {agreement[n]['max_abs_grad']:.1e}")
    print(f"sparse: {report['sparse_active_vocabulary_fraction']:.1%} of the vocabulary is positive in some document "
          f"-> {args.out}")
    return 0


def bf16_timings(args, argv) -> int:
    """``--bf16``: the joint step in float32 and under CPU bf16 autocast, alternately."""
    import torch

    _, module, batches = lightretriever_batches(args.config, args.overrides)
    distinct = [next(batches) for _ in range(4)]
    seconds: dict[str, list[float]] = {"float32": [], "bf16": []}
    losses: dict[str, list[dict]] = {"float32": [], "bf16": []}
    for rep in range(args.repeats + 1):  # the first round is warm-up
        order = ("float32", "bf16") if rep % 2 == 0 else ("bf16", "float32")
        for mode in order:
            batch = distinct[rep % len(distinct)]
            module.zero_grad(set_to_none=True)
            start = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=mode == "bf16"):
                terms = module.loss_terms(batch)
                total = sum(t.weight * t.backward for t in terms.values())
            total.backward()
            if rep:
                seconds[mode].append(time.perf_counter() - start)
                losses[mode].append({n: float(t.loss.detach()) for n, t in terms.items()})
    med = {k: statistics.median(v) for k, v in seconds.items()}
    moved = {n: max(abs(b[n] - a[n]) / max(abs(a[n]), 1e-12) for a, b in zip(losses["float32"], losses["bf16"]))
             for n in losses["float32"][0]}
    report = report_header("train_step", argv)
    report.update({"mode": "bf16_autocast", "config": args.config, "overrides": args.overrides,
                   "repeats": args.repeats, "seconds": seconds, "median_seconds": med,
                   "min_seconds": {k: min(v) for k, v in seconds.items()},
                   "speedup_of_medians": med["float32"] / med["bf16"], "losses": losses,
                   "max_relative_loss_change": moved})
    write_json_atomic(args.out, report)
    print(f"joint step: float32 {med['float32']:.2f} s, bf16 autocast {med['bf16']:.2f} s (medians of "
          f"{args.repeats}): {report['speedup_of_medians']:.2f}x; largest relative loss change "
          + ", ".join(f"{n} {v:.1%}" for n, v in moved.items()) + f" -> {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.bf16:
        return bf16_timings(args, argv)
    if args.worker:
        args.out.write_text(json.dumps(train_steps_worker(args.config, args.overrides, args.steps)))
        return 0
    if args.components:
        return component_timings(args, argv)
    if args.before is not None:
        return compare_checkouts(args, argv)

    from lr_core.losses import contrastive_loss
    from lr_core.modules import RetrieverModule
    from lr_core.sparse import flops_regularizer

    cfg, module, batches = lightretriever_batches(args.config, args.overrides)
    batch = next(batches)
    lc = cfg.loss

    def joint_without_light(b):
        docs = module.encode_documents(b, sparse=True)
        q = module.encoder.encode_full_query_ids(b.full_query_ids, b.full_query_mask, share_prefix=True)  # as training
        return (contrastive_loss(q, docs["dense"], b.group_size, lc.tau_dense)["backward"]
                + contrastive_loss(b.sparse_query, docs["sparse"], b.group_size, lc.tau_sparse)["backward"]
                + 1e-3 * flops_regularizer(docs["sparse"]))

    steps = {
        "symmetric": lambda b: sum(t.backward for t in RetrieverModule.loss_terms(module, b).values()),
        "joint_without_light": joint_without_light,
        "joint": lambda b: sum(t.weight * t.backward for t in module.loss_terms(b).values()),
    }
    seconds: dict[str, list[float]] = {k: [] for k in steps}
    for rep in range(args.repeats + 1):  # first round is warm-up
        for name, step in steps.items():
            module.zero_grad(set_to_none=True)
            start = time.perf_counter()
            step(batch).backward()
            if rep:
                seconds[name].append(time.perf_counter() - start)
    med = {k: statistics.median(v) for k, v in seconds.items()}
    best = {k: min(v) for k, v in seconds.items()}
    report = report_header("train_step", argv)
    report.update({
        "config": args.config, "backbone": cfg.model.backbone, "batch_queries": len(batch),
        "group_size": batch.group_size, "doc_tokens": int(batch.doc_mask.sum()),
        "light_query_tokens": int(batch.light.input_ids.numel()), "full_query_tokens": int(batch.full_query_mask.sum()),
        "seconds": seconds, "median_seconds": med, "min_seconds": best,
        "light_pass_overhead": (best["joint"] - best["joint_without_light"]) / best["symmetric"],
        "joint_overhead": best["joint"] / best["symmetric"] - 1,
    })
    write_json_atomic(args.out, report)
    print(f"fastest of {args.repeats}: symmetric {best['symmetric']:.2f} s, joint without light "
          f"{best['joint_without_light']:.2f} s, joint {best['joint']:.2f} s; light pass adds {report['light_pass_overhead']:.1%}, "
          f"joint recipe adds {report['joint_overhead']:.1%} -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
