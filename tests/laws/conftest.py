"""One multi-power fit shared by the law tests (fitting is the expensive part)."""

from __future__ import annotations

import warnings

import pytest

from lrkit.laws import LawFit, LawWarning, fit, synthetic_run

TRUE = {"L0": 3.0, "A": 0.5, "alpha": 0.5, "B": 400.0, "C": 2.0, "beta": 0.6, "gamma": 0.6}
PEAK = 3e-4
N = 3000
FITTED = ["warmup(100) then const", "warmup(100) then cos",
          f"wsd({N}, warmup_steps=100, decay_fraction=0.2)"]


@pytest.fixture(scope="session")
def mpl_fit() -> LawFit:
    runs = [synthetic_run("multi-power", TRUE, s, N, peak=PEAK, noise=0.002, every=5, seed=i)
            for i, s in enumerate(FITTED)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LawWarning)
        return fit(runs, "multi-power", bootstrap=6)
