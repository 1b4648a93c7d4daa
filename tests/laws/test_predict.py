"""Predicting held-out synthetic schedules; the band; warnings outside the fitted range."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
from tests.laws.conftest import PEAK, TRUE, N

from lrkit.laws import LawFit, LawWarning, predict, synthetic_run
from lrkit.laws._curve import Curve
from lrkit.laws.models import LAWS
from lrkit.laws.predict import rates_of

HELD_OUT = ["warmup(100) then linear", "warmup(100) then multistep([1500, 2500], 0.3)",
            f"wsd({N}, warmup_steps=100, decay_fraction=0.4, decay_shape=\"1-sqrt\")"]


@pytest.mark.parametrize("spec", HELD_OUT)
def test_held_out_final_loss(mpl_fit: LawFit, spec: str) -> None:
    truth = synthetic_run("multi-power", TRUE, spec, N, peak=PEAK, every=10)
    p = predict(mpl_fit, spec, N, base=PEAK)
    assert p.steps[-1] == N
    assert p.steps[0] == 101
    assert p.final == pytest.approx(truth.losses[-1], rel=2e-3)
    # the whole curve after warmup
    pred = np.interp(truth.steps, p.steps, p.loss)
    assert np.max(np.abs(pred / truth.losses - 1)) < 4e-3
    lo, hi = p.final_band  # type: ignore[misc]
    assert lo <= p.final <= hi


def test_longer_horizon(mpl_fit: LawFit) -> None:
    spec = "warmup(100) then cos"
    truth = synthetic_run("multi-power", TRUE, spec, 2 * N, peak=PEAK, every=100)
    p = predict(mpl_fit, spec, 2 * N, base=PEAK, at=[2 * N])
    assert p.final == pytest.approx(truth.losses[-1], rel=5e-3)


def test_rate_array_and_schedule_agree(mpl_fit: LawFit) -> None:
    import lrkit

    s = lrkit.parse("warmup(100) then cos", total_steps=N)
    a = predict(mpl_fit, s, N, base=PEAK, band=False)
    b = predict(mpl_fit, s(np.arange(N, dtype=float), base=PEAK), band=False)
    np.testing.assert_array_equal(a.loss, b.loss)


@pytest.mark.parametrize(("spec", "steps", "base", "match"), [
    ("warmup(100) then cos", N, 2 * PEAK, "peak rate"),
    ("warmup(100) then cos", 4 * N, PEAK, "longest fitted run"),
    ("warmup(100) then cyclic(low=0.1x, high=1x, step_size_up=300)", N, PEAK, "increases"),
])
def test_warns_outside_what_the_fit_knows(mpl_fit: LawFit, spec: str, steps: int,
                                          base: float, match: str) -> None:
    with pytest.warns(LawWarning, match=match):
        p = predict(mpl_fit, spec, steps, base=base, band=False, at=[steps])
    assert any(match in w for w in p.warnings)


def test_band_covers_bootstrap_and_leave_one_run_out_refits(mpl_fit: LawFit) -> None:
    spec = "warmup(100) then linear"
    p = predict(mpl_fit, spec, 2 * N, base=PEAK)
    assert p.low is not None
    assert p.high is not None
    model = LAWS["multi-power"]()
    curve = Curve.from_rates(rates_of(spec, 2 * N, PEAK), mpl_fit.unit)
    ts = p.steps[:: max(1, p.steps.size // 50)]
    idx = np.searchsorted(p.steps, ts)
    # every left-out-run refit, times 1 -/+ its error on the run it left out, lies inside
    # the band (up to the band's interpolation between its BAND_POINTS steps)
    for th, err in zip(mpl_fit.run_sample_thetas(), mpl_fit.run_errors, strict=True):
        pred = model.curve_at(th, curve, ts)
        tol = 1e-6 * pred
        assert np.all(p.low[idx] <= pred * (1 - err) + tol)
        assert np.all(pred * (1 + err) <= p.high[idx] + tol)
    # without the refits the band is the bootstrap's alone, never wider
    boot = predict(dataclasses.replace(mpl_fit, run_samples=[]), spec, 2 * N, base=PEAK)
    assert boot.low is not None
    assert boot.high is not None
    assert np.all(boot.low >= p.low)
    assert np.all(boot.high <= p.high)
    assert np.any(boot.high - boot.low < p.high - p.low)
    # the refits alone still give a band
    loo = predict(dataclasses.replace(mpl_fit, samples=[]), spec, 2 * N, base=PEAK)
    assert loo.low is not None
    assert np.all(loo.low <= loo.loss)


def test_a_non_positive_prediction_is_flagged(mpl_fit: LawFit) -> None:
    # steps inside the warmup are not predicted (NaN) and are no reason to warn
    with warnings.catch_warnings():
        warnings.simplefilter("error", LawWarning)
        inside = predict(mpl_fit, "warmup(100) then cos", N, base=PEAK, band=False,
                         at=[50, 500, N])
    assert np.isnan(inside.loss[0])
    assert inside.warnings == []
    # a loss-drop scale far beyond the data drives the curve below zero
    wild = dataclasses.replace(mpl_fit, params={**mpl_fit.params, "L0": 0.01, "B": 1e6})
    with pytest.warns(LawWarning, match="loss <= 0"):
        p = predict(wild, "warmup(100) then cos", N, base=PEAK, band=False)
    assert np.any(p.loss <= 0)
    assert any("loss <= 0" in w for w in p.warnings)
