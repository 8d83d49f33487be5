"""Training data: reading/writing training JSONL, BM25 hard-negative mining,
grouped examples (1 positive + n negatives) and homogeneous batching.

Accepted JSONL layouts (one JSON object per line, blank lines skipped):

* **pos/neg** (FlagEmbedding style)::

      {"query": str, "pos": [passage, ...], "neg": [passage, ...]}

* **Tevatron**::

      {"query": str, "positive_passages": [passage, ...], "negative_passages": [passage, ...]}

A *passage* is either a plain string (the text) or an object
``{"docid"?: str, "title"?: str, "text": str}`` (``_id`` is accepted for
``docid``).  Optional keys on every line: ``instruction`` (``prompt`` is
accepted as an alias, as written by FlagEmbedding's data), ``query_id``
(aliases ``qid`` and ``_id``).  The negatives list may be absent (-> no
negatives).  Other keys (``pos_scores``, ``neg_scores``, ``type``, ...) are
ignored.  Every problem raises :class:`lr_core.errors.DataError` naming the
file, line and field.
"""

from __future__ import annotations

import json
import math
import os
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lr_core.progress import progress

from lr_core.data.beir import BeirDataset, Passage, iter_jsonl, load_beir, load_corpus, resolve_dataset_dir
from lr_core.io import atomic_write_text
from lr_core.errors import CacheMismatchError, DataError
from lr_core.instructions import training_instruction_for
from lr_core.validation import (SOURCE_SPLIT, VALIDATION_QUERIES, VALIDATION_SEED, VALIDATION_SPLIT,
                                validation_query_ids)

__all__ = [
    "TrainExample",
    "read_train_jsonl",
    "write_train_jsonl",
    "mine_hard_negatives",
    "TrainGroupDataset",
    "HomogeneousBatchSampler",
    "load_training_sources",
]

BM25_K1 = 0.9
BM25_B = 0.4

_LAYOUTS = (
    "{query, pos: [str | {title, text}], neg: [...]}",
    "{query, positive_passages: [{docid, title, text}], negative_passages: [...]} (Tevatron)",
)


@dataclass
class TrainExample:
    """One training query with its positive and (hard) negative passages."""

    query: str
    positives: list[Passage]
    negatives: list[Passage]
    query_id: str | None = None
    instruction: str | None = None
    source: str = ""


# --------------------------------------------------------------------------- reading / writing


def _parse_passage(item: Any, where: str, fieldname: str) -> Passage:
    if isinstance(item, str):
        if not item.strip():
            raise DataError(f"{where}: field '{fieldname}': empty passage text")
        return Passage(docid=None, title="", text=item)
    if not isinstance(item, dict):
        raise DataError(
            f"{where}: field '{fieldname}': a passage must be a string or an object with 'text', "
            f"got {type(item).__name__}"
        )
    text = item.get("text")
    if not isinstance(text, str) or not text.strip():
        what = "missing" if text is None else ("empty" if isinstance(text, str) else f"not a string ({type(text).__name__})")
        raise DataError(f"{where}: field '{fieldname}.text': {what}")
    title = item.get("title")
    if title is None:
        title = ""
    elif not isinstance(title, str):
        raise DataError(f"{where}: field '{fieldname}.title': expected a string, got {type(title).__name__}")
    docid = item.get("docid", item.get("_id"))
    if docid is not None:
        if isinstance(docid, bool) or not isinstance(docid, (str, int)):
            raise DataError(f"{where}: field '{fieldname}.docid': expected a string, got {type(docid).__name__}")
        docid = str(docid)
        if not docid.strip():
            raise DataError(f"{where}: field '{fieldname}.docid': empty")
    return Passage(docid=docid, title=title, text=text)


def _parse_passages(obj: dict, key: str, where: str, required: bool) -> list[Passage]:
    if key not in obj or obj[key] is None:
        if required:
            raise DataError(f"{where}: field '{key}': missing")
        return []
    items = obj[key]
    if not isinstance(items, list):
        raise DataError(f"{where}: field '{key}': expected a list, got {type(items).__name__}")
    return [_parse_passage(item, where, f"{key}[{j}]") for j, item in enumerate(items)]


def _optional_str(obj: dict, keys: Sequence[str], where: str) -> str | None:
    for key in keys:
        if key in obj and obj[key] is not None:
            value = obj[key]
            if isinstance(value, bool) or not isinstance(value, (str, int)):
                raise DataError(f"{where}: field '{key}': expected a string, got {type(value).__name__}")
            value = str(value)
            return value if value.strip() else None
    return None


def read_train_jsonl(path: str | os.PathLike, source: str | None = None) -> list[TrainExample]:
    """Read a training JSONL file in either accepted layout (see module docstring).

    ``source`` (used for homogeneous batching) defaults to the file stem.
    Raises DataError for a missing/empty file or any malformed line.
    """
    path = Path(path)
    src = source if source is not None else path.stem
    examples: list[TrainExample] = []
    for lineno, obj in iter_jsonl(path):
        where = f"{path}:{lineno}"
        has_ff = "pos" in obj
        has_tev = "positive_passages" in obj
        if "query" not in obj or has_ff == has_tev:
            problem = "both 'pos' and 'positive_passages' present" if has_ff and has_tev else "unknown layout"
            raise DataError(
                f"{where}: {problem}; keys found: {sorted(obj)}; accepted layouts: "
                + " or ".join(_LAYOUTS)
            )
        query = obj["query"]
        if not isinstance(query, str):
            raise DataError(f"{where}: field 'query': expected a string, got {type(query).__name__}")
        if not query.strip():
            raise DataError(f"{where}: field 'query': empty")
        pos_key, neg_key = ("pos", "neg") if has_ff else ("positive_passages", "negative_passages")
        positives = _parse_passages(obj, pos_key, where, required=True)
        if not positives:
            raise DataError(f"{where}: field '{pos_key}': no positive passage")
        negatives = _parse_passages(obj, neg_key, where, required=False)
        examples.append(
            TrainExample(
                query=query,
                positives=positives,
                negatives=negatives,
                query_id=_optional_str(obj, ("query_id", "qid", "_id"), where),
                instruction=_optional_str(obj, ("instruction", "prompt"), where),
                source=src,
            )
        )
    if not examples:
        raise DataError(f"{path}: no training examples (empty file)")
    return examples


def _passage_json(p: Passage) -> dict:
    out: dict[str, Any] = {}
    if p.docid is not None:
        out["docid"] = p.docid
    out["title"] = p.title
    out["text"] = p.text
    return out


def write_train_jsonl(examples: Iterable[TrainExample], path: str | os.PathLike) -> None:
    """Write examples in the Tevatron layout, atomically (temp file + ``os.replace``).

    ``query_id`` and ``instruction`` are written when not None; ``source`` is
    not written (it is given again, or derived from the file name, on reading).
    """

    def lines() -> Iterator[str]:
        for ex in examples:
            obj: dict[str, Any] = {}
            if ex.query_id is not None:
                obj["query_id"] = ex.query_id
            obj["query"] = ex.query
            if ex.instruction is not None:
                obj["instruction"] = ex.instruction
            obj["positive_passages"] = [_passage_json(p) for p in ex.positives]
            obj["negative_passages"] = [_passage_json(p) for p in ex.negatives]
            yield json.dumps(obj, ensure_ascii=False) + "\n"

    atomic_write_text(Path(path), lines())


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


# --------------------------------------------------------------------------- torch dataset / sampler


class TrainGroupDataset(torch.utils.data.Dataset):
    """Training groups: item ``i`` is ``dict(query, instruction, source, passages)``
    with ``passages = [one positive] + n_negatives negatives``.

    The choice depends only on ``(seed, epoch, i)`` (call :meth:`set_epoch`
    each epoch to get fresh draws): the positive is a random choice among the
    example's positives; negatives are sampled without replacement when the
    example has at least ``n_negatives`` of them, otherwise with replacement.
    With ``n_negatives > 0`` every example must have at least one negative: an
    example without any raises DataError naming its query (checked up front in
    ``__init__``).
    """

    def __init__(self, examples: Sequence[TrainExample], n_negatives: int, seed: int = 42):
        if n_negatives < 0:
            raise ValueError(f"n_negatives must be >= 0, got {n_negatives}")
        self.examples = list(examples)
        self.n_negatives = n_negatives
        self.seed = seed
        self.epoch = 0
        for i, ex in enumerate(self.examples):
            if not ex.positives:
                raise DataError(f"training example {i} (source {ex.source!r}, query {ex.query!r}) has no positive")
            if n_negatives > 0 and not ex.negatives:
                raise DataError(
                    f"training example {i} (source {ex.source!r}, query_id {ex.query_id!r}, query {ex.query!r}) "
                    f"has no negatives but n_negatives={n_negatives}"
                )

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> dict:
        if i < 0:
            i += len(self.examples)
        ex = self.examples[i]
        rng = random.Random(f"{self.seed}:{self.epoch}:{i}")
        positive = rng.choice(ex.positives)
        n = self.n_negatives
        if n == 0:
            negatives: list[Passage] = []
        elif len(ex.negatives) >= n:
            negatives = rng.sample(ex.negatives, n)
        else:
            negatives = rng.choices(ex.negatives, k=n)
        return {
            "query": ex.query,
            "instruction": ex.instruction,
            "source": ex.source,
            "passages": [positive, *negatives],
        }


class HomogeneousBatchSampler(torch.utils.data.Sampler[list[int]]):
    """Batches whose indices all come from one training source.

    Per epoch, with ``random.Random(seed + epoch)``: each source's indices are
    shuffled and cut into batches of ``batch_size`` (an incomplete last batch
    per source is dropped when ``drop_last``), then the batches of all sources
    are shuffled together.  Use as ``DataLoader(ds, batch_sampler=sampler)``.

    Epochs: :meth:`set_epoch` selects an epoch (restarting it from its first
    batch if it differs from the current one).  An exhausted epoch moves on to
    the next epoch automatically, so iterating again without ``set_epoch``
    gives a new order; ``set_epoch(e)`` with the already-current ``e`` is a
    no-op, so loops that call it every epoch behave as expected.

    Resume: the sampler counts the batches it has *handed out*;
    ``state_dict()`` returns ``{"epoch", "batches_done"}`` and, after
    ``load_state_dict(d)``, iteration continues with the next not-yet-served
    batch of that epoch (then continues with the following epochs).  When the
    sampler is consumed through a ``DataLoader`` with workers/prefetching, the
    sampler runs ahead of the training loop, so do not checkpoint
    ``sampler.state_dict()`` there: save ``{"epoch": e, "batches_done":
    optimizer steps done in epoch e}`` yourself (one batch per step) and pass
    it to ``load_state_dict`` before building the iterator on resume.

    Data parallelism: ``batch_size`` is the *global* batch. With ``num_replicas=W`` and
    ``rank=r`` the sampler draws exactly the same global batches as with ``W=1`` and serves
    rank r the contiguous slice ``batch[r*b/W:(r+1)*b/W]`` of each; the slices of one step are
    disjoint and, concatenated in rank order, give the global batch (the order in which the
    contrastive loss gathers them). The state counts *global* batches, so a run resumes
    identically, and the whole data sequence is the same whatever the world size.
    ``batch_size`` must be divisible by ``num_replicas``, and ``drop_last`` must stay on with
    more than one replica (a short batch could not be cut into equal slices).

    >>> s = HomogeneousBatchSampler(["a"] * 8, batch_size=4, seed=0, num_replicas=2, rank=1)
    >>> [len(b) for b in s]
    [2, 2]
    """

    def __init__(self, sources: Sequence[str], batch_size: int, seed: int = 42, drop_last: bool = True,
                 num_replicas: int = 1, rank: int = 0):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is not in [0, num_replicas={num_replicas})")
        if batch_size % num_replicas:
            raise ValueError(f"the global batch_size {batch_size} is not divisible by the {num_replicas} "
                             "data-parallel ranks; choose a multiple of the world size")
        if num_replicas > 1 and not drop_last:
            raise ValueError("drop_last=False cannot split a short last batch evenly across ranks; "
                             "use drop_last=True with more than one replica")
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.num_replicas = int(num_replicas)
        self.rank = int(rank)
        self._groups: dict[str, list[int]] = {}
        for idx, src in enumerate(sources):
            self._groups.setdefault(src, []).append(idx)
        self._epoch = 0
        self._batches_done = 0
        if len(self) == 0:
            sizes = {s: len(v) for s, v in self._groups.items()}
            raise ValueError(
                f"no batch of size {batch_size} can be formed (drop_last={drop_last}); examples per source: {sizes}"
            )

    def __len__(self) -> int:
        if self.drop_last:
            return sum(len(v) // self.batch_size for v in self._groups.values())
        return sum(math.ceil(len(v) / self.batch_size) for v in self._groups.values())

    @property
    def epoch(self) -> int:
        return self._epoch

    def set_epoch(self, epoch: int) -> None:
        epoch = int(epoch)
        if epoch != self._epoch:
            self._epoch = epoch
            self._batches_done = 0

    def batches_for_epoch(self, epoch: int) -> list[list[int]]:
        """All global batches of ``epoch`` in serving order (pure function of seed/epoch, not of the rank)."""
        rng = random.Random(self.seed + epoch)
        batches: list[list[int]] = []
        for src in self._groups:  # insertion order = first appearance: deterministic
            idx = list(self._groups[src])
            rng.shuffle(idx)
            stop = len(idx) - len(idx) % self.batch_size if self.drop_last else len(idx)
            batches.extend(idx[s : s + self.batch_size] for s in range(0, stop, self.batch_size))
        rng.shuffle(batches)
        return batches

    def rank_slice(self, batch: list[int]) -> list[int]:
        """This rank's part of a global batch (the whole batch with one replica)."""
        per = len(batch) // self.num_replicas
        return batch[self.rank * per:(self.rank + 1) * per]

    def __iter__(self) -> Iterator[list[int]]:
        if self._batches_done >= len(self):
            self._epoch += 1
            self._batches_done = 0
        epoch = self._epoch
        batches = self.batches_for_epoch(epoch)
        for b in range(self._batches_done, len(batches)):
            if self._epoch != epoch:  # set_epoch/load_state_dict called mid-iteration
                return
            self._batches_done = b + 1
            yield self.rank_slice(batches[b])
        if self._epoch == epoch:
            self._epoch += 1
            self._batches_done = 0

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self._epoch, "batches_done": self._batches_done}

    def load_state_dict(self, state: dict) -> None:
        try:
            epoch, done = state["epoch"], state["batches_done"]
        except (KeyError, TypeError):
            raise ValueError(f"sampler state must be a dict with 'epoch' and 'batches_done', got {state!r}") from None
        if isinstance(epoch, bool) or isinstance(done, bool) or not isinstance(epoch, int) or not isinstance(done, int):
            raise ValueError(f"sampler state values must be integers, got {state!r}")
        if not 0 <= done <= len(self):
            raise ValueError(f"batches_done={done} outside [0, {len(self)}] for this sampler")
        self._epoch = epoch
        self._batches_done = done


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
