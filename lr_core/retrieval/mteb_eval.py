"""``lr mteb``: a trained run evaluated by ``mteb``, its scores written into the metrics ledger.

    >>> records = run_mteb_tasks("runs/lightretriever_scifact", ["SciFact"], "runs/lightretriever_scifact/eval",
    ...                          representations=["dense", "hybrid"])          # doctest: +SKIP

mteb loads the task (from ``--data-dir`` when a registered task has a local BEIR copy there,
else from the Hugging Face Hub; a BEIR directory path is a local task too), asks the model for
a ranking and computes the scores. The model is :class:`LightRetrieverSearch`, an mteb
``SearchProtocol`` model that ranks exactly as ``lr evaluate`` does:

* ``dense``: light queries from the run's vocabulary cache (built and kept in the run
  directory on first use, as ``lr evaluate`` does; a variant that serves queries through a
  network, A3, uses it), Faiss inner product over EOS-pooled document vectors;
* ``sparse``: query token counts (``--sparse-query-mode``) against the documents' vocabulary
  term weights;
* ``hybrid``: both lists fused per query (min-max, 0.7 / 0.3, as ``lr evaluate``'s default).

Each (task, representation) gets ``OUT/<dataset>/mteb-<representation>/metrics.json`` in the
ledger schema of :func:`lr_core.retrieval.evaluate.metrics_record` (representation ``dense``/``sparse``/
``hybrid``, ``"evaluator": "mteb"``) and ``run.trec``; ``lr report`` collects them with the
rest (a result of ``lr evaluate`` for the same cell is kept next to it and flagged as a
duplicate). mteb's own result JSON is kept under ``OUT/mteb/``. Metrics mteb does not compute
(Recall@50) are left out of the record.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from lr_core.errors import ConfigError

__all__ = ["LightRetrieverSearch", "resolve_task", "run_mteb_tasks", "REPRESENTATIONS", "LEDGER_FROM_MTEB"]

REPRESENTATIONS = ("dense", "sparse", "hybrid")
# ledger metric <- mteb score name
LEDGER_FROM_MTEB = {"ndcg@10": "ndcg_at_10", "recall@20": "recall_at_20", "recall@50": "recall_at_50",
                    "recall@100": "recall_at_100", "mrr@10": "mrr_at_10", "ndcg@100": "ndcg_at_100"}


class LightRetrieverSearch:
    """An mteb ``SearchProtocol`` model: ``index`` encodes the corpus, ``search`` ranks queries.

    ``model`` is an :class:`lr_core.retrieval.evaluate.EvalModel`; ``settings`` an
    :class:`lr_core.retrieval.evaluate.EvalSettings` (batch size, fusion weights, sparse options).
    After a search, :attr:`last_run` holds the ranking ``{qid: {doc id: score}}``.
    """

    def __init__(self, model, representation: str, settings=None, instruction: str | None = None):
        from lr_core.retrieval.evaluate import EvalSettings

        if representation not in REPRESENTATIONS:
            raise ConfigError(f"representation must be one of {', '.join(REPRESENTATIONS)}, got {representation!r}")
        self.model, self.representation = model, representation
        self.settings = settings or EvalSettings()
        self.instruction = instruction
        self.dense_index = self.sparse_index = None
        self.last_run: dict[str, dict[str, float]] = {}
        self._meta = None

    @property
    def mteb_model_meta(self):
        if self._meta is None:
            from mteb.models.model_meta import ModelMeta

            self._meta = ModelMeta.create_empty(overwrites={
                "name": f"lightretriever/{self.model.variant}-{self.representation}",
                "revision": (self.model.checkpoint_hash or "untrained")[:12],
                "use_instructions": True, "framework": ["PyTorch"], "open_weights": True,
            })
        return self._meta

    def index(self, corpus, *, task_metadata: Any = None, hf_split: str = "", hf_subset: str = "",
              encode_kwargs: Any = None, num_proc: int | None = None, **kwargs: Any) -> None:
        import torch

        from lr_core.retrieval.corpus_encoding import _to_csr
        from lr_core.progress import progress
        from lr_core.retrieval.dense_index import DenseIndex
        from lr_core.retrieval.sparse_index import SparseIndex

        ids = [str(i) for i in corpus["id"]]
        texts = list(corpus["text"])
        titles = list(corpus["title"]) if "title" in getattr(corpus, "column_names", []) else [""] * len(texts)
        titles = [t or "" for t in titles]
        need_dense = self.representation in ("dense", "hybrid")
        need_sparse = self.representation in ("sparse", "hybrid")
        bs = self.settings.batch_size
        # longest first: fewer padded tokens per batch
        order = np.argsort(-np.asarray([len(t) + len(x) for t, x in zip(titles, texts)]), kind="stable")
        dense = np.zeros((len(ids), self.model.encoder.hidden_size), dtype=np.float32) if need_dense else None
        sparse_rows: list = [None] * len(ids)
        self.model.encoder.eval()
        with torch.inference_mode(), progress(total=len(ids), desc="mteb: encoding corpus", unit="doc") as bar:
            for lo in range(0, len(ids), bs):
                idx = order[lo:lo + bs]
                out = self.model.encoder.encode_documents([titles[i] for i in idx], [texts[i] for i in idx],
                                                          dense=need_dense, sparse=need_sparse)
                if need_dense:
                    dense[idx] = out["dense"].float().cpu().numpy()
                if need_sparse:
                    m = _to_csr(out["sparse"], self.settings.sparse_top_k)
                    for r, i in enumerate(idx):
                        sparse_rows[i] = m[r]
                bar.update(len(idx))
        self.doc_ids = ids
        if need_dense:
            self.dense_index = DenseIndex(dense, ids, dim=self.settings.mrl_dim)
        if need_sparse:
            import scipy.sparse as sp

            self.sparse_index = SparseIndex.from_csr(sp.vstack(sparse_rows).tocsr(), ids)

    def instruction_for(self, task_metadata: Any) -> str:
        from lr_core.retrieval.mteb_integration import LightRetrieverMTEB

        if self.instruction:
            return self.instruction
        return LightRetrieverMTEB.instruction_for_task(self, task_metadata)  # same lookup as the encoder wrapper

    def search(self, queries, *, task_metadata: Any = None, hf_split: str = "", hf_subset: str = "",
               top_k: int = 1000, encode_kwargs: Any = None, top_ranked: Any = None, num_proc: int | None = None,
               **kwargs: Any) -> dict[str, dict[str, float]]:
        from lr_core.retrieval.evaluate import vocab_cache_for
        from lr_core.retrieval.representations import batched
        from lr_core.retrieval.fusion import fuse
        from lr_core.retrieval.search import run_from_results
        from lr_core.query_side import query_term_vector

        qids = [str(i) for i in queries["id"]]
        texts = list(queries["text"])
        instruction = self.instruction_for(task_metadata)
        tok = self.model.encoder.tokenizer
        k = min(top_k, len(self.doc_ids))
        runs = {}
        if self.representation in ("dense", "hybrid"):
            served = None
            if self.model.module is not None and self.model.module.query_side == "network":  # A3
                served = batched(lambda b: self.model.module.serve_dense_queries(b, instruction), texts,
                                  self.settings.query_batch_size)
            if served is None:
                served = vocab_cache_for(self.model, instruction, self.settings.cache_dtype).encode(
                    tok.light_query_ids(texts))
            scores, hits = self.dense_index.search(np.asarray(served, dtype=np.float32), k)
            runs["dense"] = run_from_results(qids, scores, hits)
        if self.representation in ("sparse", "hybrid"):
            qs = [query_term_vector(s, self.settings.sparse_query_mode) for s in tok.sparse_query_ids(texts)]
            scores, hits = self.sparse_index.search(qs, k)
            runs["sparse"] = run_from_results(qids, scores, hits)
        if self.representation == "hybrid":
            s = self.settings
            kw = {"w_dense": s.w_dense, "w_sparse": s.w_sparse} if s.fusion == "linear" else {"k": s.rrf_k}
            runs["hybrid"] = fuse(runs["dense"], runs["sparse"], method=s.fusion, top_k=k, **kw)
        self.last_run = runs[self.representation]
        return {q: dict(d) for q, d in self.last_run.items()}


def resolve_task(name: str, data_dir: str | os.PathLike | None = None, instruction: str | None = None):
    """An mteb task for ``name``: a BEIR directory, a registered task with a local copy, or mteb's own."""
    from lr_core.retrieval.tasks import get_task, is_complete
    from lr_core.retrieval.mteb_integration import local_retrieval_task

    path = Path(name).expanduser()
    if path.is_dir():
        return local_retrieval_task(path, instruction=instruction)
    try:
        bench = get_task(name)
    except KeyError:
        bench = None
    root = data_dir or os.environ.get("LR_DATA_DIR")
    if bench is not None and root and is_complete(Path(root) / bench.name, bench):
        return local_retrieval_task(Path(root) / bench.name, name=bench.mteb_name or bench.name,
                                    instruction=instruction)
    import mteb

    try:
        return mteb.get_task(bench.mteb_name if bench is not None and bench.mteb_name else name)
    except (KeyError, ValueError) as exc:
        raise ConfigError(f"unknown task {name!r}: not a directory, not in the registry, not an mteb task "
                          f"({str(exc).splitlines()[0][:200]})") from None


def run_mteb_tasks(run_dir: str | os.PathLike, tasks: Sequence[str], out: str | os.PathLike,
                   representations: Sequence[str] = ("dense",), checkpoint: str | None = None,
                   data_dir: str | os.PathLike | None = None, instruction: str | None = None, batch_size: int = 16,
                   max_doc_len: int | None = None) -> list[dict]:
    """Evaluate a trained run with mteb on every task and representation; returns the ledger records."""
    from lr_core.retrieval.evaluate import EvalSettings, load_model_for_eval, metrics_record, write_result
    from lr_core.retrieval.mteb_integration import run_mteb

    bad = [r for r in representations if r not in REPRESENTATIONS]
    if bad:
        raise ConfigError(f"unknown representation(s) {bad}; mteb evaluates {', '.join(REPRESENTATIONS)}")
    out = Path(out)
    resolved = [resolve_task(t, data_dir, instruction) for t in tasks]  # all names checked before any work
    model = load_model_for_eval(run_dir, checkpoint=checkpoint, max_doc_len=max_doc_len)
    settings = EvalSettings(batch_size=batch_size, instruction=instruction)
    records = []
    for task in resolved:
        bench = getattr(task, "benchmark", None)
        for rep in representations:
            searcher = LightRetrieverSearch(model, rep, settings, instruction)
            scores = run_mteb(searcher, task, out / "mteb", save_predictions=False)
            dataset = bench.name if bench is not None else task.metadata.name
            metrics = {ours: scores[theirs] for ours, theirs in LEDGER_FROM_MTEB.items() if theirs in scores}
            metrics["num_queries"] = len(searcher.last_run)
            extra = {"evaluator": "mteb", "mteb_task": task.metadata.name, "mteb_main_score": scores["main_score"],
                     "instruction": searcher.instruction_for(task.metadata), "mteb_results": scores["results_path"]}
            rec = metrics_record(dataset, scores["split"], model, rep, metrics,
                                 {"mteb_evaluation_s": round(float(scores["evaluation_time"] or 0.0), 3)}, extra)
            write_result(out / dataset / f"mteb-{rep}", rec, searcher.last_run)
            records.append(rec)
    return records
