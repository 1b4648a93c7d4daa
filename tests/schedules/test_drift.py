"""Closed forms over 10^6 steps equal exact accumulation / stepping: no drift.

Each reference walks the schedule step by step with exact arithmetic (integers, dyadic
fractions, ``fractions.Fraction`` or extended precision) and is compared with one
vectorized evaluation of the closed form.
"""

from __future__ import annotations

import numpy as np

from lrkit.schedules import CosineRestarts, Cyclic, Exponential, MultiStep, StepDecay

N = 1_000_000
T = np.arange(float(N))


def test_restarts_fractional_mult_cycle_boundaries() -> None:
    """period 16, mult 1.5: every cycle length 16 * 1.5**k is a dyadic rational, so the
    accumulated boundaries are exact in float64; the log-based closed form must place all
    10^6 steps in the same cycle, at the same position."""
    s = CosineRestarts(period=16, period_mult=1.5, peak=1.0, end=0.0, peak_decay=0.9)
    lengths = 16.0 * 1.5 ** np.arange(40)
    starts = np.concatenate(([0.0], np.cumsum(lengths)))
    k = np.searchsorted(starts, T, side="right") - 1  # accumulated, exact
    frac = (T - starts[k]) / lengths[k]
    ref = 0.9**k * (1 + np.cos(np.pi * frac)) / 2
    ours = s(T)
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-15)
    # restarts exactly where the accumulated cycles start
    at = starts[(starts > 0) & (starts < N)]
    assert np.all(s(at) == 0.9 ** np.arange(1, at.size + 1))


def test_restarts_integer_mult_matches_stepping_counters() -> None:
    """torch's stepping rule (T_cur += 1; wrap at T_i; T_i *= mult) as integer arrays."""
    s = CosineRestarts(period=3, period_mult=2, peak=1.0)
    lengths = 3 * 2 ** np.arange(25, dtype=np.int64)
    starts = np.concatenate(([0], np.cumsum(lengths)))
    k = np.searchsorted(starts, np.arange(N), side="right") - 1
    t_cur, t_i = np.arange(N) - starts[k], lengths[k]
    ref = (1 + np.cos(np.pi * t_cur / t_i)) / 2
    np.testing.assert_allclose(s(T), ref, rtol=1e-12, atol=1e-16)


def test_exponential_no_drift_against_extended_precision() -> None:
    gamma = 0.999_995
    ref = np.power(np.longdouble(gamma), T.astype(np.longdouble))
    ours = Exponential(gamma, peak=1.0)(T)
    assert np.max(np.abs(ours - ref) / ref) < 1e-12
    # the recursive form (multiply each step) does drift
    recursive = np.cumprod(np.full(N, gamma))[:-1]
    assert np.max(np.abs(recursive - ref[1:]) / ref[1:]) > 10 * np.max(np.abs(ours - ref) / ref)


def test_step_and_multistep_match_counters() -> None:
    steps = np.arange(N)
    ours = StepDecay(step_size=1000, gamma=0.5, peak=1.0)(T)
    assert np.array_equal(ours, 0.5 ** (steps // 1000))
    ms = (10, 5000, 5000, 700_000)
    count = np.zeros(N, dtype=np.int64)
    for m in ms:
        count[m:] += 1
    assert np.array_equal(MultiStep(ms, 0.1, 1.0)(T), 0.1**count)


def test_cyclic_matches_position_counter() -> None:
    up, down = 7, 13
    pos = np.arange(N) % (up + down)  # stepping a counter that wraps
    cycle = np.arange(N) // (up + down) + 1
    h = np.where(pos <= up, pos / up, 1 - (pos - up) / down)
    ref = 0.1 + 0.9 * h * 0.5 ** (cycle - 1)
    ours = Cyclic(0.1, 1.0, up, down, mode="triangular2")(T)
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-16)
