"""Tanh: the hyperbolic-tangent decay (formula typed independently)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lrkit.errors import ConfigError
from lrkit.schedules import Rel, Tanh


@pytest.mark.parametrize(("lower", "upper"), [(-7.0, 3.0), (-2.0, 2.0), (-400.0, 500.0)])
def test_formula(lower: float, upper: float) -> None:
    s = Tanh(90, peak=Rel(1.0), end=0.01, lower=lower, upper=upper)
    for t in np.arange(0.0, 150.0, 0.5):
        u = min(t, 90) / 90
        want = 0.01 + (0.3 - 0.01) * (1 - math.tanh(lower * (1 - u) + upper * u)) / 2
        assert s(t, base=0.3) == pytest.approx(want, rel=1e-12, abs=1e-300)
    assert s.horizon == 90
    v = s(np.arange(0.0, 200.0), base=0.3)
    assert np.all(np.isfinite(v))
    assert np.all(np.diff(v) <= 0)


def test_torch_matches_numpy() -> None:
    s = Tanh(50, peak=1.0)
    t = np.arange(0.0, 80.0)
    np.testing.assert_allclose(s(torch.from_numpy(t)).numpy(), s(t), rtol=1e-13)


def test_validation() -> None:
    with pytest.raises(ConfigError, match=r"upper=-8\.0 is invalid"):
        Tanh(10, lower=-7.0, upper=-8.0)
    with pytest.raises(ConfigError, match="total_steps=0"):
        Tanh(0)
