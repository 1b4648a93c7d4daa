"""Invariants of every schedule family, over hypothesis-generated configurations."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st

from lrkit.schedules import WSD, OneCycle, Warmup
from strategies import BASE, Case, bound, cases, cosine, linear, onecycle, poly, step_arrays, wsd


@given(cases, step_arrays())
def test_bounded_finite_never_negative(case: Case, t: np.ndarray) -> None:
    v = case.schedule(t, base=BASE)
    assert np.all(np.isfinite(v))
    assert np.all(v >= 0)
    assert np.all(v >= case.low)
    assert np.all(v <= case.high)


@given(cases, step_arrays())
def test_scalar_equals_vectorized_bit_for_bit(case: Case, t: np.ndarray) -> None:
    v = case.schedule(t, base=BASE)
    scalars = np.asarray([case.schedule(float(x), base=BASE) for x in t[:20]])
    assert np.array_equal(scalars, v[:20])


@given(cases, step_arrays())
def test_torch_float64_matches_numpy(case: Case, t: np.ndarray) -> None:
    s = case.schedule.bind(BASE)
    ours = s(t)
    theirs = s(torch.from_numpy(t)).numpy()
    # atol: near a zero end, an ulp of the peak is a large relative error of a tiny value
    np.testing.assert_allclose(theirs, ours, rtol=1e-13, atol=1e-15 * max(case.high, 1e-300))


@given(cases)
def test_holds_past_horizon(case: Case) -> None:
    s = case.schedule
    h = s.horizon
    if h is None:
        return
    at = s(h, base=BASE)
    far = s(np.asarray([h, h + 0.5, h + 1, 2 * h + 7, 1e12]), base=BASE)
    assert np.all(far == at)


@given(st.one_of(cosine(), poly(), linear()))
def test_exact_start_and_end(case: Case) -> None:
    s = case.schedule
    fields = s.__dict__
    first = bound(fields["peak"] if "peak" in fields else fields["start"])
    assert s(0, base=BASE) == first
    assert s(s.horizon, base=BASE) == bound(fields["end"])


@given(cases, step_arrays())
def test_monotone_where_documented(case: Case, t: np.ndarray) -> None:
    if case.monotone is None:
        return
    d = np.diff(case.schedule(t, base=BASE))
    assert np.all(d <= 0) if case.monotone == "dec" else np.all(d >= 0)


@given(st.one_of(cosine(), poly(), linear()), st.floats(1.0, 500.0), st.floats(0.0, 1.0))
def test_warmup_hand_over_is_continuous(case: Case, w: float, start: float) -> None:
    s = Warmup(case.schedule, w, start).bind(BASE)
    target = s.schedule(0)
    assert s(w) == target
    eps = w * 1e-9
    assert abs(s(w - eps) - target) <= abs(target - start) * 1e-8 + 1e-15


@given(wsd())
def test_wsd_joins_are_continuous(case: Case) -> None:
    s = case.schedule
    assert isinstance(s, WSD)
    b = s.bind(BASE)
    peak = bound(s.peak)
    if s.warmup_steps > 0:
        assert b(s.warmup_steps) == peak
    assert b(s.decay_start) == peak
    assert abs(b(s.decay_start + 1e-7) - peak) <= 1e-3 * abs(peak - bound(s.end)) + 1e-15


@given(onecycle())
def test_onecycle_phase_joins_are_continuous(case: Case) -> None:
    s = case.schedule.bind(BASE)
    for name, e in s.milestones().items():
        left, right = s(max(e - 1e-7, 0.0)), s(e)
        assert abs(left - right) <= 1e-4 * (case.high - case.low) + 1e-15, name
    if isinstance(s, OneCycle):
        assert s(s.milestones()["peak"]) == s.peak
