"""Training examples from labelled data sets and from unlabelled corpora: BM25 hard-negative mining
(:func:`mine_hard_negatives`, ``bm25s`` with Anserini's k1=0.9, b=0.4), title -> body pseudo-queries
(:func:`title_body_pairs`), and the ``data.train`` source specs (:func:`load_training_sources`:
JSONL files, BEIR train splits mined with BM25, titles), mined once and cached as JSONL.

>>> examples = load_training_sources([{"beir": "scifact", "split": "train", "depth": 100}])  # doctest: +SKIP
"""
from __future__ import annotations

import json
import os
import random
from pathlib import Path

import numpy as np

from lr_core.progress import progress
from lr_core.data.beir import BeirDataset, Passage, load_beir, load_corpus, resolve_dataset_dir
from lr_core.io import atomic_write_text
from lr_core.errors import CacheMismatchError, DataError
from lr_core.instructions import training_instruction_for
from lr_core.validation import (SOURCE_SPLIT, VALIDATION_QUERIES, VALIDATION_SEED, VALIDATION_SPLIT,
                                validation_query_ids)
from lr_core.data.formats import TrainExample, read_train_jsonl, write_train_jsonl

__all__ = [
    "mine_hard_negatives",
    "title_body_pairs",
    "load_training_sources",
]


BM25_K1 = 0.9
BM25_B = 0.4


# --------------------------------------------------------------------------- BM25 mining


def _bm25_tokenize(texts: list[str]) -> list[list[str]]:
    import bm25s

    return bm25s.tokenize(texts, lower=True, stopwords=None, return_ids=False, show_progress=False)


def mine_hard_negatives(
    dataset: BeirDataset,
    depth: int = 100,
    n_negatives: int = 30,
    source: str | None = None,
    seed: int = 42,
) -> list[TrainExample]:
    """Mine BM25 hard negatives for every query of ``dataset.qrels`` with a positive.

    BM25 via ``bm25s`` (Lucene variant, k1=0.9, b=0.4), documents are
    ``title + " " + text``, lower-cased, ``\\b\\w\\w+\\b`` tokens, no stop-word
    removal and no stemming (on SciFact test this BM25 gives nDCG@10 0.655
    without and 0.657 with English stop words, i.e. no measurable gain).

    Per query (in qrels order): positives = judged documents with score > 0
    (in qrels order); negatives = the top-``depth`` BM25 hits with a score
    > 0, minus *every* judged document (any score), first ``n_negatives`` kept
    in rank order.  Queries whose judgments are all <= 0 are skipped.  Ties in
    BM25 score are broken by a fixed permutation of the corpus drawn from
    ``seed``, so the result is deterministic.  An example can end up with
    fewer than ``n_negatives`` (even zero) negatives on a tiny corpus or a
    query with few matching terms.  ``source`` defaults to ``dataset.name``.
    """
    import bm25s

    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    if n_negatives < 0:
        raise ValueError(f"n_negatives must be >= 0, got {n_negatives}")
    if not dataset.corpus:
        raise DataError(
            f"dataset {dataset.name!r}: corpus is empty (load it with load_corpus=True to mine negatives)"
        )
    src = source if source is not None else dataset.name

    jobs: list[tuple[str, list[str], set[str]]] = []
    for qid, judged in dataset.qrels.items():
        positives = [d for d, s in judged.items() if s > 0]
        if not positives:
            continue
        if qid not in dataset.queries:
            raise DataError(f"dataset {dataset.name!r} split {dataset.split!r}: query {qid!r} is judged but has no text")
        for d in positives:
            if d not in dataset.corpus:
                raise DataError(
                    f"dataset {dataset.name!r} split {dataset.split!r}: positive {d!r} of query {qid!r} "
                    "is not in the corpus"
                )
        jobs.append((qid, positives, set(judged)))

    doc_ids = list(dataset.corpus)
    texts = [f"{p.title} {p.text}" for p in dataset.corpus.values()]
    retriever = bm25s.BM25(k1=BM25_K1, b=BM25_B)
    retriever.index(_bm25_tokenize(texts), show_progress=False)
    query_tokens = _bm25_tokenize([dataset.queries[qid] for qid, _, _ in jobs])

    # secondary sort key for ties: a seeded permutation of the corpus
    tie_rank = np.random.default_rng(seed).permutation(len(doc_ids))
    k = min(depth, len(doc_ids))
    examples: list[TrainExample] = []
    for (qid, positives, judged), tokens in progress(
        list(zip(jobs, query_tokens)), desc=f"mining BM25 negatives ({src})", unit="q"
    ):
        negatives: list[Passage] = []
        token_ids = retriever.get_tokens_ids(tokens)
        if token_ids and n_negatives > 0:
            scores = np.asarray(retriever.get_scores_from_ids(token_ids), dtype=np.float64)
            if k < len(scores):
                kth = np.partition(scores, len(scores) - k)[len(scores) - k]
                cand = np.flatnonzero(scores >= kth)
            else:
                cand = np.arange(len(scores))
            cand = cand[scores[cand] > 0]
            order = cand[np.lexsort((tie_rank[cand], -scores[cand]))][:k]
            for j in order:
                docid = doc_ids[j]
                if docid in judged:
                    continue
                negatives.append(dataset.corpus[docid])
                if len(negatives) >= n_negatives:
                    break
        examples.append(
            TrainExample(
                query=dataset.queries[qid],
                positives=[dataset.corpus[d] for d in positives],
                negatives=negatives,
                query_id=qid,
                instruction=None,
                source=src,
            )
        )
    return examples


# --------------------------------------------------------------------------- training-source specs

_JSONL_KEYS = ("jsonl", "source")
_TITLES_KEYS = ("titles", "depth", "n_negatives", "max_queries", "min_title_words", "cache", "source", "seed")
_BEIR_KEYS = ("beir", "split", "depth", "n_negatives", "cache", "source", "seed", "holdout_validation")


def _resolve_file(path: str | os.PathLike, data_dir: str | Path | None) -> Path:
    given = Path(path).expanduser()
    if given.exists():
        return given
    tried = [str(given)]
    base = data_dir if data_dir is not None else os.environ.get("LR_DATA_DIR")
    if base and not given.is_absolute():
        candidate = Path(base).expanduser() / given
        tried.append(str(candidate))
        if candidate.exists():
            return candidate
    raise DataError(f"training file {str(path)!r} not found; tried: " + "; ".join(tried))


def _mine_spec(spec: dict, index: int, data_dir: str | Path | None) -> list[TrainExample]:
    def get_int(key: str, default: int, minimum: int) -> int:
        value = spec.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise DataError(f"training source #{index} (beir): '{key}' must be an integer >= {minimum}, got {value!r}")
        return value

    split = spec.get("split", "train")
    if not isinstance(split, str) or not split:
        raise DataError(f"training source #{index} (beir): 'split' must be a non-empty string, got {split!r}")
    depth = get_int("depth", 100, 1)
    n_neg = get_int("n_negatives", 30, 0)
    seed = get_int("seed", 42, 0)
    root = resolve_dataset_dir(spec["beir"], data_dir)
    source = spec.get("source") or root.resolve().name
    # the validation queries (lr_core/validation.py) never reach training or mining
    holdout = spec.get("holdout_validation", split == SOURCE_SPLIT)
    if not isinstance(holdout, bool):
        raise DataError(f"training source #{index} (beir): 'holdout_validation' must be true or false, got {holdout!r}")
    holdout = holdout and split == SOURCE_SPLIT and not (root / "qrels" / f"{VALIDATION_SPLIT}.tsv").is_file()
    meta = {
        "dataset": root.resolve().name,
        "split": split,
        "depth": depth,
        "n_negatives": n_neg,
        "seed": seed,
        "bm25": {"k1": BM25_K1, "b": BM25_B, "stopwords": None, "lower": True},
        "holdout_validation": {"n": VALIDATION_QUERIES, "seed": VALIDATION_SEED} if holdout else None,
    }
    def build() -> list[TrainExample]:
        dataset = load_beir(root, split=split, load_corpus=True)
        if holdout:
            held = set(validation_query_ids(dataset.qrels))
            dataset.qrels = {q: d for q, d in dataset.qrels.items() if q not in held}
            dataset.queries = {q: t for q, t in dataset.queries.items() if q not in held}
        return mine_hard_negatives(dataset, depth=depth, n_negatives=n_neg, source=source, seed=seed)

    return _cached(spec, index, meta, source, build)


def _cached(spec: dict, index: int, meta: dict, source: str, build) -> list[TrainExample]:
    """``build()``'s examples, kept in ``spec["cache"]`` (+ ``.meta.json`` with the settings) when given."""
    cache = Path(spec["cache"]).expanduser() if spec.get("cache") else None
    meta_path = cache.with_name(cache.name + ".meta.json") if cache else None
    if cache is not None and cache.exists():
        if meta_path.exists():
            try:
                saved = json.loads(meta_path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as exc:
                raise DataError(f"{meta_path}: malformed JSON ({exc.msg})") from None
            if saved != meta:
                raise CacheMismatchError(
                    f"training source #{index}: cache {cache} was mined with {saved}, but the spec asks for {meta}; "
                    "delete the cache (and its .meta.json) or point 'cache' elsewhere"
                )
        return read_train_jsonl(cache, source=source)
    examples = build()
    if cache is not None:
        # metadata first: a crash between the two writes leaves no cache, never an unchecked one
        atomic_write_text(meta_path, [json.dumps(meta, sort_keys=True) + "\n"])
        write_train_jsonl(examples, cache)
    return examples


# --------------------------------------------------------------------------- pseudo-queries without labels

TITLE_INSTRUCTION = training_instruction_for("s2orc_title_abstract")


def title_body_pairs(corpus: dict[str, Passage], depth: int = 100, n_negatives: int = 30, source: str = "titles",
                     max_queries: int | None = None, min_title_words: int = 3, seed: int = 42) -> list[TrainExample]:
    """Pseudo training pairs from a corpus alone (no queries, no judgments), inverse-cloze style:
    a document's title is the query and its body (title removed) the positive; negatives are
    the title's BM25 top hits among the other bodies (:func:`mine_hard_negatives`). Every
    passage of such a source is title-less, so the title cannot be matched verbatim.

    Documents with a title of fewer than ``min_title_words`` words are skipped; ``max_queries``
    keeps a seeded sample. The instruction is the authors' one for title-abstract pairs (S2ORC).
    """
    bodies = {d: Passage(docid=d, title="", text=p.text) for d, p in corpus.items() if p.text.strip()}
    titled = sorted(d for d, p in corpus.items() if d in bodies and len(p.title.split()) >= min_title_words)
    if max_queries is not None and max_queries < len(titled):
        titled = sorted(random.Random(seed).sample(titled, max_queries))
    if not titled:
        raise DataError(f"source {source!r}: no document has a title of {min_title_words}+ words")
    pseudo = BeirDataset(name=source, corpus=bodies, queries={d: corpus[d].title for d in titled},
                         qrels={d: {d: 1} for d in titled}, split="titles")
    examples = mine_hard_negatives(pseudo, depth=depth, n_negatives=n_negatives, source=source, seed=seed)
    for ex in examples:
        ex.instruction = TITLE_INSTRUCTION
    return examples


def _titles_spec(spec: dict, index: int, data_dir: str | Path | None) -> list[TrainExample]:
    def get_int(key: str, default, minimum: int):
        value = spec.get(key, default)
        if value is None and default is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise DataError(f"training source #{index} (titles): '{key}' must be an integer >= {minimum}, got {value!r}")
        return value

    root = resolve_dataset_dir(spec["titles"], data_dir)
    source = spec.get("source") or f"{root.resolve().name}-titles"
    meta = {"titles_of": root.resolve().name, "depth": get_int("depth", 100, 1), "n_negatives": get_int("n_negatives", 30, 0),
            "max_queries": get_int("max_queries", None, 1), "min_title_words": get_int("min_title_words", 3, 1),
            "seed": get_int("seed", 42, 0), "bm25": {"k1": BM25_K1, "b": BM25_B, "stopwords": None, "lower": True}}

    def build() -> list[TrainExample]:
        corpus = load_corpus(root)
        return title_body_pairs(corpus, meta["depth"], meta["n_negatives"], source, meta["max_queries"],
                                meta["min_title_words"], meta["seed"])

    return _cached(spec, index, meta, source, build)


def load_training_sources(specs: list[dict], data_dir: str | Path | None = None) -> list[TrainExample]:
    """Load and concatenate training sources, in spec order.

    Each spec is one of

    * ``{"jsonl": path, "source"?: str}`` -- read with :func:`read_train_jsonl`
      (a relative path that does not exist is also tried under ``data_dir`` /
      ``LR_DATA_DIR``); source defaults to the file stem.
    * ``{"beir": name_or_path, "split": "train", "depth": 100, "n_negatives": 30,
      "cache"?: path, "source"?: str, "seed"?: 42}`` -- BM25 hard negatives mined
      with :func:`mine_hard_negatives`; source defaults to the dataset's
      directory name.  With ``cache``, the mined examples are written there
      atomically (plus ``<cache>.meta.json`` recording the mining settings) and
      reused on later calls; a cache whose ``.meta.json`` records different
      settings raises CacheMismatchError (a cache file without ``.meta.json``,
      e.g. one supplied by hand, is trusted as is).

      The validation queries (:mod:`lr_core.validation`) of a ``train`` split are left
      out unless the spec says ``holdout_validation: false``.
    * ``{"titles": name_or_path, "depth": 100, "n_negatives": 30, "max_queries"?: int,
      "min_title_words": 3, "cache"?: path, "source"?: str, "seed"?: 42}`` -- pseudo
      pairs from the corpus alone (:func:`title_body_pairs`); source defaults to
      ``<dataset>-titles``. No queries or judgments are read.

    An unknown key, or a spec with none or several of ``jsonl``, ``beir`` and ``titles``,
    raises DataError.
    """
    if isinstance(specs, dict) or not isinstance(specs, (list, tuple)):
        raise DataError(f"training sources must be a list of specs, got {type(specs).__name__}")
    out: list[TrainExample] = []
    for i, spec in enumerate(specs):
        if not isinstance(spec, dict):
            raise DataError(f"training source #{i}: expected a mapping, got {type(spec).__name__}")
        kinds = [k for k in ("jsonl", "beir", "titles") if k in spec]
        if len(kinds) != 1:
            raise DataError(
                f"training source #{i}: needs exactly one of 'jsonl', 'beir' or 'titles', got keys {sorted(spec)}"
            )
        allowed = {"jsonl": _JSONL_KEYS, "beir": _BEIR_KEYS, "titles": _TITLES_KEYS}[kinds[0]]
        for key in spec:
            if key not in allowed:
                raise DataError(
                    f"training source #{i} ({kinds[0]}): unknown key {key!r}; allowed keys: {list(allowed)}"
                )
        if kinds[0] == "jsonl":
            out.extend(read_train_jsonl(_resolve_file(spec["jsonl"], data_dir), source=spec.get("source")))
        else:
            out.extend((_mine_spec if kinds[0] == "beir" else _titles_spec)(spec, i, data_dir))
    return out
