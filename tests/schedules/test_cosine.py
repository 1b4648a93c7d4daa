"""Cosine and CosineRestarts against formulas typed here (timm's cycle semantics included)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lrkit.schedules import Cosine, CosineRestarts, Rel


def cos_ref(t: float, total: float, peak: float, end: float) -> float:
    t = min(t, total)
    return end + (peak - end) * 0.5 * (1.0 + math.cos(math.pi * t / total))


@pytest.mark.parametrize(("total", "peak", "end"), [(100, 1.0, 0.0), (7, 0.3, 0.01), (1, 2.0, 1.0)])
def test_cosine_formula(total: float, peak: float, end: float) -> None:
    s = Cosine(total, peak, end)
    for t in [0, 0.5, 1, total / 3, total / 2, total - 1e-3, total, 2 * total, 1e9]:
        assert s(t) == pytest.approx(cos_ref(t, total, peak, end), rel=1e-14, abs=1e-300)


def test_cosine_exact_ends_and_hold() -> None:
    s = Cosine(1000, peak=0.1, end=0.3)  # a rise: exact at both ends all the same
    assert s(0) == 0.1
    assert s(1000) == 0.3
    assert s(5000) == 0.3
    assert s.horizon == 1000


def test_cosine_relative_values() -> None:
    s = Cosine(10, peak=Rel(1.0), end=Rel(0.1))
    assert s.is_relative
    assert s(0, base=2.0) == 2.0
    assert s(10, base=2.0) == pytest.approx(0.2)
    assert s.bind(2.0) == Cosine(10, 2.0, 0.2)


def restarts_ref(
    t: float, period: float, mult: float, peak: float, end: float, decay: float, limit: int
) -> float:
    """timm's CosineLRScheduler cycle semantics, by walking the cycles (exact for the
    dyadic periods used here): cycle i lasts period * mult**i, peaks at peak * decay**i;
    after ``limit`` cycles (0 = never) the value is the floor."""
    start, length, i = 0.0, float(period), 0
    while t >= start + length:
        start += length
        length *= mult
        i += 1
    if limit and i >= limit:
        return end
    top = peak * decay**i
    return end + 0.5 * (top - end) * (1 + math.cos(math.pi * (t - start) / length))


@pytest.mark.parametrize(
    ("period", "mult", "decay", "limit"),
    [(10, 1.0, 1.0, 0), (8, 2.0, 0.5, 0), (16, 1.5, 0.8, 4), (4, 1.25, 1.0, 0), (5, 3.0, 0.9, 2)],
)
def test_restarts_timm_semantics(period: float, mult: float, decay: float, limit: int) -> None:
    s = CosineRestarts(period, mult, 1.0, 0.01, decay, max_cycles=limit or None)
    t = np.arange(0.0, 600.0, 0.25)
    ours = s(t)
    ref = np.asarray([restarts_ref(x, period, mult, 1.0, 0.01, decay, limit) for x in t])
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-15)


def test_restarts_boundaries_are_exact_restarts() -> None:
    s = CosineRestarts(period=16, period_mult=1.5, peak=1.0, peak_decay=0.5)
    for k in range(12):
        b = s.cycle_start(k)
        assert s(b) == 0.5**k  # exactly the (decayed) peak at each boundary
        if k:
            assert s(b - 1e-9) < 1e-9 * 1.0 + 1e-12  # the previous cycle has just ended


def test_restarts_max_cycles_hold_and_horizon() -> None:
    s = CosineRestarts(period=10, period_mult=2, peak=1.0, end=0.1, max_cycles=3)
    assert s.horizon == 70.0
    assert s(69.999) > 0.1
    assert s(70) == 0.1
    assert s(1e12) == 0.1
    assert CosineRestarts(period=10).horizon is None
    assert set(s.milestones()) == {"restart_1", "restart_2", "end"}


@given(
    st.floats(0.5, 100.0),
    st.floats(1.0, 3.0),
    st.integers(0, 30),
)
def test_restarts_closed_form_index_matches_walk(period: float, mult: float, k: int) -> None:
    """At S_k (and just inside cycle k) the log-based index agrees with cycle_start."""
    s = CosineRestarts(period, mult, peak=1.0)
    b = s.cycle_start(k)
    assert s(b) == 1.0
    nxt = s.cycle_start(k + 1)
    mid = b + (nxt - b) / 2
    assert s(mid) == pytest.approx(0.5, rel=1e-9)
