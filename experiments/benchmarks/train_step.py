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
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from experiments.benchmarks.common import report_header, write_json_atomic


def _parser():
    p = argparse.ArgumentParser(prog="lr bench train-step", description=__doc__.splitlines()[0])
    p.add_argument("--config", default="experiments/lightretriever_scifact.yaml")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", type=Path, default=Path("reports/benchmarks/train_step.json"))
    p.add_argument("overrides", nargs="*", help="config overrides key.sub=value")
    return p


def main(argv: list[str] | None = None) -> int:

    from lr_core.config import load_config
    from lr_core.data.datamodule import RetrievalDataModule
    from lr_core.losses import contrastive_loss
    from lr_core.modules import LightRetrieverModule, RetrieverModule
    from lr_core.sparse import flops_regularizer

    args = _parser().parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(args.config, [f"run_dir={tmp}", "variant=lightretriever", *args.overrides])
        module = LightRetrieverModule(cfg)
        module.train()
        data = RetrievalDataModule(cfg.data, module.tokenizer, seed=cfg.trainer.seed)
        data.setup()
        batch = next(iter(data.train_dataloader()))
    lc = cfg.loss

    def joint_without_light(b):
        docs = module.encode_documents(b, sparse=True)
        q = module.encoder.encode_full_query_ids(b.full_query_ids, b.full_query_mask)
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
