"""Training schedules: every value that changes with the step, in one place.

All are pure functions of the step (and, for the loss-triggered FLOPs start, of a small
state that is saved in the checkpoint), so a resumed run continues them exactly. The
module logs each value every step (``train/lr``, ``train/flops_weight``, ``train/tau_*``).

* learning rate: linear warm-up, then cosine to ``min_ratio`` (:func:`warmup_cosine`);
* FLOPs weight: zero before a start step, then the paper's quadratic ramp
  ``base * min(1, ((step - start) / ramp)^2)`` (:func:`flops_weight`); the start is either a
  fixed step or the step at which the training dense losses first fall below a threshold
  (:class:`FlopsStart`);
* temperature: linear from a start value to an end value over N steps (:func:`linear_anneal`).

>>> flops_weight(2000, base=1e-3, ramp_steps=4000)
0.00025
>>> flops_weight(150, base=1e-3, ramp_steps=100, start_step=100)
0.00025
>>> linear_anneal(50, start=0.05, end=0.02, steps=100)
0.035
"""
from __future__ import annotations

import math


def warmup_cosine(step: int, warmup_steps: int, total_steps: int, min_ratio: float) -> float:
    """Learning-rate factor: linear warm-up, then cosine from 1 to ``min_ratio`` at ``total_steps``."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def flops_weight(step: int, base: float = 1e-3, ramp_steps: int = 4000, start_step: int | None = 0) -> float:
    """FLOPs coefficient: 0 before ``start_step`` (or while it is ``None``: not started yet),
    then ``base * min(1, ((step - start_step) / ramp_steps)^2)``; ``ramp_steps <= 0`` jumps to ``base``."""
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if start_step is None or step < start_step:
        return 0.0
    if ramp_steps <= 0:
        return float(base)
    return float(base) * min(1.0, ((step - start_step) / ramp_steps) ** 2)


def linear_anneal(step: int, start: float, end: float | None, steps: int) -> float:
    """``start`` moving linearly to ``end`` over ``steps`` steps, then ``end``; ``end=None`` keeps ``start``."""
    if end is None or steps <= 0:
        return float(start if end is None else end)
    return float(start + (end - start) * min(1.0, step / steps))


class FlopsStart:
    """When the FLOPs ramp starts: a fixed step, or once the training dense losses are low enough.

    With ``below=None`` the start is ``step`` from the config. Otherwise every dense CE term's
    exponential moving average (``ema`` weight of the newest value) is tracked, and the ramp
    starts at the first step where all of them are below ``below`` (never before ``step``).
    The decision is saved in the checkpoint (:meth:`state_dict`), so a resumed run keeps it.

    >>> s = FlopsStart(step=0, below=2.0, ema=1.0)
    >>> s.update(5, {"full_dense": 2.5}); s.started_at is None
    True
    >>> s.update(6, {"full_dense": 1.5}); s.started_at
    6
    """

    def __init__(self, step: int = 0, below: float | None = None, ema: float = 0.1):
        if not 0 < ema <= 1:
            raise ValueError(f"ema must be in (0, 1], got {ema}")
        self.min_step = int(step)
        self.below = below
        self.ema = float(ema)
        self.averages: dict[str, float] = {}
        self.started_at: int | None = self.min_step if below is None else None

    def update(self, step: int, dense_losses: dict[str, float]) -> None:
        """Feed this step's dense losses (before computing its FLOPs weight)."""
        if self.started_at is not None:
            return
        for name, value in dense_losses.items():
            old = self.averages.get(name)
            self.averages[name] = value if old is None else (1 - self.ema) * old + self.ema * value
        if step >= self.min_step and self.averages and max(self.averages.values()) < self.below:
            self.started_at = step

    def state_dict(self) -> dict:
        return {"started_at": self.started_at, "averages": dict(self.averages)}

    def load_state_dict(self, state: dict) -> None:
        self.started_at = state.get("started_at", self.started_at)
        self.averages = dict(state.get("averages", {}))
