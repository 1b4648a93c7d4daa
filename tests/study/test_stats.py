"""Statistics across seeds: paired t-intervals (checked against scipy), verdicts, sentences."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lrkit.study.config import RunConfig, ScheduleChoice
from lrkit.study.record import RunResult
from lrkit.study.stats import paired_interval, summarize, t975

scipy_stats = pytest.importorskip("scipy.stats")


def _run(schedule: str, seed: int, value: float, opt: str = "adamw",
         status: str = "finished") -> RunResult:
    cfg = RunConfig(ScheduleChoice(schedule, "constant"), opt, 0.1, seed, 10)
    return RunResult(cfg, evals={"step": [10.0], "loss": [value]}, status=status)


def test_t_quantiles_match_scipy() -> None:
    for df in (1, 2, 3, 5, 10, 29, 30, 31, 50, 200):
        assert t975(df) == pytest.approx(scipy_stats.t.ppf(0.975, df), abs=1.5e-3)


@given(st.lists(st.floats(-1, 1, allow_nan=False), min_size=2, max_size=12))
def test_paired_interval_matches_scipy(diffs: list[float]) -> None:
    m, lo, hi = paired_interval(diffs)
    assert m == pytest.approx(float(np.mean(diffs)), abs=1e-12)
    if np.std(diffs) < 1e-9:
        return
    res = scipy_stats.ttest_1samp(diffs, 0.0).confidence_interval(0.95)
    # the table's t is rounded to 3 decimals: bounds agree to that relative precision
    half = (res.high - res.low) / 2
    assert lo == pytest.approx(res.low, abs=1e-3 * half + 1e-12)
    assert hi == pytest.approx(res.high, abs=1e-3 * half + 1e-12)


def test_verdicts_best_tied_worse_and_not_ranked() -> None:
    runs = []
    base = [0.50, 0.60, 0.55]  # seeds differ a lot; schedules shift every seed alike
    for s, b in enumerate(base):
        runs.append(_run("a", s, b))                       # best
        runs.append(_run("b", s, b + 0.01 + 0.001 * s))    # worse on every seed: real
        runs.append(_run("c", s, b + (0.03, -0.02, 0.0)[s]))  # mixed: tied
        runs.append(_run("d", s, b if s else math.nan, status="diverged" if not s
                         else "finished"))
    (v,) = summarize(runs, "loss", higher_is_better=False)
    assert [r.schedule for r in v.rows] == ["a", "c", "b", "d"]
    assert [r.verdict for r in v.rows] == ["best", "tied", "worse", "diverged"]
    b = v.rows[2]
    d = [0.01, 0.011, 0.012]
    res = scipy_stats.ttest_rel([x + y for x, y in zip(base, d, strict=True)], base)
    ci = res.confidence_interval(0.95)
    assert b.diff == pytest.approx(0.011)
    assert (b.low, b.high) == pytest.approx((ci.low, ci.high), rel=1e-3)
    # the spread across seeds (0.05) dwarfs the gap, yet the pairing separates them
    assert v.rows[0].sd == pytest.approx(float(np.std(base, ddof=1)))
    assert v.rows[3].note == "diverged in 1 of 3 seeds"
    assert v.sentence.startswith("adamw: a has the best mean (loss 0.5500 ± 0.0500, mean ± sd "
                                 "over 3 seeds), tied within noise with c; 1 other is worse")
    assert "Not ranked: d (diverged in 1 of 3 seeds)" in v.sentence


def test_higher_is_better_and_all_tied() -> None:
    runs = [_run(name, s, 0.9 + 0.01 * ((s + k) % 3)) for k, name in enumerate("xyz")
            for s in range(3)]
    (v,) = summarize(runs, "loss", higher_is_better=True)
    assert v.rows[0].verdict == "best"
    assert {r.verdict for r in v.rows[1:]} == {"tied"}
    assert "a tie" in v.sentence
    one = summarize([_run("x", 0, 1.0), _run("y", 0, 2.0)], "loss", False)[0]
    assert [r.verdict for r in one.rows] == ["best", "tied"]  # one seed: no interval


def test_wins_outright_and_per_optimizer() -> None:
    runs = [_run("good", s, 0.1 + 0.01 * s, opt) for s in range(3) for opt in ("sgd", "adamw")]
    runs += [_run("bad", s, 0.2 + 0.01 * s + 0.001 * s * s, opt) for s in range(3)
             for opt in ("sgd", "adamw")]
    vs = summarize(runs, "loss", False)
    assert [v.optimizer for v in vs] == ["sgd", "adamw"]
    assert vs[0].sentence.startswith("sgd: good wins: loss 0.1100 ± 0.0100")
    failed = summarize([_run("f", 0, math.nan, status="failed")], "loss", False)[0]
    assert failed.sentence.startswith("adamw: no schedule finished")
