"""The compressed loss-drop sum against the exact one, within the bound it reports."""

from __future__ import annotations

import numpy as np
import pytest

import lrkit
from lrkit.laws._curve import Curve, DropTable, exact_loss_drop, warmup_length

SPECS = [
    "warmup(50) then cos",
    "wsd(2000, warmup_steps=50, decay_fraction=0.3, decay_shape=\"1-sqrt\")",
    "warmup(50) then multistep([700, 1400], 0.3)",
    "warmup(20) then linear(end=0.1x)",
    "cyclic(low=0.2x, high=1x, step_size_up=200)",  # non-monotone: decrements of both signs
]


def _curve(spec: str, n: int = 2000) -> Curve:
    rates = lrkit.parse(spec, total_steps=n)(np.arange(n, dtype=np.float64), base=3e-4)
    return Curve.from_rates(rates, 3e-4)


def _naive_ld(curve: Curve, t: int, c: float, beta: float, gamma: float) -> float:
    eta = np.concatenate(([curve.peak], curve.eta))
    total = 0.0
    for k in range(1, t + 1):
        s = eta[k:t + 1].sum()
        x = max(eta[k], 1e-12) ** (-gamma) * s
        total += (eta[k - 1] - eta[k]) * (1 - (c * x + 1) ** (-beta))
    return total


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize(("c", "beta", "gamma"), [(0.05, 0.6, 0.6), (2.0, 0.3, 1.2)])
def test_fast_sum_within_its_bound(spec: str, c: float, beta: float, gamma: float) -> None:
    curve = _curve(spec)
    t = np.arange(0, curve.n - curve.warmup + 1)
    exact = exact_loss_drop(curve, t, c, beta, gamma)
    fast, bound = DropTable(curve, near=4).loss_drop(t, c, beta, gamma, bound=True)
    assert bound is not None
    err = np.abs(fast - exact)
    assert np.all(err <= bound + 1e-12)
    # and the measured error is small against the loss drop itself
    assert err.max() <= 2e-4 * max(np.abs(exact).max(), 1e-12)
    # the flattened terms (used when fitting) give the same values
    terms = DropTable(curve, near=4).terms(t[::37])
    np.testing.assert_allclose(terms.loss_drop(c, beta, gamma), fast[::37], rtol=1e-12,
                               atol=1e-15)


def test_exact_sum_is_the_papers_formula() -> None:
    curve = _curve("warmup(10) then cos", 120)
    for t in (1, 7, 50, 110):
        got = exact_loss_drop(curve, np.array([t]), 0.5, 0.4, 0.7)[0]
        assert got == pytest.approx(_naive_ld(curve, t, 0.5, 0.4, 0.7), rel=1e-10)


def test_more_near_terms_shrink_the_error() -> None:
    curve = _curve("warmup(50) then cos", 3000)
    t = np.arange(0, curve.n - curve.warmup + 1)
    exact = exact_loss_drop(curve, t, 0.05, 0.6, 0.6)
    errs = [np.abs(DropTable(curve, near=c).loss_drop(t, 0.05, 0.6, 0.6)[0] - exact).max()
            for c in (2, 4, 8)]
    assert errs[0] > errs[1] > errs[2]


def test_momentum_area_is_the_recurrence() -> None:
    curve = _curve("warmup(10) then cos", 700)  # several 256-update blocks
    lam = 0.99
    eta = np.concatenate(([curve.peak], curve.eta))
    m, s2, want = 0.0, 0.0, [0.0]
    for i in range(1, eta.size):
        m = lam * m + (eta[i - 1] - eta[i])
        s2 += m
        want.append(s2)
    np.testing.assert_allclose(curve.momentum_area(lam), want, rtol=1e-12, atol=1e-15)


def test_warmup_is_where_the_peak_is_first_reached() -> None:
    assert warmup_length(np.array([0.0, 0.5, 1.0, 1.0, 0.5])) == 2
    assert warmup_length(np.array([1.0, 0.5])) == 0
