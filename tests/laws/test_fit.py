"""Fitting recovers known parameters; bad runs and failed fits are errors, never results."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
from tests.laws.conftest import PEAK, TRUE

from lrkit.laws import LawError, LawFit, LawWarning, Run, fit, predict, synthetic_run

ANN = {"L0": 2.5, "A": 0.6, "alpha": 0.4, "C": 1.0}


def _ann_runs(noise: float = 0.0) -> list[Run]:
    return [synthetic_run("annealing", ANN, s, 2000, peak=PEAK, noise=noise, every=4, seed=i)
            for i, s in enumerate(["warmup(50) then const", "warmup(50) then cos"])]


def test_annealing_recovers_its_parameters() -> None:
    f = fit(_ann_runs(noise=0.001), "annealing", bootstrap=0)
    for k, v in ANN.items():
        assert f.params[k] == pytest.approx(v, rel=0.03), k
    assert f.identified
    assert all(r["r2"] > 0.99 and r["rmse_rel"] < 0.002 for r in f.runs)
    # the standard errors are of the size of the noise's effect, not zero, not huge
    assert 0 < f.stderr["alpha"] < 0.05


def test_multi_power_recovers_the_well_determined_parameters(mpl_fit: LawFit) -> None:
    for k in ("L0", "A", "alpha"):
        assert mpl_fit.params[k] == pytest.approx(TRUE[k], rel=0.02), k
    assert mpl_fit.params["B"] == pytest.approx(TRUE["B"], rel=0.35)
    # each start's status is recorded, and the fit is the best converged one
    assert mpl_fit.cost == min(s["cost"] for s in mpl_fit.starts if s["status"] > 0)
    assert all(r["rmse_rel"] < 0.003 for r in mpl_fit.runs)  # the noise is 0.2 %
    assert len(mpl_fit.samples) >= 2


def test_leave_one_run_out_refits(mpl_fit: LawFit) -> None:
    # three runs, each pair still identifies the multi-power law: one refit per left-out run
    assert len(mpl_fit.run_samples) == 3
    assert len(mpl_fit.run_errors) == 3
    assert all(0 < e < 0.01 for e in mpl_fit.run_errors)  # the law's own form, 0.2 % noise
    # two annealing runs: leaving out the cosine leaves no decay, so only one refit, and it
    # is the law fitted to the cosine run alone
    const, cos = _ann_runs(noise=0.001)
    both = fit([const, cos], "annealing", bootstrap=0)
    (only,) = both.run_samples
    alone = fit([cos], "annealing", bootstrap=0)
    np.testing.assert_allclose(only, [alone.params[k] for k in ANN], rtol=0.02)
    # its error: how far it misses the left-out constant run's last 5 % of (binned) losses
    t, y = const.binned(200)
    refit = dataclasses.replace(both, params=dict(zip(ANN, only, strict=True)))
    pred = predict(refit, const.rates, const.n, at=t, band=False).loss
    k = round(0.05 * t.size)
    (err,) = both.run_errors
    assert err == pytest.approx(abs(pred[-k:].mean() / np.exp(y[-k:]).mean() - 1), rel=1e-9)
    assert err > 0
    # a law fitted to as few runs as it needs has nothing to leave out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LawWarning)  # B, C, beta: not determined by two runs
        two = fit(_mpl_pair(), "multi-power", bootstrap=0)
    assert two.run_samples == []


def _mpl_pair() -> list[Run]:
    return [synthetic_run("multi-power", TRUE, s, 1500, peak=PEAK, noise=0.002, every=5,
                          seed=i)
            for i, s in enumerate(["warmup(50) then const", "warmup(50) then cos"])]


def test_start_leaves_out_an_early_transient() -> None:
    runs = []
    for r in _ann_runs(noise=0.001):
        losses = np.where(r.steps < 400, 3.0, r.losses)  # a plateau the law does not know
        runs.append(Run(r.rates, r.steps, losses, label=r.label))
    f = fit(runs, "annealing", bootstrap=0, start=400)
    for k, v in ANN.items():
        assert f.params[k] == pytest.approx(v, rel=0.05), k
    assert f.runs[0]["fit_points"] == min(200, np.count_nonzero(runs[0].steps >= 400))
    with pytest.warns(LawWarning, match="undetermined"):  # the plateau spoils the fit
        bad = fit(runs, "annealing", bootstrap=0)
    assert abs(bad.params["alpha"] / ANN["alpha"] - 1) > 0.05


def test_start_auto_finds_where_the_law_begins_to_hold() -> None:
    runs = []
    for i, spec in enumerate(["warmup(50) then const", "warmup(50) then cos",
                              "wsd(2000, warmup_steps=50, decay_fraction=0.2)"]):
        r = synthetic_run("annealing", ANN, spec, 2000, peak=PEAK, noise=0.001, every=4,
                          seed=i)
        losses = np.where(r.steps < 400, 3.0, r.losses)  # a plateau the law does not know
        runs.append(Run(r.rates, r.steps, losses, label=spec))
    f = fit(runs, "annealing", bootstrap=0, start="auto")
    scores = dict(f.options["start_scores"])
    assert sorted(scores) == [0, 200, 400, 600, 800]  # shares of the 2000-update runs
    assert f.options["start"] == min(scores, key=scores.__getitem__)
    assert f.options["start"] >= 400  # past the plateau
    assert scores[0] > 3 * scores[f.options["start"]]
    for k, v in ANN.items():
        assert f.params[k] == pytest.approx(v, rel=0.05), k
    assert "chosen by the mean left-out-run error" in f.table()
    with pytest.raises(LawError, match="needs more than 1 runs"):
        fit(runs[1:2], "annealing", start="auto")
    with pytest.raises(LawError, match="start='soon' is invalid"):
        fit(runs, "annealing", start="soon")
    with pytest.raises(LawError, match="start=-1 is invalid"):
        fit(runs, "annealing", start=-1)


def test_an_unidentifiable_fit_says_so() -> None:
    # one cosine run with the rate barely moving: the decay term cannot be pinned down
    flat = synthetic_run("annealing", ANN, "warmup(50) then cos(end=0.999x)", 1500, peak=PEAK,
                         noise=0.01, every=5)
    with pytest.warns(LawWarning, match="undetermined"):
        f = fit([flat], "annealing", bootstrap=0)
    assert not f.identified
    assert "C" in f.unidentified


def test_a_fit_that_does_not_converge_is_an_error() -> None:
    runs = _ann_runs(noise=0.01)
    with pytest.raises(LawError, match="did not converge"), warnings.catch_warnings():
        fit(runs, "annealing", max_nfev=1, bootstrap=0)


@pytest.mark.parametrize(("runs", "law", "match"), [
    (lambda: _ann_runs()[:1], "multi-power", "at least 2 runs"),
    (lambda: [_ann_runs()[1], _ann_runs()[1]], "annealing", "same schedule"),
    (lambda: [_ann_runs()[0]], "annealing", "no run decreases"),
    (lambda: [synthetic_run("annealing", ANN, "cos", 30, peak=PEAK, every=5)], "annealing",
     "too short"),
    (lambda: _ann_runs(), "nope", "law='nope'"),
])
def test_bad_runs(runs, law: str, match: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(LawError, match=match):
        fit(runs(), law, bootstrap=0)


@pytest.mark.parametrize(("kw", "match"), [
    ({"losses": [2.0, float("nan"), 1.0]}, "loss at step 2 is nan"),
    ({"losses": [2.0, -1.0, 1.0]}, "loss at step 2 is -1.0"),
    ({"losses": [2.0, 2.0, 2.0]}, "constant"),
    ({"steps": [1, 3, 2]}, "not strictly increasing: step 3 is followed by 2"),
    ({"steps": [1, 2, 11]}, "outside 1..10"),
    ({"rates": [np.nan] * 10}, "rate at update 0 is nan"),
])
def test_bad_run_arrays(kw: dict, match: str) -> None:  # type: ignore[type-arg]
    args = {"rates": np.full(10, 1e-3), "steps": [1, 2, 3], "losses": [2.0, 1.5, 1.2], **kw}
    with pytest.raises(LawError, match=match):
        Run(**args)
