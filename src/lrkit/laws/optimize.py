"""Schedules a fitted law predicts to end lowest: WSD search, free-form decay, horizons.

Only the final loss matters here, so each candidate costs one exact O(n) sum
(:func:`final_loss`), not a whole curve.

- :func:`search_wsd`: warmup, stable, then a decay of shape linear / cosine / 1-sqrt; the
  decay fraction (grid, then a bounded scalar search) and the final value.
- :func:`optimize`: the best WSD, then a free-form non-increasing schedule after warmup
  (``knots`` points, linear between them, each a fraction of the previous value, so any
  set of parameters in ``[0, 1]`` is non-increasing and >= 0) optimized with L-BFGS-B
  from the best WSD. The result is an lrkit spec (``warmup(w) then piecewise(...)``)
  checked to parse back to the optimized rates.
- :func:`extend` and :func:`choose_cooldown` answer horizon questions.

**Robust choice.** A law fitted to a few runs is often not determined in some directions
(the fit says which parameters); an optimizer left alone exploits exactly those, e.g. a
drop to zero in the last few steps that a law with an undetermined payoff speed ``C``
rewards and training does not. With leave-one-run-out refits in the fit
(:attr:`lrkit.laws.LawFit.run_samples`, made when there are more runs than the law
needs), ``robust=True`` (the default) ranks every candidate by its *worst* predicted final
loss over the fit and those refits (a smooth maximum for the free-form search), so the
chosen schedule is good under every parameter set the runs allow.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import numpy.typing as npt

from lrkit.laws._curve import RATE_FLOOR, Curve, g_drop
from lrkit.laws.fit import LawFit
from lrkit.laws.predict import rates_of
from lrkit.laws.run import LawError

__all__ = ["Candidate", "Optimized", "choose_cooldown", "extend", "final_loss", "optimize",
           "search_wsd"]

F64 = npt.NDArray[np.float64]

SHAPES = ("linear", "cosine", "1-sqrt")


def final_loss(fit: LawFit, rates: F64, theta: F64 | None = None) -> float:
    """The law's loss after all ``len(rates)`` updates (exact sums, O(n)).

    ``theta``: parameters in the law's unit (default the fit's own; e.g. one of
    :meth:`LawFit.run_sample_thetas`).
    """
    curve = Curve.from_rates(rates, fit.unit)
    th = fit.theta if theta is None else theta
    area = curve.cum[-1]
    if fit.law == "multi-power":
        l0, a, alpha, b, c, beta, gamma = th
        d = curve.decrements
        p = curve.post_area
        x = np.maximum(curve.eta, RATE_FLOOR) ** (-gamma) * (p[-1] - p[:-1])
        ld = float(np.sum(d * g_drop(x, c, beta)))
        return float(l0 + a * area ** (-alpha) - b * ld)
    l0, a, alpha, c = th
    s2 = curve.momentum_area(float(fit.options.get("decay", 0.999)))[-1]
    return float(l0 + a * area ** (-alpha) - c * s2)


@dataclasses.dataclass
class Candidate:
    """A schedule with its spec string and predicted final loss.

    ``worst``: the highest final loss predicted by the fit and its leave-one-run-out
    refits (equal to ``loss`` when the fit has none).
    """

    spec: str
    loss: float
    schedule: Any = dataclasses.field(repr=False, default=None)
    worst: float = math.nan

    def __post_init__(self) -> None:
        if math.isnan(self.worst):
            self.worst = self.loss

    def key(self, robust: bool) -> float:
        """What candidates are ranked by: ``worst`` when robust, else ``loss``."""
        return self.worst if robust else self.loss


def _losses(fit: LawFit, rates: F64) -> F64:
    """Final losses under the fit and under each leave-one-run-out refit."""
    return np.array([final_loss(fit, rates)] + [final_loss(fit, rates, th)
                                                 for th in fit.run_sample_thetas()])


def _wsd(steps: int, warmup: int, peak: float, fraction: float, shape: str,
         end: float) -> Any:
    from lrkit.schedules import WSD

    fraction = min(fraction, (steps - warmup) / steps)
    return WSD(steps, warmup_steps=warmup, decay_fraction=round(fraction, 4), peak=peak,
               end=float(f"{end:.6g}"), decay_shape=shape)


def _cand(fit: LawFit, sched: Any, steps: int) -> Candidate:
    from lrkit.spec import to_string

    ls = _losses(fit, rates_of(sched, steps))
    return Candidate(to_string(sched), float(ls[0]), sched, float(ls.max()))


def cosine(fit: LawFit, steps: int, peak: float, warmup: int, end: float = 0.0) -> Candidate:
    """Warmup then cosine to ``end``: the usual baseline."""
    from lrkit.schedules import Cosine, Warmup

    return _cand(fit, Warmup(Cosine(steps - warmup, peak=peak, end=end), steps=warmup), steps)


def search_wsd(fit: LawFit, steps: int, peak: float | None = None, warmup: int | None = None,
               shapes: tuple[str, ...] = SHAPES,
               ends: tuple[float, ...] = (0.0, 0.01, 0.1), robust: bool = True
               ) -> list[Candidate]:
    """WSD candidates, best first: grid over fraction x shape x end (relative), refined.

    ``ends`` are final values relative to ``peak``; ``robust``: rank by
    :attr:`Candidate.worst` (module docstring).
    """
    from scipy.optimize import minimize_scalar

    peak = fit.unit if peak is None else peak
    warmup = fit.warmup if warmup is None else warmup
    if warmup >= steps - 1:
        raise LawError(f"steps={steps} leaves no room after the warmup of {warmup} steps")
    top = (steps - warmup) / steps
    fracs = [f for f in (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0) if f <= top]
    out = []
    for shape in shapes:
        for end in ends:
            grid = [_cand(fit, _wsd(steps, warmup, peak, f, shape, end * peak), steps)
                    for f in fracs]
            i = int(np.argmin([c.key(robust) for c in grid]))
            lo, hi = fracs[max(i - 1, 0)], fracs[min(i + 1, len(fracs) - 1)]
            best = grid[i]
            if hi > lo:
                res = minimize_scalar(
                    lambda f, s=shape, e=end: _cand(
                        fit, _wsd(steps, warmup, peak, f, s, e * peak), steps).key(robust),
                    bounds=(lo, hi), method="bounded", options={"xatol": 1e-3})
                c = _cand(fit, _wsd(steps, warmup, peak, float(res.x), shape, end * peak),
                          steps)
                best = c if c.key(robust) < best.key(robust) else best
            out.append(best)
    return sorted(out, key=lambda c: c.key(robust))


@dataclasses.dataclass
class Optimized:
    """The optimized schedule, its predicted final loss, and the baselines'."""

    best: Candidate
    cosine: Candidate
    wsd: Candidate
    steps: int
    rates: F64 = dataclasses.field(repr=False)

    @property
    def gain_vs_cosine(self) -> float:
        """Predicted final loss of cosine minus the optimized one's (> 0: better)."""
        return self.cosine.loss - self.best.loss

    @property
    def gain_vs_wsd(self) -> float:
        return self.wsd.loss - self.best.loss

    def table(self) -> str:
        rows = [("optimized", self.best), ("best WSD", self.wsd), ("cosine", self.cosine)]
        lines = [f"{'schedule':<11}{'final loss':>12}{'worst refit':>13}  spec"]
        lines += [f"{n:<11}{c.loss:>12.5f}{c.worst:>13.5f}  {c.spec}" for n, c in rows]
        lines.append(f"predicted gain: {self.gain_vs_cosine:.5f} vs cosine "
                     f"({100 * self.gain_vs_cosine / self.cosine.loss:.2f} %), "
                     f"{self.gain_vs_wsd:.5f} vs the best WSD")
        return "\n".join(lines)


def _knots(n_post: int, knots: int) -> F64:
    """Knot positions after warmup, denser towards the end (where decays happen)."""
    u = 1.0 - (1.0 - np.linspace(0.0, 1.0, knots + 1)) ** 2
    return np.unique(np.round(u * n_post))


def optimize(fit: LawFit, steps: int, peak: float | None = None, warmup: int | None = None,
             knots: int = 40, maxiter: int = 200, robust: bool = True) -> Optimized:
    """The schedule the law predicts to end lowest after ``steps`` updates.

    ``robust``: minimize the worst final loss over the fit and its leave-one-run-out
    refits (module docstring); ``False``: the fit's own prediction only.

    Example:
        >>> from lrkit.laws import fit as fit_law, synthetic_run
        >>> p = {"L0": 2.0, "A": 0.5, "alpha": 0.5, "C": 2.0}
        >>> law = fit_law([synthetic_run("annealing", p, s, 1000, peak=1e-3, every=5)
        ...                for s in ("const", "cos")], "annealing", bootstrap=0)
        >>> o = optimize(law, 1000, knots=8)
        >>> o.best.loss <= o.wsd.loss <= o.cosine.loss
        True
    """
    from scipy.optimize import minimize

    from lrkit.schedules import Piecewise, Warmup
    from lrkit.spec import parse, to_string

    peak = fit.unit if peak is None else float(peak)
    warmup = fit.warmup if warmup is None else int(warmup)
    base_cos = cosine(fit, steps, peak, warmup)
    wsds = search_wsd(fit, steps, peak, warmup, robust=robust)
    best_wsd = wsds[0]
    n_post = steps - warmup
    ks = _knots(n_post, knots)
    prefix = rates_of(Warmup(Piecewise((0.0,), (peak,)), steps=warmup), steps)[:warmup]
    grid = np.arange(n_post, dtype=np.float64)

    def values(f: F64) -> F64:
        return peak * np.concatenate(([1.0], np.cumprod(1.0 - f)))

    def rates(f: F64) -> F64:
        return np.concatenate((prefix, np.interp(grid, ks, values(f))))

    v0 = np.interp(ks, grid, rates_of(best_wsd.schedule, steps)[warmup:])
    v0 = np.maximum(np.minimum.accumulate(v0), 1e-6 * peak)
    f0 = np.clip(1.0 - v0[1:] / v0[:-1], 0.0, 1.0)
    thetas = [fit.theta] + (fit.run_sample_thetas() if robust else [])
    tau = 1e-4 * abs(best_wsd.loss) + 1e-12  # smooth maximum: within tau*log(n) of max

    def objective(f: F64) -> float:
        r = rates(f)
        ls = np.array([final_loss(fit, r, th) for th in thetas])
        top = float(ls.max())
        return top + tau * float(np.log(np.sum(np.exp((ls - top) / tau))))

    res = minimize(objective, f0, method="L-BFGS-B",
                   bounds=[(0.0, 1.0)] * f0.size,
                   options={"maxiter": maxiter, "eps": 1e-6})
    vals = values(res.x)
    vals = np.array([float(f"{v:.6g}") for v in vals])
    sched = Warmup(Piecewise(tuple(float(k) for k in ks), tuple(vals)), steps=warmup)
    spec = to_string(sched)
    back = rates_of(parse(spec), steps)
    target = rates(res.x)
    if not np.allclose(back, target, rtol=1e-5, atol=1e-9 * peak):
        raise LawError("the optimized schedule's spec does not evaluate to its rates "
                       f"(max difference {np.max(np.abs(back - target)):g})")
    ls = _losses(fit, back)
    free = Candidate(spec, float(ls[0]), sched, float(ls.max()))
    best = free if free.key(robust) < best_wsd.key(robust) else best_wsd
    return Optimized(best, base_cos, best_wsd, steps, rates_of(best.schedule, steps))


def choose_cooldown(fit: LawFit, steps: int, shape: str = "1-sqrt",
                    peak: float | None = None, warmup: int | None = None,
                    end: float = 0.0) -> Candidate:
    """The WSD cooldown length (``decay_fraction``) the law prefers for this budget."""
    return search_wsd(fit, steps, peak, warmup, shapes=(shape,), ends=(end,))[0]


def extend(fit: LawFit, schedule: Any, steps: int, extra: int,
           base: float = 1.0) -> dict[str, float]:
    """Final losses for a run of ``steps`` updates and for ``extra`` more updates.

    Returns ``{"now": L(steps), "hold": L(steps + extra)}`` where *hold* continues at the
    schedule's last rate; for a WSD schedule also ``"rewsd"``: the same cooldown length
    moved to the new end (the stable phase grows by ``extra``).
    """
    from lrkit.schedules import WSD
    from lrkit.spec import parse

    sched = parse(schedule, total_steps=steps) if isinstance(schedule, str) else schedule
    r = rates_of(sched, steps, base)
    out = {"now": final_loss(fit, r),
           "hold": final_loss(fit, np.concatenate((r, np.full(extra, r[-1]))))}
    if isinstance(sched, WSD):
        decay = sched.total_steps - sched.decay_start
        longer = dataclasses.replace(sched, total_steps=sched.total_steps + extra,
                                     decay_steps=decay, decay_fraction=None)
        out["rewsd"] = final_loss(fit, rates_of(longer, steps + extra, base))
    return out
