"""Constant, Linear, Poly: formulas, exact ends, holds."""

from __future__ import annotations

import pytest

from lrkit.schedules import Constant, Linear, Poly, Rel


def test_constant() -> None:
    assert Constant(0.3)(1e9) == 0.3
    assert Constant()(5, base=0.2) == 0.2
    assert Constant().horizon == 0.0


@pytest.mark.parametrize(
    ("power", "peak", "end"), [(1.0, 1.0, 0.0), (0.9, 0.01, 1e-4), (2.0, 0.1, 0.3)]
)
def test_poly_formula(power: float, peak: float, end: float) -> None:
    s = Poly(100, power, peak, end)
    for t in [0, 1, 33.3, 50, 99, 100, 1e4]:
        ref = end + (peak - end) * (1 - min(t, 100) / 100) ** power
        assert s(t) == pytest.approx(ref, rel=1e-14)
    assert s.horizon == 100


def test_poly_and_linear_are_exact_at_both_ends() -> None:
    """``end + (peak - end) * 1`` is not always ``peak`` in floating point (0.7 + (0.1 -
    0.7) == 0.09999999999999998): the formulas land on the configured values exactly."""
    assert 0.7 + (0.1 - 0.7) != 0.1
    assert Poly(10, 1.0, peak=0.1, end=0.7)(0) == 0.1
    assert Poly(10, 0.9, peak=0.2, end=0.9)(0) == 0.2
    assert Linear(10, start=0.7, end=0.1)(10) == 0.1
    assert Linear(10, start=0.9, end=0.3)(10) == 0.3


def test_linear_formula_and_relative() -> None:
    s = Linear(8, start=Rel(0.1), end=Rel(1.0))
    for t in [0, 2, 4, 8, 100]:
        assert s(t, base=2.0) == pytest.approx(0.2 + (2.0 - 0.2) * min(t, 8) / 8, rel=1e-15)
