"""Both laws against the papers' formulas typed step by step (tests/laws/_naive.py)."""

from __future__ import annotations

import numpy as np
import pytest
from tests.laws._naive import annealing, mpl

import lrkit
from lrkit.laws import AnnealingLaw, MultiPowerLaw
from lrkit.laws._curve import Curve

MPL = {"L0": 3.0, "A": 0.5, "alpha": 0.5, "B": 400.0, "C": 2.0, "beta": 0.6, "gamma": 0.6}
ANN = {"L0": 3.0, "A": 0.5, "alpha": 0.5, "C": 300.0}
PEAK = 3e-4


def _rates(spec: str, n: int) -> np.ndarray:
    return lrkit.parse(spec, total_steps=n)(np.arange(n, dtype=np.float64), base=PEAK)


@pytest.mark.parametrize("spec", ["warmup(20) then cos", "warmup(10) then multistep([150], 0.1)",
                                  "wsd(300, warmup_steps=30, decay_fraction=0.3)"])
def test_multi_power_matches_the_paper(spec: str) -> None:
    n = 300
    r = _rates(spec, n)
    steps = np.array([40, 120, 151, 299, 300])
    want = [mpl(r.tolist(), int(t), MPL) for t in steps]
    unit = 2 * PEAK  # any unit: the raw parameters mean the same
    # near=300 sums every term exactly; the default compresses (error ~1e-6 here)
    for law, rtol in ((MultiPowerLaw(near=300), 1e-10), (MultiPowerLaw(), 1e-5)):
        theta = law.from_raw(np.array([MPL[k] for k in law.params]), unit)
        got = law.curve_at(theta, Curve.from_rates(r, unit), steps)
        np.testing.assert_allclose(got, want, rtol=rtol)


def test_annealing_matches_the_paper() -> None:
    n = 300
    r = _rates("warmup(20) then cos", n)
    law = AnnealingLaw(decay=0.99)
    theta = law.from_raw(np.array([ANN[k] for k in law.params]), PEAK)
    steps = np.array([21, 100, 300])
    got = law.curve_at(theta, Curve.from_rates(r, PEAK), steps)
    want = [annealing(r.tolist(), int(t), ANN, lam=0.99) for t in steps]
    np.testing.assert_allclose(got, want, rtol=1e-10)


def test_warmup_steps_are_not_predicted() -> None:
    r = _rates("warmup(20) then cos", 100)
    law = MultiPowerLaw()
    theta = law.from_raw(np.array([MPL[k] for k in law.params]), PEAK)
    out = law.curve_at(theta, Curve.from_rates(r, PEAK), np.array([5, 20, 21]))
    assert np.isnan(out[:2]).all()
    assert np.isfinite(out[2])


@pytest.mark.parametrize("law", [MultiPowerLaw(), AnnealingLaw()])
def test_raw_units_round_trip(law: object) -> None:
    raw = np.linspace(0.3, 2.0, len(law.params))  # type: ignore[attr-defined]
    back = law.to_raw(law.from_raw(raw, 3e-4), 3e-4)  # type: ignore[attr-defined]
    np.testing.assert_allclose(back, raw, rtol=1e-12)
