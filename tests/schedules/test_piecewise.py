"""Piecewise schedules: interpolation, holds outside the points, jumps."""

from __future__ import annotations

import numpy as np
import pytest

from lrkit.schedules import Piecewise, Rel


def test_linear_matches_numpy_interp_away_from_jumps() -> None:
    steps, vals = (5.0, 10.0, 30.0, 31.0), (0.0, 1.0, 0.2, 0.4)
    s = Piecewise(steps, vals)
    t = np.linspace(0.0, 50.0, 2001)
    np.testing.assert_allclose(s(t), np.interp(t, steps, vals), rtol=1e-14, atol=1e-16)
    for st, v in zip(steps, vals, strict=True):
        assert s(st) == v  # exact at every point


def test_constant_interpolation() -> None:
    s = Piecewise((10, 20, 30), (1.0, 0.5, 0.25), interpolation="constant")
    expect = {0: 1.0, 10: 1.0, 19.9: 1.0, 20: 0.5, 29: 0.5, 30: 0.25, 1e6: 0.25}
    for t, v in expect.items():
        assert s(t) == v


@pytest.mark.parametrize("interpolation", ["linear", "constant"])
def test_repeated_step_is_a_jump_and_the_later_value_wins(interpolation: str) -> None:
    s = Piecewise((0, 10, 10, 20), (0.0, 1.0, 0.5, 0.5), interpolation=interpolation)
    assert s(10) == 0.5  # the value listed last wins at the step itself
    left = s(10 - 1e-9)
    assert left == (pytest.approx(1.0, abs=1e-9) if interpolation == "linear" else 0.0)
    assert s(15) == 0.5


def test_single_point_relative_and_horizon() -> None:
    s = Piecewise((7,), (Rel(2.0),))
    assert s(0, base=0.5) == 1.0
    assert s(100, base=0.5) == 1.0
    assert s.horizon == 7
