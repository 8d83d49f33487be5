"""The torch side of training data: grouped examples (1 positive + n negatives) as a Dataset, and
homogeneous batching (every batch from one training source) as a Sampler.
"""
from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence

import torch

from lr_core.data.beir import Passage
from lr_core.errors import DataError
from lr_core.data.formats import TrainExample

__all__ = [
    "TrainGroupDataset",
    "HomogeneousBatchSampler",
]


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
