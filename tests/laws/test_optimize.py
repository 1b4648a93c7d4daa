"""Optimizing schedules under a fitted law; horizon questions."""

from __future__ import annotations

import numpy as np
import pytest
from tests.laws.conftest import PEAK, TRUE, N

import lrkit
from lrkit.laws import LawFit, rates_of, synthetic_run
from lrkit.laws.optimize import choose_cooldown, extend, final_loss, optimize, search_wsd


def test_final_loss_is_the_curves_last_point(mpl_fit: LawFit) -> None:
    from lrkit.laws import predict

    r = rates_of("warmup(100) then cos", N, PEAK)
    assert final_loss(mpl_fit, r) == pytest.approx(
        predict(mpl_fit, r, band=False).final, rel=2e-5)  # compressed sum


def test_wsd_search_finds_the_grid_optimum(mpl_fit: LawFit) -> None:
    best = search_wsd(mpl_fit, N, shapes=("linear",), ends=(0.0,))[0]
    # brute force over decay fractions, independently of the search
    fr = np.linspace(0.02, 0.9, 89)
    losses = [final_loss(mpl_fit, rates_of(
        f"wsd({N}, warmup_steps={mpl_fit.warmup}, decay_fraction={f})", N, PEAK)) for f in fr]
    assert best.loss <= min(losses) + 1e-6
    assert best.schedule.decay_fraction == pytest.approx(fr[int(np.argmin(losses))], abs=0.03)


def test_optimize_beats_wsd_and_cosine_and_its_spec_parses(mpl_fit: LawFit) -> None:
    o = optimize(mpl_fit, N, knots=16)  # robust: ranked by the worst over fit and refits
    assert o.best.worst <= o.wsd.worst + 1e-9 < o.cosine.worst
    assert o.best.loss < o.cosine.loss
    sched = lrkit.parse(o.best.spec)
    r = sched(np.arange(N, dtype=np.float64))
    np.testing.assert_allclose(r, o.rates, rtol=1e-5, atol=1e-12)
    assert np.all(np.diff(r[mpl_fit.warmup:]) <= 1e-15)  # non-increasing after warmup
    # the law's real curve (the true parameters) agrees that it beats cosine
    true_best = synthetic_run("multi-power", TRUE, r, N, every=100).losses[-1]
    true_cos = synthetic_run("multi-power", TRUE, o.cosine.spec, N, every=100).losses[-1]
    assert true_best < true_cos
    assert "predicted gain" in o.table()


def test_robust_choice_guards_against_what_the_refits_disagree_on(mpl_fit: LawFit) -> None:
    import dataclasses

    # a refit that, unlike the fit, sees no payoff in decaying late: the robust choice must
    # be good under it too, the fit's own choice need not be
    lazy = dict(mpl_fit.params, B=mpl_fit.params["B"] * 0.05)
    doubtful = dataclasses.replace(mpl_fit, run_samples=[[lazy[k] for k in mpl_fit.params]])
    own = optimize(doubtful, N, knots=12, robust=False)
    safe = optimize(doubtful, N, knots=12)
    assert safe.best.worst < own.best.worst - 1e-3  # (3.531 against 3.546 when written)
    assert own.best.loss < safe.best.loss - 1e-3
    assert own.best.loss <= own.wsd.loss + 1e-9 < own.cosine.loss
    thetas = doubtful.run_sample_thetas()
    for c in (safe.best, safe.wsd, safe.cosine):
        r = rates_of(c.schedule, N)
        assert c.worst == pytest.approx(max(final_loss(doubtful, r),
                                            final_loss(doubtful, r, thetas[0])), rel=1e-12)
    # WSD candidates are ranked by their worst prediction
    ws = search_wsd(doubtful, N, shapes=("linear",), ends=(0.0,))
    assert [c.worst for c in ws] == sorted(c.worst for c in ws)


def test_horizon_questions(mpl_fit: LawFit) -> None:
    spec = f"wsd({N}, warmup_steps=100, decay_fraction=0.2, peak={PEAK})"
    e = extend(mpl_fit, spec, N, N)
    # more steps at the final (low) rate help a little; a cooldown at the new end more
    assert e["rewsd"] < e["hold"] < e["now"]
    want = final_loss(mpl_fit, rates_of(
        f"wsd({2 * N}, warmup_steps=100, decay_steps={0.2 * N}, peak={PEAK})", 2 * N))
    assert e["rewsd"] == pytest.approx(want, rel=1e-12)
    c = choose_cooldown(mpl_fit, N, shape="linear")
    assert 0 < c.schedule.decay_fraction < 1
