"""Predicting a schedule's loss curve from a fitted law, with a band and warnings."""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import numpy as np
import numpy.typing as npt

from lrkit.laws._curve import Curve, warmup_length
from lrkit.laws.fit import LawFit, LawWarning
from lrkit.laws.models import LAWS
from lrkit.laws.run import LawError, Run

__all__ = ["Prediction", "predict", "rates_of", "synthetic_run"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

#: the band is computed at most at this many steps and interpolated in between
BAND_POINTS = 400


@dataclasses.dataclass
class Prediction:
    """A predicted loss curve: ``loss[i]`` at ``steps[i]`` (steps after the warmup).

    ``low``/``high``: the band, ``None`` without refits in the fit. It is the central 90 %
    of the bootstrap refits' predictions, widened to take in, for every leave-one-run-out
    refit ``i``, its prediction times ``1 ± run_errors[i]`` (its relative miss on the run
    it left out): a jackknife+ interval, which covers the law's error on unseen schedules
    as far as the left-out runs show it. ``warnings`` lists where the prediction leaves
    what the fit can know.
    """

    label: str
    steps: I64
    loss: F64
    low: F64 | None
    high: F64 | None
    warnings: list[str]

    @property
    def final(self) -> float:
        return float(self.loss[-1])

    @property
    def final_band(self) -> tuple[float, float] | None:
        if self.low is None or self.high is None:
            return None
        return float(self.low[-1]), float(self.high[-1])


def rates_of(schedule: Any, steps: int, base: float = 1.0) -> F64:
    """The rate of every update 0..steps-1 of a Schedule, spec string or rate array."""
    if isinstance(schedule, str):
        from lrkit.spec import parse

        schedule = parse(schedule, total_steps=steps)
    if hasattr(schedule, "horizon") and callable(schedule):
        r = np.asarray(schedule(np.arange(steps, dtype=np.float64), base=base), np.float64)
    else:
        r = np.asarray(schedule, dtype=np.float64).reshape(-1)
        if r.size < steps:
            raise LawError(f"the rate array has {r.size} values, fewer than steps={steps}")
        r = r[:steps]
    if r.size == 0 or not np.all(np.isfinite(r)) or np.any(r < 0) or not r.max() > 0:
        raise LawError("the schedule's rates must be finite, >= 0 and not all 0")
    return r


def _warn_outside(fit: LawFit, rates: F64, label: str) -> list[str]:
    out = []
    peak = float(rates.max())
    if abs(peak / fit.unit - 1.0) > 0.02:
        out.append(f"{label}: peak rate {peak:g} differs from the fitted runs' {fit.unit:g}; "
                   "the law assumes their peak: fit runs at this peak to predict it")
    if rates.size > 3 * fit.horizon:
        out.append(f"{label}: {rates.size} steps is {rates.size / fit.horizon:.1f}x the "
                   f"longest fitted run ({fit.horizon}); beyond 3x the law is untested")
    w = warmup_length(rates)
    if np.any(np.diff(rates[w:]) > 1e-9 * peak):
        out.append(f"{label}: the rate increases after warmup; the fitted runs never "
                   "tested rate increases (the laws are built for decaying schedules)")
    low_fit = min(float(r["final_rate"]) for r in fit.runs)
    if float(rates[-1]) < 0.5 * low_fit and low_fit - float(rates[-1]) > 1e-3 * fit.unit:
        out.append(f"{label}: it ends at rate {rates[-1]:g}, below every fitted run's final "
                   f"rate (lowest {low_fit:g})")
    return out


def predict(fit: LawFit, schedule: Any, steps: int | None = None, *, base: float = 1.0,
            label: str | None = None, at: npt.ArrayLike | None = None,
            band: bool = True) -> Prediction:
    """Predict the loss curve of ``schedule`` (a Schedule, spec or rate array).

    Args:
        fit: the fitted law.
        schedule: an lrkit Schedule or spec string (evaluated at updates ``0..steps-1`` with
            ``base``), or the rate of every update.
        steps: the horizon (default: the schedule's own, or the array's length).
        at: the steps to predict at (default every step after warmup, up to ``steps``).
        band: compute the band (from the fit's bootstrap and leave-one-run-out samples).

    Warns:
        LawWarning: for each way the prediction leaves what the fit can know (a different
            peak rate, more than 3x the fitted horizon, rate increases, a lower final rate,
            a predicted loss that is not positive).
    """
    if steps is None:
        h = getattr(schedule, "horizon", None)
        if isinstance(schedule, str):
            from lrkit.spec import parse

            h = parse(schedule).horizon
        if h is None and not hasattr(schedule, "horizon"):
            h = np.asarray(schedule).size
        if h is None:
            raise LawError("the schedule has no finite horizon: give steps")
        steps = int(np.ceil(h))
    if steps < 2:
        raise LawError(f"steps={steps!r} is invalid: expected an integer >= 2")
    rates = rates_of(schedule, steps, base)
    label = label or (schedule if isinstance(schedule, str) else "schedule")
    notes = _warn_outside(fit, rates, label)
    for n in notes:
        warnings.warn(n, LawWarning, stacklevel=2)
    model = fit.model
    curve = Curve.from_rates(rates, fit.unit)
    if at is None:
        t = np.arange(curve.warmup + 1, steps + 1, dtype=np.int64)
    else:
        t = np.asarray(at, dtype=np.int64)
        if t.size == 0 or t.min() < 1 or t.max() > steps:
            raise LawError(f"at: steps must lie in 1..{steps}")
    loss = model.curve_at(fit.theta, curve, t)
    bad = np.flatnonzero(loss <= 0)  # (steps inside the warmup are NaN: not predicted)
    if bad.size:
        n = (f"{label}: the law predicts a loss <= 0 from step {int(t[bad[0]])} on: the fit "
             "does not determine this schedule's curve (see its unidentified parameters)")
        warnings.warn(n, LawWarning, stacklevel=2)
        notes.append(n)
    lo = hi = None
    boot = fit.sample_thetas() if band else []
    loo = fit.run_sample_thetas() if band else []
    if (len(boot) >= 2 or loo) and t.size:
        sel = np.unique(np.linspace(0, t.size - 1, min(BAND_POINTS, t.size)).astype(np.int64))
        ts = t[sel]
        at_ts = model.evaluator(curve, ts)
        # the spread of refits around the fit, centred on the fitted curve
        base_s = at_ts(fit.theta)
        dlo = dhi = np.zeros(ts.size)
        with warnings.catch_warnings():  # steps inside the warmup are NaN for every set
            warnings.simplefilter("ignore", RuntimeWarning)
            if len(boot) >= 2:
                preds = np.array([at_ts(th) for th in boot]) - base_s
                dlo = np.minimum(dlo, np.nanpercentile(preds, 5, axis=0))
                dhi = np.maximum(dhi, np.nanpercentile(preds, 95, axis=0))
            if loo:
                preds = np.array([at_ts(th) for th in loo])
                errs = np.zeros(len(loo))
                errs[:len(fit.run_errors)] = fit.run_errors[:len(loo)]
                dlo = np.minimum(dlo, np.nanmin(preds * (1 - errs[:, None]) - base_s, axis=0))
                dhi = np.maximum(dhi, np.nanmax(preds * (1 + errs[:, None]) - base_s, axis=0))
        lo = loss + np.interp(t, ts, np.nan_to_num(dlo))
        hi = loss + np.interp(t, ts, np.nan_to_num(dhi))
    return Prediction(str(label), t, loss, lo, hi, notes)


def synthetic_run(law: str, params: dict[str, float], schedule: Any, steps: int, *,
                  peak: float = 1.0, noise: float = 0.0, every: int = 1, seed: int = 0,
                  label: str | None = None, decay: float = 0.999) -> Run:
    """A run whose loss follows ``law`` with ``params`` (papers' units), plus noise.

    ``schedule`` is a spec (``"cos"``, ``"const"``, ``"wsd(...)"``...; relative values
    read as multiples of ``peak``) or a rate array; ``noise`` is the relative (log-normal)
    noise of each logged loss; losses are logged every ``every`` steps.

    Example:
        >>> run = synthetic_run("annealing", {"L0": 2, "A": 0.5, "alpha": 0.5, "C": 2.0},
        ...                     "cos", 1000, peak=1e-3, every=10)
        >>> run.n, run.steps[:3].tolist()
        (1000, [10, 20, 30])
    """
    rates = rates_of(schedule, steps, base=peak)
    model = LAWS[law](**({"decay": decay} if law == "annealing" else {}))
    unit = float(rates.max())
    theta = model.from_raw(np.array([params[k] for k in model.params], float), unit)
    curve = Curve.from_rates(rates, unit)
    t = np.arange(every, steps + 1, every, dtype=np.int64)
    t = t[t > curve.warmup]
    loss = model.curve_at(theta, curve, t)
    if noise > 0:
        loss = loss * np.exp(np.random.default_rng(seed).normal(0.0, noise, loss.size))
    return Run(rates, t, loss, label=label or str(schedule), seed=seed)
