"""Cyclic and OneCycle against formulas typed here (torch parity lives elsewhere)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lrkit.errors import ConfigError
from lrkit.schedules import Cyclic, OneCycle, OneCycleMomentum, Rel


def tri(t: float, up: float, down: float) -> tuple[float, int]:
    """Height in [0, 1] of a triangle wave and the 1-based cycle number."""
    c = int(t // (up + down))
    x = t - c * (up + down)
    h = x / up if x <= up else 1 - (x - up) / down
    return h, c + 1


@pytest.mark.parametrize("mode", ["triangular", "triangular2", "exp_range"])
def test_cyclic_formula(mode: str) -> None:
    low, high, up, down, gamma = 0.1, 1.0, 8.0, 4.0, 0.99
    s = Cyclic(low, high, up, down, mode, gamma)
    for t in np.arange(0.0, 100.0, 0.5):
        h, c = tri(t, up, down)
        amp = {"triangular": 1.0, "triangular2": 0.5 ** (c - 1), "exp_range": gamma**t}[mode]
        assert s(t) == pytest.approx(low + (high - low) * h * amp, rel=1e-12, abs=1e-15)


def test_cyclic_scale_mode_override_and_relative() -> None:
    s = Cyclic(0.0, 1.0, 5, mode="exp_range", gamma=0.5, scale_mode="cycle")
    assert s(5) == 0.5
    assert s(15) == 0.25
    assert Cyclic(0.0, 1.0, 5, mode="exp_range", gamma=0.5)(5) == pytest.approx(0.5**5)
    r = Cyclic(Rel(0.1), Rel(1.0), 10)
    assert r(10, base=0.5) == 0.5
    assert r(0, base=0.5) == 0.05


def onecycle_ref(
    t: float, total: int, pct: float, peak: float, div: float, fdiv: float, three: bool, anneal: str
) -> float:
    """The one-cycle policy typed from its definition (phase ends p*T - 1, ...)."""
    first, last = peak / div, peak / div / fdiv
    if three:
        ends = [pct * total - 1, 2 * pct * total - 2, total - 1]
        vals = [first, peak, first, last]
    else:
        ends = [pct * total - 1, total - 1]
        vals = [first, peak, last]
    t = min(t, total - 1)
    start = 0.0
    for i, e in enumerate(ends):
        if t <= e:
            q = (t - start) / (e - start)
            a, b = vals[i], vals[i + 1]
            if anneal == "cos":
                return b + (a - b) * (1 + math.cos(math.pi * q)) / 2
            return a + (b - a) * q
        start = e
    raise AssertionError


@pytest.mark.parametrize("three", [False, True])
@pytest.mark.parametrize("anneal", ["cos", "linear"])
def test_onecycle_formula(three: bool, anneal: str) -> None:
    s = OneCycle(
        1000,
        peak=Rel(1.0),
        pct_start=0.25,
        div_factor=10,
        final_div_factor=100,
        anneal=anneal,
        three_phase=three,
    )
    for t in np.arange(0.0, 1200.0, 3.5):
        ref = onecycle_ref(t, 1000, 0.25, 0.4, 10, 100, three, anneal)
        assert s(t, base=0.4) == pytest.approx(ref, rel=1e-12)
    assert s.horizon == 999
    assert s(999, base=0.4) == 0.4 / 10 / 100
    assert s.milestones()["peak"] == 249


def test_onecycle_momentum_mirrors_the_rate() -> None:
    s = OneCycle(200, pct_start=0.3, three_phase=True)
    m = s.momentum(0.8, 0.9)
    assert m == OneCycleMomentum(200, 0.3, 0.8, 0.9, "cos", True)
    e1, e2 = 0.3 * 200 - 1, 2 * 0.3 * 200 - 2
    assert m(0) == 0.9
    assert m(e1) == 0.8
    assert m(e2) == 0.9
    assert m(150) == 0.9
    assert m(500) == 0.9


def test_onecycle_rejects_empty_phases() -> None:
    with pytest.raises(ConfigError, match="pct_start="):
        OneCycle(10, pct_start=0.1)  # rise would end at step 0 (torch divides by zero)
    with pytest.raises(ConfigError, match="pct_start="):
        OneCycle(100, pct_start=1.0)
    with pytest.raises(ConfigError, match="pct_start="):
        OneCycle(100, pct_start=0.6, three_phase=True)
