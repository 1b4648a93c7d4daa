"""Predicting held-out synthetic schedules; the band; warnings outside the fitted range."""

from __future__ import annotations

import numpy as np
import pytest
from tests.laws.conftest import PEAK, TRUE, N

from lrkit.laws import LawFit, LawWarning, predict, synthetic_run

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
