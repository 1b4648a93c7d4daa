"""Exponential, StepDecay and MultiStep against formulas typed here."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lrkit.errors import ConfigError
from lrkit.schedules import Exponential, MultiStep, Rel, StepDecay


def test_exponential_smooth_and_staircase() -> None:
    s = Exponential(0.9, peak=2.0, period=4)
    st = Exponential(0.9, peak=2.0, period=4, staircase=True)
    for t in [0, 1, 3.9, 4, 10, 123.5]:
        assert s(t) == pytest.approx(2.0 * 0.9 ** (t / 4), rel=1e-14)
        assert st(t) == pytest.approx(2.0 * 0.9 ** math.floor(t / 4), rel=1e-14)


def test_exponential_floor_cap_and_horizon() -> None:
    assert Exponential(0.5, peak=1.0, end=0.1)(100) == 0.1
    assert Exponential(0.5, peak=1.0, end=0.1)(1) == 0.5
    grow = Exponential(2.0, peak=1e-6, end=1.0)
    assert grow(10) == pytest.approx(1e-6 * 1024)
    assert grow(1e9) == 1.0
    assert np.isfinite(grow(1e300))
    held = Exponential(0.5, peak=1.0, total_steps=3)
    assert held(3) == 0.125
    assert held(100) == 0.125
    assert held.horizon == 3
    assert Exponential(0.5).horizon is None


def test_exponential_growth_needs_a_limit() -> None:
    with pytest.raises(ConfigError, match="gamma="):
        Exponential(1.5)
    with pytest.raises(ConfigError, match="total_steps="):
        Exponential(10.0, total_steps=1e6)
    assert Exponential(1.01, peak=1.0, total_steps=100)(1000) == pytest.approx(1.01**100)


def test_step_decay() -> None:
    s = StepDecay(step_size=30, gamma=0.1, peak=Rel(1.0))
    for t in [0, 29, 30, 59.5, 60, 95]:
        assert s(t, base=0.5) == pytest.approx(0.5 * 0.1 ** (t // 30), rel=1e-14)
    assert s.horizon is None


def test_multistep_and_repeated_milestones() -> None:
    s = MultiStep(boundaries=(10, 20, 20, 35), gamma=0.5, peak=1.0)
    expect = {0: 1.0, 9.99: 1.0, 10: 0.5, 19: 0.5, 20: 0.125, 34: 0.125, 35: 0.0625, 1e9: 0.0625}
    for t, v in expect.items():
        assert s(t) == v
    assert s.horizon == 35
    assert s.milestones() == {
        "decay_1": 10,
        "decay_2": 20,
        "decay_3": 20,
        "decay_4": 35,
    }
    assert MultiStep((), peak=0.3)(100) == 0.3
    assert MultiStep((0,), gamma=0.5, peak=1.0)(0) == 0.5  # a milestone at 0 applies at once
