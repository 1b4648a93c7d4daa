"""Warmup: shapes, prefix vs overlap, exact hand-over, horizons and milestones."""

from __future__ import annotations

import math

import pytest

from lrkit.errors import ConfigError
from lrkit.schedules import Constant, Cosine, Linear, Rel, Warmup


@pytest.mark.parametrize("shape", ["linear", "cosine", "exponential", "constant"])
def test_shapes(shape: str) -> None:
    start, target, w = 0.01, 1.0, 20.0
    s = Warmup(Constant(target), steps=w, start=start, shape=shape)
    for t in [0, 1, 5, 10, 19.5]:
        u = t / w
        ref = {
            "linear": start + (target - start) * u,
            "cosine": start + (target - start) * (1 - math.cos(math.pi * u)) / 2,
            "exponential": start * (target / start) ** u,
            "constant": start,
        }[shape]
        assert s(t) == pytest.approx(ref, rel=1e-13)
    assert s(w) == target
    assert s(1e6) == target


def test_prefix_and_overlap() -> None:
    inner = Linear(100, start=1.0, end=0.0)
    pre = Warmup(inner, steps=10)
    over = Warmup(inner, steps=10, mode="overlap")
    assert pre(10) == 1.0
    assert pre(60) == 0.5
    assert pre.horizon == 110
    assert over(10) == 0.9
    assert over(60) == 0.4
    assert over.horizon == 100
    assert over(5) == pytest.approx(0.45)
    assert pre.milestones() == {"warmup_end": 10.0}
    assert Warmup(inner).horizon == 100
    assert Warmup(inner)(50) == 0.5
    assert Warmup(Cosine(10)).horizon == 10
    assert Warmup(Constant() * Constant()).horizon == 0.0


def test_exact_hand_over() -> None:
    s = Warmup(Cosine(90, peak=0.3, end=0.0), steps=10, start=0.1)
    assert s(10) == 0.3
    assert abs(s(10 - 1e-9) - 0.3) < 1e-9


def test_exponential_needs_positive_start() -> None:
    with pytest.raises(ConfigError, match="start="):
        Warmup(Constant(), 10, start=0.0, shape="exponential")
    with pytest.raises(ConfigError, match="start="):
        Warmup(Constant(), 10, start=Rel(0.0), shape="exponential")
    s = Warmup(Constant(), 10, start=Rel(0.1), shape="exponential")
    assert s(5, base=0.5) == pytest.approx(0.05 * 10**0.5)


def test_validation_names_parameters() -> None:
    with pytest.raises(ConfigError, match="schedule="):
        Warmup(1.0, 10)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="steps="):
        Warmup(Constant(), -1)
    with pytest.raises(ConfigError, match="shape="):
        Warmup(Constant(), 1, shape="quadratic")
    with pytest.raises(ConfigError, match="mode="):
        Warmup(Constant(), 1, mode="inside")
