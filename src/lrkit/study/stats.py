"""Statistics across seeds: which schedules are best per optimizer, and whether it is real.

Every schedule of an optimizer ran with the same seeds, and a seed fixes the initial weights
and the data order, so runs pair up by seed. For each schedule the report gives the mean and
standard deviation over seeds of the ranked metric (the task's ``metric`` at the last
evaluation), and against the schedule with the best mean the **paired difference**
``d_s = x_s(schedule) - x_s(best)`` over the shared seeds with its 95% Student-t interval
``mean(d) ± t_{0.975, n-1} · sd(d) / √n``. A schedule whose interval contains 0 is *tied
within noise* with the best; one whose interval excludes 0 is better or worse for real
(at the 5% level, per comparison). With fewer than two shared seeds no interval exists and the
schedule counts as tied.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

__all__ = ["OptimizerVerdict", "Row", "paired_interval", "summarize", "t975"]

# two-sided 95% quantiles of Student's t, df = 1..30
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
         2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
         2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def t975(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom (3 decimals).

    Example:
        >>> t975(2), t975(10), round(t975(1000), 2)
        (4.303, 2.228, 1.96)
    """
    if df < 1:
        raise ValueError(f"df={df!r} is invalid: expected an integer >= 1")
    if df <= 30:
        return _T975[df - 1]
    return 1.959964 + 2.37 / df + 2.8 / df**2  # the Cornish-Fisher tail, within 1e-3 here


def _mean_sd(xs: Sequence[float]) -> tuple[float, float]:
    n = len(xs)
    if n == 0:
        return math.nan, math.nan
    m = math.fsum(xs) / n
    if n == 1:
        return m, math.nan
    return m, math.sqrt(math.fsum((x - m) ** 2 for x in xs) / (n - 1))


def paired_interval(diffs: Sequence[float]) -> tuple[float, float, float]:
    """(mean, low, high) of the 95% t-interval of paired differences (NaN bounds if n < 2).

    Example:
        >>> m, lo, hi = paired_interval([0.01, 0.02, 0.03])
        >>> round(m, 4), round(lo, 4), round(hi, 4)
        (0.02, -0.0048, 0.0448)
    """
    m, sd = _mean_sd(diffs)
    n = len(diffs)
    if n < 2:
        return m, math.nan, math.nan
    half = t975(n - 1) * sd / math.sqrt(n)
    return m, m - half, m + half


@dataclasses.dataclass
class Row:
    """One schedule of one optimizer, across seeds."""

    schedule: str
    optimizer: str
    values: dict[int, float]  # seed -> ranked metric (NaN: diverged or failed)
    mean: float
    sd: float
    diff: float = math.nan  # mean paired difference to the best (this minus best)
    low: float = math.nan
    high: float = math.nan
    verdict: str = ""  # best | tied | better | worse | diverged | failed
    note: str = ""

    @property
    def n(self) -> int:
        return sum(1 for v in self.values.values() if math.isfinite(v))


@dataclasses.dataclass
class OptimizerVerdict:
    """The rows of one optimizer, best first, and the sentence that sums them up."""

    optimizer: str
    metric: str
    higher_is_better: bool
    rows: list[Row]
    sentence: str

    @property
    def best(self) -> Row | None:
        return self.rows[0] if self.rows and self.rows[0].verdict == "best" else None

    @property
    def tied(self) -> list[Row]:
        return [r for r in self.rows if r.verdict == "tied"]


def fmt(x: float, decimals: int) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:.{decimals}f}"


def decimals_for(values: Sequence[float]) -> int:
    """Decimals that show the differences between ``values`` (2 to 6, the same for all)."""
    vals = [abs(v) for v in values if math.isfinite(v)]
    if not vals:
        return 4
    big = max(vals)
    return 2 if big >= 100 else 3 if big >= 10 else 4


def summarize(runs: Sequence[Any], metric: str, higher_is_better: bool) -> list[OptimizerVerdict]:
    """Per optimizer (first-seen order): rows sorted best first, with verdicts (module doc)."""
    sign = -1.0 if higher_is_better else 1.0  # smaller sign*x is better
    out = []
    for opt in dict.fromkeys(r.config.optimizer for r in runs):
        mine = [r for r in runs if r.config.optimizer == opt]
        rows: list[Row] = []
        for name in dict.fromkeys(r.config.schedule.name for r in mine):
            vals = {r.config.seed: r.value(metric) for r in mine
                    if r.config.schedule.name == name}
            statuses = [r.status for r in mine if r.config.schedule.name == name]
            finite = [v for v in vals.values() if math.isfinite(v)]
            m, sd = _mean_sd(finite) if len(finite) == len(vals) else (math.nan, math.nan)
            row = Row(name, opt, vals, m, sd)
            if "failed" in statuses:
                row.verdict = "failed"
            elif len(finite) < len(vals):
                row.verdict = "diverged"
            if row.verdict:
                bad = sum(s != "finished" for s in statuses)
                row.note = f"{row.verdict} in {bad} of {len(statuses)} seeds"
            rows.append(row)
        ok = [r for r in rows if not r.verdict]
        ok.sort(key=lambda r: sign * r.mean)
        if ok:
            best = ok[0]
            best.verdict = "best"
            for r in ok[1:]:
                seeds = [s for s in r.values if s in best.values]
                d = [r.values[s] - best.values[s] for s in seeds]
                r.diff, r.low, r.high = paired_interval(d)
                if not math.isfinite(r.low) or r.low <= 0 <= r.high:
                    r.verdict = "tied"
                else:
                    r.verdict = "better" if sign * r.diff < 0 else "worse"
        failed = [r for r in rows if r.verdict in ("diverged", "failed")]
        rows = ok + failed
        out.append(OptimizerVerdict(opt, metric, higher_is_better, rows,
                                    _sentence(opt, metric, rows)))
    return out


def _sentence(opt: str, metric: str, rows: list[Row]) -> str:
    ok = [r for r in rows if r.verdict not in ("diverged", "failed")]
    if not ok:
        return f"{opt}: no schedule finished a run."
    best = ok[0]
    dec = decimals_for([r.mean for r in ok])
    n = len(best.values)
    ev = f"{metric} {fmt(best.mean, dec)} ± {fmt(best.sd, dec)}, mean ± sd over {n} seeds"
    tied = [r.schedule for r in ok if r.verdict == "tied"]
    worse = [r for r in ok if r.verdict == "worse"]
    lost = [r for r in rows if r.verdict in ("diverged", "failed")]
    if len(ok) == 1:
        text = f"{opt}: {best.schedule} is the only schedule that finished: {ev}."
    elif not worse and len(tied) == len(ok) - 1:
        text = (f"{opt}: a tie: all {len(ok)} schedules are within seed noise of the best "
                f"mean, {best.schedule} ({ev}); every paired 95% interval includes 0, so "
                "more seeds or longer runs are needed to pick one.")
    elif not tied:
        gap = min(abs(r.diff) for r in worse)
        text = (f"{opt}: {best.schedule} wins: {ev}; every other schedule is worse on the "
                f"same seeds (paired 95% interval excludes 0; smallest gap "
                f"{fmt(gap, dec)}).")
    else:
        text = (f"{opt}: {best.schedule} has the best mean ({ev}), tied within noise with "
                + ", ".join(tied) + f"; {len(worse)} other"
                + ("s are" if len(worse) != 1 else " is")
                + " worse (paired 95% interval excludes 0).")
    if lost:
        text += " Not ranked: " + ", ".join(f"{r.schedule} ({r.note})" for r in lost) + "."
    return text
