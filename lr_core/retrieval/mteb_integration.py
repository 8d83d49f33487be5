"""Running LightRetriever models under ``mteb`` (written against mteb 2.26).

* :class:`LightRetrieverMTEB` -- an mteb encoder (``EncoderProtocol``: ``encode``,
  ``similarity``, ``similarity_pairwise``, ``mteb_model_meta``).  mteb calls
  ``encode(dataloader, *, task_metadata, hf_split, hf_subset, prompt_type, **encode_kwargs)``
  once with ``prompt_type=PromptType.query`` for the queries and once per corpus chunk with
  ``PromptType.document``; each batch is a dict of lists (queries: ``text``; documents:
  ``text`` = title + " " + body, plus ``body`` and, when the corpus has titles, ``title``).

  - ``mode="light"`` (default): queries are LightRetriever light dense vectors -- with a
    :class:`~lr_core.cache.VocabCache` for the task's instruction, a numpy lookup + mean (no
    transformer layer runs); without one, :meth:`RetrievalEncoder.encode_light_queries`.
  - ``mode="symmetric"``: queries go through the full LLM
    (:meth:`RetrievalEncoder.encode_full_queries`), the symmetric baseline.
  - documents always: :meth:`RetrievalEncoder.encode_documents` dense vectors.

  The query instruction is ``instruction`` when given, else the registry's
  (:func:`lr_core.retrieval.tasks.get_task` on the mteb task name, e.g. ``SciFact`` or
  ``CQADupstackAndroidRetrieval``), else -- for tasks built by :func:`local_retrieval_task`
  -- the instruction stored in the task's metadata.  Any other task raises ``KeyError``.
  Vectors are L2-normalised float32 numpy arrays; similarity is the dot product (= cosine).
  ``prompt_type=None`` (non-retrieval mteb tasks) is encoded like a query.

* :func:`local_retrieval_task` -- an mteb retrieval task over a local BEIR-format directory
  (read with :func:`lr_core.data.beir.load_beir`; nothing is downloaded).
* :func:`run_mteb` -- ``mteb.evaluate`` with results written under ``output_folder``; returns
  the scores (``ndcg_at_10``, ``recall_at_100``, ``main_score`` ...).

Score conventions versus :func:`lr_core.retrieval.metrics.evaluate_run` (both use pytrec_eval on the
same qrels, including non-positive judgments, averaged over the judged queries):

* mteb rounds the mean metrics to 5 decimals;
* mteb keeps a query/document pair with identical ids unless the task sets
  ``ignore_identical_ids`` (mteb: ArguAna, Quora, CQADupStack), while ``evaluate_run``
  drops them by default (BEIR's default).  :func:`local_retrieval_task` follows mteb; pass
  ``ignore_identical_ids=`` to change it (it matters for Cranfield, whose ids collide);
* mteb keeps the top 1000 documents per query.

``import mteb`` is deferred to the first call that needs it (it takes seconds), so importing
this module is cheap and works without mteb installed.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np

from lr_core.retrieval.tasks import Task, task_for_path, get_task
from lr_core.errors import CacheMismatchError

if TYPE_CHECKING:
    from lr_core.cache import VocabCache
    from lr_core.encoder import RetrievalEncoder

__all__ = ["LightRetrieverMTEB", "local_retrieval_task", "run_mteb", "MODES"]

MODES = ("light", "symmetric")
# Marker put in the metadata of tasks built by local_retrieval_task (dataset path prefix).
LOCAL_DATASET_PREFIX = "local-beir/"
# mteb's convention: these tasks drop a retrieved document whose id equals the query id.
_IGNORE_IDENTICAL_IDS = {"arguana", "quora", "cqadupstack"}


def _prompt_kind(prompt_type: Any) -> str:
    """``"query"`` or ``"document"`` from mteb's PromptType (or its string value, or None)."""
    if prompt_type is None:
        return "query"
    value = getattr(prompt_type, "value", prompt_type)
    if value not in ("query", "document"):
        raise ValueError(f"unknown prompt_type {prompt_type!r}; expected query or document")
    return value


class LightRetrieverMTEB:
    """mteb encoder for a :class:`~lr_core.encoder.RetrievalEncoder` (see the module docstring).

    ``cache``: one :class:`~lr_core.cache.VocabCache` or several (one per instruction); the one
    whose ``metadata.instruction`` equals the task's instruction is used.  When caches are given
    but none matches a task, encoding fails (no silent fall-back to the LLM).  ``batch_size``
    is the number of texts per forward pass (and the batch size :func:`run_mteb` gives mteb).
    """

    def __init__(self, encoder: "RetrievalEncoder", cache: "VocabCache | Sequence[VocabCache] | None" = None,
                 mode: str = "light", instruction: str | None = None, batch_size: int = 32,
                 model_name: str | None = None, revision: str | None = None, sort_by_length: bool = True):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if instruction is not None and not instruction.strip():
            raise ValueError("instruction must be a non-empty string (or None to look it up per task)")
        self.encoder = encoder
        self.mode = mode
        self.instruction = instruction
        self.batch_size = int(batch_size)
        self.sort_by_length = sort_by_length
        caches = [] if cache is None else ([cache] if hasattr(cache, "encode") else list(cache))
        if caches and mode != "light":
            raise ValueError("a vocabulary cache serves light queries only; mode='symmetric' encodes with the LLM")
        fingerprint = encoder.tokenizer.fingerprint()
        self.caches: dict[str, "VocabCache"] = {}
        for c in caches:
            if c.metadata.tokenizer_hash != fingerprint:
                raise CacheMismatchError(f"cache for {c.metadata.instruction!r} was built with tokenizer "
                                         f"{c.metadata.tokenizer_hash}, the encoder's is {fingerprint}")
            if c.vectors.shape[1] != encoder.hidden_size:
                raise CacheMismatchError(f"cache hidden size {c.vectors.shape[1]} != encoder's {encoder.hidden_size}")
            if c.metadata.instruction in self.caches:
                raise ValueError(f"two caches for the same instruction {c.metadata.instruction!r}")
            self.caches[c.metadata.instruction] = c
        self.model_name = model_name or f"lightretriever/{mode}{'-cached' if self.caches else ''}"
        if "/" not in self.model_name:
            raise ValueError(f"mteb model names look like 'organisation/model', got {self.model_name!r}")
        self.revision = revision or "no_revision_available"
        self._meta = None

    # -- mteb protocol -------------------------------------------------------------------
    @property
    def mteb_model_meta(self):
        if self._meta is None:
            from mteb.models.model_meta import ModelMeta, ScoringFunction

            self._meta = ModelMeta.create_empty(overwrites={
                "name": self.model_name,
                "revision": self.revision,
                "embed_dim": int(self.encoder.hidden_size),
                "similarity_fn_name": ScoringFunction.DOT_PRODUCT,
                "use_instructions": True,
                "framework": ["PyTorch"],
                "open_weights": True,
            })
        return self._meta

    def encode(self, inputs: Iterable[dict], *, task_metadata: Any, hf_split: str = "", hf_subset: str = "",
               prompt_type: Any = None, **kwargs: Any) -> np.ndarray:
        """Vectors [N, H] float32 of every item of the dataloader ``inputs`` (L2-normalised)."""
        kind = _prompt_kind(prompt_type)
        titles: list[str] = []
        texts: list[str] = []
        for batch in inputs:
            n = len(batch["text"])
            if kind == "document" and "body" in batch:
                titles.extend(batch["title"] if "title" in batch else [""] * n)
                texts.extend(batch["body"])
            else:
                titles.extend([""] * n)
                texts.extend(batch["text"])
        if kind == "document":
            return self.encode_documents(titles, texts)
        return self.encode_queries(texts, self.instruction_for_task(task_metadata))

    def similarity(self, embeddings1, embeddings2):
        import torch

        a = torch.as_tensor(np.asarray(embeddings1, dtype=np.float32))
        b = torch.as_tensor(np.asarray(embeddings2, dtype=np.float32))
        return a.reshape(-1, a.shape[-1]) @ b.reshape(-1, b.shape[-1]).T

    def similarity_pairwise(self, embeddings1, embeddings2):
        import torch

        a = torch.as_tensor(np.asarray(embeddings1, dtype=np.float32))
        b = torch.as_tensor(np.asarray(embeddings2, dtype=np.float32))
        return (a * b).sum(-1)

    # -- LightRetriever side -------------------------------------------------------------
    def instruction_for_task(self, task_metadata: Any) -> str:
        """The query instruction of an mteb task (see the module docstring for the order)."""
        if self.instruction is not None:
            return self.instruction
        name = getattr(task_metadata, "name", task_metadata)
        dataset = getattr(task_metadata, "dataset", None) or {}
        if str(dataset.get("path", "")).startswith(LOCAL_DATASET_PREFIX):
            prompt = task_metadata.prompt
            return prompt["query"] if isinstance(prompt, dict) else prompt
        return get_task(str(name)).instruction

    def cache_for(self, instruction: str) -> "VocabCache | None":
        if not self.caches:
            return None
        if instruction not in self.caches:
            raise CacheMismatchError(
                f"no vocabulary cache for the instruction {instruction!r}; caches are loaded for: "
                f"{sorted(self.caches)}. Build one with `lr cache` (a cache is instruction-specific).")
        return self.caches[instruction]

    def _order(self, lengths: Sequence[int]) -> np.ndarray:
        if not self.sort_by_length:
            return np.arange(len(lengths))
        return np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")

    def _batched(self, n: int, lengths: Sequence[int], fn) -> np.ndarray:
        """Apply ``fn(indices) -> [b, H]`` to batches (longest first), in input order."""
        out = np.empty((n, self.encoder.hidden_size), dtype=np.float32)
        order = self._order(lengths)
        for lo in range(0, n, self.batch_size):
            idx = order[lo:lo + self.batch_size]
            out[idx] = fn(idx)
        return out

    def encode_queries(self, queries: Sequence[str], instruction: str) -> np.ndarray:
        """Query vectors [N, H] float32 for ``mode`` (light: cache lookup or per-token LLM)."""
        queries = list(queries)
        if not queries:
            return np.zeros((0, self.encoder.hidden_size), dtype=np.float32)
        if self.mode == "light":
            cache = self.cache_for(instruction)
            if cache is not None:
                # numpy only: token ids -> mean of cached rows; no transformer layer runs
                return cache.encode(self.encoder.tokenizer.light_query_ids(queries))
            fn = self.encoder.encode_light_queries
        else:
            fn = self.encoder.encode_full_queries
        return self._with_encoder(lambda: self._batched(
            len(queries), [len(q) for q in queries], lambda idx: _np(fn([queries[i] for i in idx], instruction))))

    def encode_documents(self, titles: Sequence[str], texts: Sequence[str]) -> np.ndarray:
        """Dense document vectors [N, H] float32 (EOS pooling, L2-normalised)."""
        titles, texts = list(titles), list(texts)
        if len(titles) != len(texts):
            raise ValueError(f"{len(titles)} titles for {len(texts)} texts")
        if not texts:
            return np.zeros((0, self.encoder.hidden_size), dtype=np.float32)
        return self._with_encoder(lambda: self._batched(
            len(texts), [len(t) + len(x) for t, x in zip(titles, texts)],
            lambda idx: _np(self.encoder.encode_documents([titles[i] for i in idx], [texts[i] for i in idx],
                                                          dense=True, sparse=False)["dense"])))

    def _with_encoder(self, work):
        import torch

        was_training = self.encoder.training
        self.encoder.eval()
        try:
            with torch.inference_mode():
                return work()
        finally:
            self.encoder.train(was_training)


def _np(t) -> np.ndarray:
    return t.detach().float().cpu().numpy()


# -- local tasks -----------------------------------------------------------------------
def _fingerprint(root: Path, split: str) -> str:
    """A cheap revision string for local files (sizes and modification times)."""
    h = hashlib.sha256()
    for rel in ("corpus.jsonl", "queries.jsonl", f"qrels/{split}.tsv"):
        st = (root / rel).stat()
        h.update(f"{rel}:{st.st_size}:{st.st_mtime_ns};".encode())
    return h.hexdigest()[:12]


def local_retrieval_task(dataset_dir: str | os.PathLike, split: str | None = None, name: str | None = None,
                         instruction: str | None = None, ignore_identical_ids: bool | None = None,
                         eval_langs: Sequence[str] | None = None):
    """An mteb ``AbsTaskRetrieval`` over a local BEIR-format directory (no hub access).

    ``split`` defaults to the benchmark's evaluation split; ``name`` (the mteb task name, which
    names the result file) to the canonical benchmark name; ``instruction`` is required for a
    directory that is not a registered benchmark and is stored as the task's query prompt.
    ``ignore_identical_ids`` defaults to mteb's convention (True only for ArguAna, Quora and
    CQADupStack).  Data is read by :func:`lr_core.data.beir.load_beir` when mteb loads the task.
    """
    from mteb.abstasks.retrieval import AbsTaskRetrieval
    from mteb.abstasks.task_metadata import TaskMetadata

    root = Path(dataset_dir).expanduser().resolve()
    bench: Task = task_for_path(root, instruction=instruction, split=split)
    split = bench.eval_split
    if eval_langs is None:
        eval_langs = ["cmn-Hans"] if bench.suite == "cmteb" or bench.name.endswith("_zh") else ["eng-Latn"]
    if ignore_identical_ids is None:
        ignore_identical_ids = bench.name in _IGNORE_IDENTICAL_IDS
    metadata = TaskMetadata(
        name=name or bench.name,
        description=f"{bench.name} ({bench.suite}) read from the local BEIR directory {root}",
        dataset={"path": f"{LOCAL_DATASET_PREFIX}{root}", "revision": _fingerprint(root, split)},
        type="Retrieval",
        category="t2t",
        modalities=["text"],
        eval_splits=[split],
        eval_langs=list(eval_langs),
        main_score="ndcg_at_10",
        prompt={"query": bench.instruction},
    )

    def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
        if self.data_loaded:
            return
        from datasets import Dataset

        from lr_core.data.beir import load_beir

        ds = load_beir(root, split=split)
        corpus = Dataset.from_dict({"id": list(ds.corpus), "title": [p.title for p in ds.corpus.values()],
                                    "text": [p.text for p in ds.corpus.values()]})
        queries = Dataset.from_dict({"id": list(ds.queries), "text": list(ds.queries.values())})
        self.dataset = {"default": {split: {"corpus": corpus, "queries": queries,
                                            "relevant_docs": {q: dict(d) for q, d in ds.qrels.items()},
                                            "top_ranked": None}}}
        self.data_loaded = True

    cls = type("LocalBeirRetrieval", (AbsTaskRetrieval,), {
        "metadata": metadata,
        "ignore_identical_ids": bool(ignore_identical_ids),
        "load_data": load_data,
        "benchmark": bench,
        "__doc__": f"Local BEIR-format retrieval task {metadata.name!r} ({root}, split {split!r}).",
    })
    return cls()


# -- running ---------------------------------------------------------------------------
# The scores run_mteb returns (mteb's result JSON also holds nAUC and other diagnostics).
_SCORE_PREFIXES = ("main_score", "ndcg_at_", "map_at_", "recall_at_", "precision_at_", "mrr_at_", "hit_rate_at_")

def run_mteb(model_wrapper: LightRetrieverMTEB, task, output_folder: str | os.PathLike,
             save_predictions: bool = True) -> dict:
    """Evaluate ``model_wrapper`` on one mteb task; results (and the run, when
    ``save_predictions``) go under ``output_folder``; always re-runs (no cached results).

    Returns the scores of the task's first evaluation split and subset -- ``main_score``,
    ``ndcg_at_10``, ``recall_at_100``, ``map_at_10``, ``mrr_at_10`` ... (fractions, 5 decimals)
    -- plus ``task``, ``split``, ``hf_subset``, ``evaluation_time``, ``results_path``, and
    ``all_scores`` ({"split/subset": scores}) for tasks with several.
    """
    import mteb

    output_folder = Path(output_folder)
    cache = mteb.ResultCache(cache_path=output_folder)
    prediction_folder = output_folder / "predictions" if save_predictions else None
    if prediction_folder is not None:
        prediction_folder.mkdir(parents=True, exist_ok=True)
    result = mteb.evaluate(
        model_wrapper, task, cache=cache, overwrite_strategy="always", raise_error=True, co2_tracker=False,
        encode_kwargs={"batch_size": getattr(model_wrapper, "batch_size", 32), "show_progress_bar": False},
        prediction_folder=prediction_folder, show_progress_bar=False,
    )
    if result.exceptions:
        raise RuntimeError(f"mteb failed on {task.metadata.name}: {result.exceptions}")
    (task_result,) = result.task_results
    all_scores: dict[str, dict] = {}
    for split_name, per_subset in task_result.scores.items():
        for s in per_subset:
            all_scores[f"{split_name}/{s['hf_subset']}"] = {
                k: float(v) for k, v in s.items() if k.startswith(_SCORE_PREFIXES) and isinstance(v, (int, float))}
    first_split = task.metadata.eval_splits[0]
    key = next(k for k in all_scores if k.startswith(f"{first_split}/")) if any(
        k.startswith(f"{first_split}/") for k in all_scores) else next(iter(all_scores))
    meta = model_wrapper.mteb_model_meta
    out = dict(all_scores[key])
    out.update(task=task_result.task_name, split=key.split("/", 1)[0], hf_subset=key.split("/", 1)[1],
               evaluation_time=task_result.evaluation_time,
               results_path=str(cache.get_task_result_path(task_result.task_name, meta)),
               all_scores=all_scores)
    if prediction_folder is not None:
        out["predictions_path"] = str(task._predictions_path(prediction_folder))
    return out
