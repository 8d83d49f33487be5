"""The validation split: a fixed, seeded set of training queries held out for choosing recipes.

Recipes, thresholds and budgets are chosen on this split and on training losses, never on
test data. It is derived from a data set's ``train`` qrels when the data are read (the
shared data directory stays read-only; nothing is copied):

* ``load_beir(name, split="val")`` gives the held-out queries with their train qrels;
* a BEIR training source (``{beir: scifact, split: train}``) drops them before hard-negative
  mining, so a validation query never reaches a training batch (``holdout_validation: false``
  in the source spec turns that off).

A data set that ships its own ``qrels/val.tsv`` uses that file instead, and nothing is held out.

>>> validation_query_ids({str(i): {"d": 1} for i in range(1000)})[:3]   # doctest: +SKIP
['104', '106', '110']
"""
from __future__ import annotations

import random

VALIDATION_SPLIT = "val"
SOURCE_SPLIT = "train"
VALIDATION_QUERIES = 100  # at most; never more than a fifth of the judged train queries
VALIDATION_SEED = 0


def validation_query_ids(train_qrels: dict[str, dict[str, int]], n: int = VALIDATION_QUERIES,
                         seed: int = VALIDATION_SEED) -> list[str]:
    """The held-out query ids (sorted): a seeded sample of train queries with a positive judgment.

    Depends only on the set of judged ids, not on file order, so it is the same on every machine.
    """
    judged = sorted(q for q, docs in train_qrels.items() if any(s > 0 for s in docs.values()))
    k = min(n, len(judged) // 5)
    return sorted(random.Random(seed).sample(judged, k))
