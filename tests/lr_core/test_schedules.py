"""Training schedules (lr_core.schedules): learning rate, FLOPs weight and start, temperature."""
from __future__ import annotations

import pytest

from lr_core.schedules import FlopsStart, flops_weight, linear_anneal, warmup_cosine


def test_warmup_then_cosine_to_a_tenth():
    assert warmup_cosine(0, 100, 1000, 0.1) == pytest.approx(0.01)
    assert warmup_cosine(99, 100, 1000, 0.1) == pytest.approx(1.0)
    assert warmup_cosine(100, 100, 1000, 0.1) == pytest.approx(1.0)
    assert warmup_cosine(550, 100, 1000, 0.1) == pytest.approx(0.55)
    assert warmup_cosine(1000, 100, 1000, 0.1) == pytest.approx(0.1)
    assert warmup_cosine(5000, 100, 1000, 0.1) == pytest.approx(0.1)


def test_flops_weight_is_the_papers_quadratic_ramp_by_default():
    assert flops_weight(0) == 0.0
    assert flops_weight(2000) == pytest.approx(1e-3 / 4)
    assert flops_weight(4000) == pytest.approx(1e-3)
    assert flops_weight(12000) == pytest.approx(1e-3)
    assert flops_weight(50, base=2.0, ramp_steps=100) == pytest.approx(0.5)
    assert flops_weight(0, base=0.3, ramp_steps=0) == 0.3
    assert flops_weight(5, base=0.3, ramp_steps=-1) == 0.3
    with pytest.raises(ValueError):
        flops_weight(-1)


def test_flops_weight_is_zero_before_its_start_and_ramps_from_there():
    assert flops_weight(99, base=1.0, ramp_steps=10, start_step=100) == 0.0
    assert flops_weight(100, base=1.0, ramp_steps=10, start_step=100) == 0.0
    assert flops_weight(105, base=1.0, ramp_steps=10, start_step=100) == pytest.approx(0.25)
    assert flops_weight(500, base=1.0, ramp_steps=10, start_step=100) == 1.0
    assert flops_weight(500, base=1.0, ramp_steps=10, start_step=None) == 0.0  # not started yet
    assert flops_weight(100, base=1.0, ramp_steps=0, start_step=100) == 1.0


def test_linear_anneal():
    assert linear_anneal(0, 0.05, 0.02, 100) == 0.05
    assert linear_anneal(50, 0.05, 0.02, 100) == pytest.approx(0.035)
    assert linear_anneal(100, 0.05, 0.02, 100) == pytest.approx(0.02)
    assert linear_anneal(1000, 0.05, 0.02, 100) == pytest.approx(0.02)
    assert linear_anneal(1000, 0.05, None, 100) == 0.05  # no end: constant
    assert linear_anneal(3, 0.05, 0.02, 0) == 0.02  # no anneal length: the end value at once


def test_flops_start_fixed_step():
    s = FlopsStart(step=30)
    assert s.started_at == 30
    s.update(0, {"full_dense": 100.0})
    assert s.started_at == 30


def test_flops_start_waits_for_every_dense_loss_and_never_before_its_step():
    s = FlopsStart(step=5, below=2.0, ema=0.5)
    s.update(0, {"full_dense": 1.0, "light_dense": 3.0})
    assert s.started_at is None  # light still high
    s.update(1, {"full_dense": 1.0, "light_dense": 1.0})  # light EMA 2.0: not below
    assert s.started_at is None
    s.update(2, {"full_dense": 1.0, "light_dense": 0.5})  # EMA 1.25, but before step 5
    assert s.started_at is None
    s.update(5, {"full_dense": 1.0, "light_dense": 0.5})
    assert s.started_at == 5
    s.update(6, {"full_dense": 9.0, "light_dense": 9.0})  # once started, it stays started
    assert s.started_at == 5


def test_flops_start_state_round_trips():
    s = FlopsStart(below=2.0, ema=0.5)
    s.update(0, {"full_dense": 3.0})
    t = FlopsStart(below=2.0, ema=0.5)
    t.load_state_dict(s.state_dict())
    s.update(1, {"full_dense": 0.5}), t.update(1, {"full_dense": 0.5})
    assert s.state_dict() == t.state_dict() and s.started_at == 1  # EMA 0.5*3 + 0.5*0.5 = 1.75 < 2
    with pytest.raises(ValueError):
        FlopsStart(ema=0)
