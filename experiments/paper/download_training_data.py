"""Download the paper sweep's public training sets into ``$LR_DATA_DIR/paper_train/`` (needs internet).

    python -m experiments.paper.download_training_data            # every set
    python -m experiments.paper.download_training_data --list     # what would be fetched, fetch nothing
    python -m experiments.paper.download_training_data --only wikipedia-nq --out /data/paper_train

Each set is a Hugging Face dataset in Tevatron layout (``query_id, query, positive_passages,
negative_passages``), which :func:`lr_core.data.training_data.read_train_jsonl` reads as is; rows are
written as JSONL, atomically, one file per set (an existing file is kept: delete it to refetch).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from lr_core.io import atomic_write_text

# file stem -> Hugging Face dataset id (split "train"); experiments/paper/llama32_1b.yaml reads these files.
SETS = {
    "msmarco-passage": "Tevatron/msmarco-passage",
    "wikipedia-nq": "Tevatron/wikipedia-nq",
    "wikipedia-trivia": "Tevatron/wikipedia-trivia",
    "wikipedia-squad": "Tevatron/wikipedia-squad",
    "scifact": "Tevatron/scifact",
}
KEYS = ("query_id", "query", "positive_passages", "negative_passages")


def tevatron_lines(rows: Iterable[dict]) -> Iterator[str]:
    """JSONL lines of the Tevatron fields of ``rows``; a row without a positive is dropped (it cannot train)."""
    for row in rows:
        if not row.get("positive_passages"):
            continue
        yield json.dumps({k: row.get(k) for k in KEYS if row.get(k) is not None}, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="default: $LR_DATA_DIR/paper_train")
    ap.add_argument("--only", nargs="*", choices=sorted(SETS), help="a subset of the sets")
    ap.add_argument("--list", action="store_true", help="print the sets and their targets; download nothing")
    args = ap.parse_args(argv)
    if args.out is None:
        if not os.environ.get("LR_DATA_DIR"):
            ap.error("give --out or set LR_DATA_DIR")
        args.out = Path(os.environ["LR_DATA_DIR"]) / "paper_train"
    names = args.only or sorted(SETS)
    for name in names:
        target = args.out / f"{name}.jsonl"
        if args.list:
            print(f"{SETS[name]} (train) -> {target}")
            continue
        if target.exists():
            print(f"{target} exists; kept")
            continue
        from datasets import load_dataset

        rows = load_dataset(SETS[name], split="train")
        atomic_write_text(target, tevatron_lines(rows))
        print(f"{SETS[name]}: {target}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
