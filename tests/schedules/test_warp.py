"""TimeWarp: a schedule on the clock T (t/T)^k (timm's k-decay)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lrkit.errors import ConfigError
from lrkit.schedules import Cosine, Linear, Poly, TimeWarp, Warmup


@pytest.mark.parametrize("k", [0.5, 1.0, 2.0, 3.7])
def test_k_decay_cosine_and_poly_formulas(k: float) -> None:
    T = 80
    c = TimeWarp(Cosine(T, end=0.1), T, k)
    p = TimeWarp(Poly(T, 0.9, end=0.1), T, k)
    for t in np.arange(0.0, 2 * T, 0.5):
        u = min(t, T)
        assert c(t) == pytest.approx(0.1 + 0.9 * (1 + math.cos(math.pi * u**k / T**k)) / 2,
                                     rel=1e-12, abs=1e-15)
        assert p(t) == pytest.approx(0.1 + 0.9 * (1 - u**k / T**k) ** 0.9, rel=1e-12, abs=1e-15)
    assert c.horizon == T


def test_horizon_and_milestones_are_unwarped() -> None:
    s = TimeWarp(Warmup(Linear(40, end=0.0), 10), 100, 2.0)
    # the inner horizon 50 is reached when (t/100)^2 * 100 = 50: t = 100 sqrt(0.5)
    h = s.horizon
    assert h is not None
    assert h == pytest.approx(100 * math.sqrt(0.5), rel=1e-12)
    assert s(h) == 0.0
    assert s(math.nextafter(h, 0)) > 0.0
    assert s.milestones()["warmup_end"] == pytest.approx(100 * math.sqrt(0.1), rel=1e-12)


def test_torch_and_numpy_agree() -> None:
    s = TimeWarp(Cosine(50), 50, 1.5)
    t = np.arange(0.0, 80.0)
    np.testing.assert_allclose(s(torch.from_numpy(t)).numpy(), s(t), rtol=1e-13)


@pytest.mark.parametrize(("kw", "match"), [
    ({"total_steps": 0}, "total_steps=0"),
    ({"power": 0.0}, r"power=0\.0"),
    ({"schedule": 1.0}, "schedule=1.0"),
])
def test_validation(kw: dict[str, object], match: str) -> None:
    args: dict[str, object] = {"schedule": Cosine(10), "total_steps": 10, "power": 2.0, **kw}
    with pytest.raises(ConfigError, match=match):
        TimeWarp(**args)  # type: ignore[arg-type]
