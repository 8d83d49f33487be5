"""The validation split (lr_core.validation): derived from train, held out of training and mining."""
from __future__ import annotations

import json

import pytest

from lr_core.data.beir import load_beir
from lr_core.config import DataConfig
from lr_core.data.datamodule import RetrievalDataModule
from lr_core.errors import CacheMismatchError
from lr_core.data.mining import load_training_sources
from lr_core.validation import VALIDATION_QUERIES, validation_query_ids


def test_scifact_val_is_100_train_queries_with_their_train_qrels(shared_data):
    train = load_beir(shared_data / "scifact", "train", load_corpus=False)
    val = load_beir(shared_data / "scifact", "val", load_corpus=False)
    test = load_beir(shared_data / "scifact", "test", load_corpus=False)
    assert len(val.queries) == VALIDATION_QUERIES == 100 and val.split == "val"
    assert set(val.qrels) <= set(train.qrels) and not set(val.qrels) & set(test.qrels)
    assert all(val.qrels[q] == train.qrels[q] for q in val.qrels)
    assert sorted(val.qrels) == validation_query_ids(train.qrels)  # deterministic


def test_validation_ids_depend_on_the_judged_set_only_and_stay_small():
    qrels = {str(i): {"d": 1} for i in range(1000)}
    shuffled = dict(reversed(list(qrels.items())))
    assert validation_query_ids(qrels) == validation_query_ids(shuffled)
    assert validation_query_ids(qrels, seed=1) != validation_query_ids(qrels)
    assert len(validation_query_ids({str(i): {"d": 1} for i in range(50)})) == 10  # a fifth at most
    assert validation_query_ids({"a": {"d": 0}, **{str(i): {"d": 1} for i in range(5)}}) != ["a"]  # needs a positive


def _batch_queries(dm: RetrievalDataModule) -> set[str]:
    dm.setup()
    return {dm.dataset[i]["query"] for batch in dm.sampler.batches_for_epoch(0) for i in batch}


def test_no_validation_query_reaches_a_training_batch(shared_data, tokenizer, tmp_path):
    val = set(load_beir(shared_data / "scifact", "val", load_corpus=False).queries.values())
    cfg = DataConfig(train=[{"beir": "scifact", "split": "train", "n_negatives": 3,
                             "cache": str(tmp_path / "mined.jsonl")}],
                     data_dir=str(shared_data), batch_size=8, n_negatives=1)
    seen = _batch_queries(RetrievalDataModule(cfg, tokenizer))
    assert len(seen) > 600 and not seen & val
    meta = json.loads((tmp_path / "mined.jsonl.meta.json").read_text())
    assert meta["holdout_validation"] == {"n": 100, "seed": 0}
    # the control: without the hold-out the same queries are trained on
    cfg.train = [{"beir": "scifact", "split": "train", "n_negatives": 3, "holdout_validation": False}]
    assert _batch_queries(RetrievalDataModule(cfg, tokenizer)) & val


def test_a_mining_cache_without_the_holdout_is_refused(shared_data, tmp_path):
    spec = {"beir": "scifact", "split": "train", "n_negatives": 2, "cache": str(tmp_path / "m.jsonl")}
    load_training_sources([{**spec, "holdout_validation": False}], data_dir=shared_data)
    with pytest.raises(CacheMismatchError, match="holdout_validation"):
        load_training_sources([spec], data_dir=shared_data)
