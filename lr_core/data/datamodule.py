"""Training batches: the collator (text -> tensors) and the LightningDataModule.

A batch holds B queries, each with 1 positive + n hard negatives (its *group*), drawn from
one training source (homogeneous batches). The collator produces every view a module may
need: document ids, full query ids, the light-query block layout and sparse query counts.

>>> dm = RetrievalDataModule(cfg.data, tokenizer, seed=42)    # doctest: +SKIP
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import lightning as L
import torch

from lr_core.config import DataConfig
from lr_core.dense import LightBatch, build_light_batch
from lr_core.instructions import DEFAULT_INSTRUCTION, training_instruction_for
from lr_core.sparse import sparse_query_vectors
from lr_core.tokenization import RetrievalTokenizer
from lr_core.data.datasets import HomogeneousBatchSampler, TrainGroupDataset
from lr_core.data.formats import TrainExample
from lr_core.data.mining import load_training_sources

log = logging.getLogger(__name__)


@dataclass
class TrainBatch:
    queries: list[str]
    instructions: list[str]
    group_size: int
    doc_ids: torch.Tensor  # [B*G, Ld]
    doc_mask: torch.Tensor
    full_query_ids: torch.Tensor  # [B, Lq]
    full_query_mask: torch.Tensor
    light: LightBatch
    sparse_query: torch.Tensor  # [B, V] term counts (or presence)

    def to(self, device) -> "TrainBatch":
        moved: dict[str, Any] = {}
        for name, value in vars(self).items():
            moved[name] = value.to(device) if isinstance(value, (torch.Tensor, LightBatch)) else value
        return TrainBatch(**moved)

    def __len__(self) -> int:
        return len(self.queries)


class TrainCollator:
    """Turns dataset items into a :class:`TrainBatch` with the suite's tokenisation rules."""

    def __init__(self, tokenizer: RetrievalTokenizer, sparse_query_mode: str = "counts"):
        self.tok = tokenizer
        self.sparse_query_mode = sparse_query_mode

    def __call__(self, items: list[dict]) -> TrainBatch:
        tok = self.tok
        queries = [it["query"] for it in items]
        instructions = [it["instruction"] for it in items]
        group = {len(it["passages"]) for it in items}
        if len(group) != 1:
            raise ValueError(f"all groups of a batch must have the same size, got {sorted(group)}")
        passages = [p for it in items for p in it["passages"]]
        docs = tok.pad(tok.doc_ids([p.title for p in passages], [p.text for p in passages]))
        light_ids = tok.light_query_ids(queries)
        prompts = [tok.prompt_ids(ins) for ins in instructions]
        full = tok.pad(tok.full_query_ids(queries, instructions))
        sparse = sparse_query_vectors(tok.sparse_query_ids(queries), tok.vocab_size, mode=self.sparse_query_mode)
        return TrainBatch(
            queries=queries, instructions=instructions, group_size=group.pop(),
            doc_ids=torch.tensor(docs.input_ids), doc_mask=torch.tensor(docs.attention_mask),
            full_query_ids=torch.tensor(full.input_ids), full_query_mask=torch.tensor(full.attention_mask),
            light=build_light_batch(prompts, light_ids, tok.eos_id, tok.pad_id), sparse_query=sparse,
        )


def resolve_instructions(examples: list[TrainExample], override: str | None) -> None:
    """Give every example its training instruction: the config's, else its own, else its
    source's *training* instruction (the authors' table, which differs from the evaluation one
    for some sets, see :data:`lr_core.instructions.TRAINING_INSTRUCTIONS`).

    A source with no known training instruction falls back to the MS MARCO one (the paper's
    generic web-search prompt) and says so in the log once.
    """
    warned: set[str] = set()
    for ex in examples:
        if override:
            ex.instruction = override
        elif not ex.instruction:
            ex.instruction = training_instruction_for(ex.source, ex.query_id or ex.query)
            if ex.instruction is None:
                if ex.source not in warned:
                    log.warning("no training instruction known for source %r; using the MS MARCO one", ex.source)
                    warned.add(ex.source)
                ex.instruction = DEFAULT_INSTRUCTION


class _EpochSampler(HomogeneousBatchSampler):
    """Batch sampler that also moves the dataset's negative sampling to the new epoch (Lightning calls set_epoch)."""

    def __init__(self, dataset: TrainGroupDataset, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.dataset = dataset

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        self.dataset.set_epoch(epoch)


class RetrievalDataModule(L.LightningDataModule):
    """Loads the configured training sources once and serves homogeneous batches.

    Resume: the data position is saved in the checkpoint as (epoch, batches done) derived
    from the optimizer step, and restored before the first batch, so a resumed run sees the
    same batches it would have seen without the interruption.

    Data parallelism: ``cfg.batch_size`` is the *global* batch of one forward pass (the
    queries the gathered contrastive loss sees together). Each rank gets its disjoint slice
    of ``batch_size / world_size`` queries (see :class:`HomogeneousBatchSampler`), so the
    same seed and batch size give the same sequence of global batches on 1 or N devices.
    With ``accumulate_grad_batches = k`` one optimizer step consumes k consecutive global
    batches: in-batch negatives still come from ``batch_size`` queries, and the step's
    gradient averages over ``k * batch_size`` queries, exactly as on one device.
    """

    def __init__(self, cfg: DataConfig, tokenizer: RetrievalTokenizer, seed: int = 42, sparse_query_mode: str = "counts"):
        super().__init__()
        self.cfg = cfg
        self.tokenizer = tokenizer
        self.seed = seed
        self.collator = TrainCollator(tokenizer, sparse_query_mode)
        self.dataset: TrainGroupDataset | None = None
        self.sampler: _EpochSampler | None = None
        self._pending_state: dict | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.dataset is not None:
            return
        examples = load_training_sources(self.cfg.train, data_dir=self.cfg.data_dir)
        resolve_instructions(examples, self.cfg.instruction)
        self.dataset = TrainGroupDataset(examples, n_negatives=self.cfg.n_negatives, seed=self.seed)
        world, rank = self._world_and_rank()
        self.sampler = _EpochSampler(self.dataset, [ex.source for ex in examples], self.cfg.batch_size, seed=self.seed,
                                     num_replicas=world, rank=rank)
        log.info("training data: %d examples, %d batches per epoch (rank %d of %d gets %d queries of each)",
                 len(examples), len(self.sampler), rank, world, self.cfg.batch_size // world)

    def _world_and_rank(self) -> tuple[int, int]:
        """Data-parallel world size and this process's global rank (1, 0 without a Trainer)."""
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return 1, 0
        return int(trainer.world_size), int(trainer.global_rank)

    def train_dataloader(self):
        self.setup()
        if self._pending_state is not None:
            self.sampler.load_state_dict(self._pending_state)
            self.dataset.set_epoch(self._pending_state["epoch"])
            self._pending_state = None
        return torch.utils.data.DataLoader(self.dataset, batch_sampler=self.sampler, collate_fn=self.collator,
                                num_workers=self.cfg.num_workers)

    # Lightning stores these in every checkpoint.
    def state_dict(self) -> dict:
        if self.sampler is None or self.trainer is None:
            return {}
        consumed = self.trainer.global_step * self.trainer.accumulate_grad_batches
        per_epoch = len(self.sampler)
        return {"epoch": consumed // per_epoch, "batches_done": consumed % per_epoch}

    def load_state_dict(self, state: dict) -> None:
        self._pending_state = dict(state) if state else None
