"""Fitting a law to runs: log-loss residuals, Huber loss, bounds, multi-start, uncertainty.

The recipe (:func:`fit`):

1. Each run's logged losses after warmup are averaged in log space into at most
   ``max_points`` bins (noise down, cost bounded).
2. Starting points: for every point of a grid over the nonlinear parameters, the linear
   ones (``L0``, ``A``, ``B`` / ``C``) come from bounded linear least squares; the
   ``starts`` best distinct starts go on.
3. Each start runs :func:`scipy.optimize.least_squares` (trust-region reflective, bounds
   keeping parameters physical) on ``log(pred) - log(loss)`` with a Huber loss whose scale
   is the measured noise of the binned log-losses.
4. The best converged start is the fit; no converged start is a :class:`LawError`.
5. Uncertainty: parameter standard errors from the Jacobian, the spread of near-optimal
   starts, ``bootstrap`` refits on wild-bootstrapped residuals (random signs on blocks of
   bins), and, with more runs than the law needs, one refit per left-out run together with
   its relative error on the final loss of the run it left out. The bootstrap sets measure
   the noise of the fitted curves; the leave-one-run-out refits and their errors measure
   the law's error on a schedule it has not seen, usually far larger
   (:func:`lrkit.laws.predict`'s band covers both, as a jackknife+ interval). A parameter
   whose relative standard error exceeds 1 (or whose near-optimal starts disagree by more
   than 50 %) is reported *not identified*.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from lrkit.laws._curve import Curve
from lrkit.laws.models import LAWS, Features, LawModel
from lrkit.laws.run import LawError, Run, same_schedule

__all__ = ["AUTO_STARTS", "MIN_RUNS", "TAIL", "LawFit", "LawWarning", "fit"]

F64 = npt.NDArray[np.float64]


#: an out-of-evaluations fit whose cost moves less than this (relative) over further
#: evaluations has converged in cost (its parameters may still drift: not identified)
STALL = 1e-6


class LawWarning(UserWarning):
    """A fit or prediction outside what the runs can tell (named in the message)."""


@dataclasses.dataclass
class LawFit:
    """A fitted law: parameters (papers' units), their uncertainty and the fit's quality.

    ``unit`` is the peak rate the law was fitted at; ``samples`` are bootstrap parameter
    sets and ``run_samples`` leave-one-run-out refits (papers' units), behind prediction
    bands; ``run_errors[i]`` is how far refit ``i`` missed the final loss of the run it
    left out (relative: :data:`TAIL` of its last logged losses, law and run alike). Save
    with :func:`lrkit.laws.save_law`; predict with :func:`lrkit.laws.predict`.
    """

    law: str
    params: dict[str, float]
    unit: float
    warmup: int
    stderr: dict[str, float]
    identified: bool
    unidentified: list[str]
    runs: list[dict[str, Any]]
    samples: list[list[float]]
    options: dict[str, Any]
    noise: float
    cost: float
    starts: list[dict[str, Any]]
    run_samples: list[list[float]] = dataclasses.field(default_factory=list)
    run_errors: list[float] = dataclasses.field(default_factory=list)

    @property
    def model(self) -> LawModel:
        return LAWS[self.law](**self.options)

    @property
    def theta(self) -> F64:
        """Parameters in the law's unit (for evaluation)."""
        raw = np.array([self.params[k] for k in self.model.params])
        return self.model.from_raw(raw, self.unit)

    def sample_thetas(self) -> list[F64]:
        """Bootstrap parameter sets in the law's unit."""
        return [self.model.from_raw(np.asarray(s, float), self.unit) for s in self.samples]

    def run_sample_thetas(self) -> list[F64]:
        """Leave-one-run-out parameter sets in the law's unit."""
        return [self.model.from_raw(np.asarray(s, float), self.unit)
                for s in self.run_samples]

    @property
    def horizon(self) -> int:
        return max(int(r["updates"]) for r in self.runs)

    def table(self) -> str:
        """The fit as a plain-text table: parameters with uncertainty, then runs."""
        m = self.model
        lines = [f"law: {self.law}   fitted peak rate: {self.unit:g}   "
                 f"identified: {'yes' if self.identified else 'NO'}"]
        if not self.identified:
            lines.append("  not determined by the data: " + ", ".join(self.unidentified))
        start = self.options.get("start")
        if "start_scores" in self.options:
            scores = ", ".join(f"{int(k)}: {100 * v:.2f} %"
                               for k, v in self.options["start_scores"])
            lines.append(f"losses from step {start} (chosen by the mean left-out-run error "
                         f"per first step: {scores})")
        elif start:
            lines.append(f"losses from step {start}")
        lines.append(f"{'param':<7}{'value':>13}{'std err':>12}  meaning")
        for k in m.params:
            lines.append(f"{k:<7}{self.params[k]:>13.6g}{self.stderr[k]:>12.3g}  "
                         f"{m.meaning[k]}")
        lines.append(f"{'run':<24}{'updates':>9}{'points':>8}{'R2':>9}{'RMSE %':>9}"
                     f"{'max %':>8}")
        for r in self.runs:
            lines.append(f"{str(r['label'])[:23]:<24}{r['updates']:>9}{r['fit_points']:>8}"
                         f"{r['r2']:>9.4f}{100 * r['rmse_rel']:>9.3f}"
                         f"{100 * r['max_rel']:>8.3f}")
        return "\n".join(lines)


#: a run's "final loss" is the mean over this share of its last updates (of its last
#: binned points inside a fit), for law and measurement alike
TAIL = 0.05


def _tail_error(pred: F64, y: F64) -> float:
    """|mean predicted / mean measured - 1| over the last :data:`TAIL` of the points
    (``y``: log-losses)."""
    k = max(1, round(TAIL * y.size))
    return float(abs(np.mean(pred[-k:]) / np.mean(np.exp(y[-k:])) - 1.0))


#: the first steps ``fit(start="auto")`` chooses from, as shares of the shortest run
AUTO_STARTS = (0.0, 0.1, 0.2, 0.3, 0.4)


def _fit_auto(runs: list[Run], law: str, model: LawModel, bootstrap: int,
              opts: dict[str, Any]) -> LawFit:
    """``fit(start="auto")``: the first step whose left-out-run refits err least."""
    need = _needs(model)
    if len(runs) <= need:
        raise LawError(f"start='auto' scores each first step by refits that leave one run "
                       f"out: the {law} law needs more than {need} runs for it, got "
                       f"{len(runs)}")
    shortest = min(r.n for r in runs)
    scores: dict[int, float] = {}
    for share in AUTO_STARTS:
        s = round(share * shortest)
        if s in scores:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", LawWarning)
                f = fit(runs, law, bootstrap=0, start=s, **opts)
        except LawError:  # too few points left after s, or no convergence: not a candidate
            continue
        if len(f.run_errors) == len(runs):  # every run was predicted by the others
            scores[s] = float(np.mean(f.run_errors))
    if not scores:
        raise LawError("start='auto': no first step left a fit whose refits predict every "
                       "left-out run; give start as a step")
    best = min(scores, key=lambda k: (scores[k], k))
    out = fit(runs, law, bootstrap=bootstrap, start=best, **opts)
    out.options = {**out.options, "start": best,
                   "start_scores": [[k, v] for k, v in sorted(scores.items())]}
    return out


#: the fewest runs (with different schedules) that can identify each law
MIN_RUNS = {"multi-power": 2, "annealing": 1}


def _needs(model: LawModel) -> int:
    """The fewest runs that can identify ``model``."""
    return MIN_RUNS[model.name]


def _identifiable(runs: Sequence[Run], model: LawModel) -> str | None:
    """Why ``runs`` cannot identify ``model`` (``None``: they can)."""
    if len(runs) >= 2 and all(same_schedule(runs[0], r) for r in runs[1:]):
        return (f"all {len(runs)} runs have the same schedule: a law cannot be "
                "identified from them (fit runs with different schedules)")
    if not any(np.any(np.diff(r.rates[r.warmup:]) < -1e-9 * r.peak) for r in runs):
        return ("no run decreases its rate after warmup: the loss-drop term cannot "
                "be identified (include a cosine, WSD or step-decay run)")
    return None


def _check_runs(runs: Sequence[Run], model: LawModel) -> None:
    need = _needs(model)
    if len(runs) < need:
        raise LawError(f"the {model.name} law needs at least {need} runs with different "
                       f"schedules, got {len(runs)}")
    why = _identifiable(runs, model)
    if why is not None:
        raise LawError(why)
    peaks = np.array([r.peak for r in runs])
    if np.ptp(peaks) > 0.01 * peaks.max():
        warnings.warn(f"the runs have different peak rates ({', '.join(f'{p:g}' for p in peaks)})"
                      ": the laws assume one peak; predictions hold near the median",
                      LawWarning, stacklevel=3)


def _noise(ys: list[F64]) -> float:
    """Noise of the binned log-losses: MAD of second differences, per point."""
    d2 = np.concatenate([np.diff(y, 2) for y in ys if y.size > 3])
    if d2.size == 0:
        return 1e-3
    return float(max(np.median(np.abs(d2)) / 0.6745 / np.sqrt(6.0), 1e-5))


def _linear_init(model: LawModel, nonlin: dict[str, float], feats: list[Features],
                 ys: list[F64]) -> tuple[float, F64]:
    from scipy.optimize import lsq_linear

    x = np.concatenate([model.basis(nonlin, f) for f in feats])
    y = np.exp(np.concatenate(ys))
    w = 1.0 / y  # relative (≈ log) residuals
    lo = [model.bounds[model.params.index(k)][0] for k in model.linear]
    hi = [model.bounds[model.params.index(k)][1] for k in model.linear]
    sol = lsq_linear(x * w[:, None], y * w, bounds=(lo, hi))
    theta = np.array([nonlin[k] if k in nonlin else sol.x[model.linear.index(k)]
                      for k in model.params])
    return float(sol.cost), theta


def _residuals(model: LawModel, theta: F64, feats: list[Features], ys: list[F64]) -> F64:
    pred = np.concatenate([model.loss(theta, f) for f in feats])
    return np.log(np.maximum(pred, 1e-12)) - np.concatenate(ys)  # type: ignore[no-any-return]


def _solve(model: LawModel, x0: F64, feats: list[Features], ys: list[F64], scale: float,
           max_nfev: int, tol: float = 1e-8) -> Any:
    from scipy.optimize import least_squares

    lo = np.array([b[0] for b in model.bounds])
    hi = np.array([b[1] for b in model.bounds])
    x0 = np.clip(x0, lo + 1e-12 * (np.abs(lo) + 1), np.where(np.isfinite(hi), hi * 0.999, hi))
    with np.errstate(all="ignore"):
        return least_squares(lambda th: _residuals(model, th, feats, ys), x0,
                             bounds=(lo, hi), loss="huber", f_scale=scale, x_scale="jac",
                             max_nfev=max_nfev, method="trf", ftol=tol, xtol=tol)


def fit(runs: Sequence[Run], law: str = "multi-power", *, max_points: int = 200,
        starts: int = 4, bootstrap: int = 12, seed: int = 0, near: int = 3,
        decay: float = 0.999, max_nfev: int = 300, start: int | str = 0) -> LawFit:
    """Fit ``law`` (``"multi-power"`` or ``"annealing"``) to ``runs``.

    Losses logged before step ``start`` are left out (an early transient the law does not
    describe, such as a plateau before the loss starts to fall as a power law); the rates
    before it still count. ``start="auto"`` chooses it: among :data:`AUTO_STARTS` (shares
    of the shortest run), the first step whose leave-one-run-out refits predict the runs
    they leave out best (the least mean of :attr:`LawFit.run_errors`); it needs more runs
    than the law's minimum, and records the scores in ``options["start_scores"]``.

    Raises:
        LawError: too few runs, all runs with one schedule, no rate decrease, runs too
            short, or no start converged.

    Example:
        >>> import numpy as np, lrkit
        >>> from lrkit.laws import Run, fit, synthetic_run
        >>> true = {"L0": 2.0, "A": 0.5, "alpha": 0.5, "C": 2.0}
        >>> runs = [synthetic_run("annealing", true, "cos", 1000, peak=1e-3, every=5),
        ...         synthetic_run("annealing", true, "const", 1000, peak=1e-3, every=5)]
        >>> f = fit(runs, "annealing", bootstrap=0)
        >>> round(f.params["alpha"], 2), round(f.params["L0"], 2)
        (0.5, 2.0)
    """
    if law not in LAWS:
        raise LawError(f"law={law!r} is invalid: expected one of {', '.join(LAWS)}")
    model = LAWS[law](**({"near": near} if law == "multi-power" else {"decay": decay}))
    runs = list(runs)
    _check_runs(runs, model)
    if start == "auto":
        opts = {"max_points": max_points, "starts": starts, "seed": seed, "near": near,
                "decay": decay, "max_nfev": max_nfev}
        return _fit_auto(runs, law, model, bootstrap, opts)
    if isinstance(start, bool) or not isinstance(start, (int, np.integer)) or start < 0:
        raise LawError(f"start={start!r} is invalid: expected a step >= 0 or 'auto'")
    unit = float(np.median([r.peak for r in runs]))
    feats, ys, pts = [], [], []
    for r in runs:
        t, y = r.binned(max_points, start)
        curve = Curve.from_rates(r.rates, unit)
        feats.append(model.features(curve, t))
        ys.append(y)
        pts.append(t)
    horizon = max(r.n - r.warmup for r in runs)
    # 1) starts from the grid, linear parameters by least squares
    cands = sorted((_linear_init(model, g, feats, ys) for g in model.grid(horizon)),
                   key=lambda c: c[0])
    noise = _noise(ys)
    scale = 2.0 * noise
    results = []
    drifting: set[str] = set()
    for _, x0 in cands[:starts]:
        res = _solve(model, x0, feats, ys, scale, max_nfev)
        if res.status == 0 and np.all(np.isfinite(res.x)):
            # out of evaluations: converged if the cost no longer moves (parameters that
            # still drift along a flat valley are then reported as not identified)
            more = _solve(model, res.x, feats, ys, scale, max(20, max_nfev // 6))
            if res.cost - more.cost <= STALL * res.cost:
                moved = np.abs(more.x - res.x) > 1e-3 * np.maximum(np.abs(res.x), 1e-12)
                drifting.update(model.params[i] for i in np.flatnonzero(moved))
                more.status = -10 if more.status == 0 else more.status
                res = more
        results.append(res)
    ok = [r for r in results if (r.status > 0 or r.status == -10)
          and np.all(np.isfinite(r.x)) and np.isfinite(r.cost)]
    if not ok:
        raise LawError(f"the {law} fit did not converge from any of {len(results)} starts "
                       f"(best status: {max(r.status for r in results)}): no result")
    best = min(ok, key=lambda r: r.cost)
    theta = best.x
    # 2) uncertainty from the Jacobian
    names = model.params
    m, p = best.fun.size, theta.size
    sigma2 = float(np.sum(best.fun**2) / max(m - p, 1))
    jac = best.jac
    try:
        cov = np.linalg.pinv(jac.T @ jac) * sigma2
        se = np.sqrt(np.maximum(np.diag(cov), 0.0))
    except np.linalg.LinAlgError:  # pragma: no cover - pinv rarely fails
        se = np.full(p, np.inf)
    lo = np.array([b[0] for b in model.bounds])
    hi = np.array([b[1] for b in model.bounds])
    active = (np.isclose(theta, lo, rtol=1e-6, atol=1e-12) & (lo > 0)) | np.isclose(
        theta, hi, rtol=1e-6)
    unident = [names[i] for i in range(p)
               if not np.isfinite(se[i]) or se[i] > abs(theta[i]) or active[i]]
    for name in sorted(drifting):
        if name not in unident:
            unident.append(name)
    near_opt = [r for r in ok if r.cost <= best.cost * 1.01 + 1e-12]
    if len(near_opt) > 1:
        spread = np.ptp(np.array([r.x for r in near_opt]), axis=0)
        for i in range(p):
            if spread[i] > 0.5 * abs(theta[i]) and names[i] not in unident:
                unident.append(names[i])
    # 3) bootstrap refits (wild, block signs) for prediction bands
    rng = np.random.default_rng(seed)
    fitted = [model.loss(theta, f) for f in feats]
    resid = [y - np.log(np.maximum(fl, 1e-12)) for y, fl in zip(ys, fitted, strict=True)]
    samples = []
    for _ in range(bootstrap):
        yb = []
        for fl, e in zip(fitted, resid, strict=True):
            blocks = -(-e.size // 10)
            signs = np.repeat(rng.choice([-1.0, 1.0], blocks), 10)[:e.size]
            yb.append(np.log(np.maximum(fl, 1e-12)) + signs * e)
        rb = _solve(model, theta, feats, yb, scale, 200, tol=1e-5)
        if rb.status > 0 and np.all(np.isfinite(rb.x)):
            samples.append(model.to_raw(rb.x, unit).tolist())
    # 4) leave-one-run-out refits (only where the other runs still identify the law)
    run_samples: list[list[float]] = []
    run_errors: list[float] = []
    if len(runs) > _needs(model):
        for i in range(len(runs)):
            keep = [j for j in range(len(runs)) if j != i]
            if _identifiable([runs[j] for j in keep], model) is not None:
                continue
            rl = _solve(model, theta, [feats[j] for j in keep], [ys[j] for j in keep], scale,
                        max_nfev, tol=1e-6)
            if rl.status >= 0 and np.all(np.isfinite(rl.x)):
                run_samples.append(model.to_raw(rl.x, unit).tolist())
                run_errors.append(_tail_error(model.loss(rl.x, feats[i]), ys[i]))
    # 5) goodness of fit per run
    summaries = []
    for r, f, y, t in zip(runs, fitted, ys, pts, strict=True):
        ly = np.log(np.maximum(f, 1e-12))
        ss_res = float(np.sum((y - ly) ** 2))
        ss_tot = float(np.sum((y - y.mean()) ** 2))
        rel = f / np.exp(y) - 1.0
        s = r.summary()
        s.update(fit_points=int(t.size), r2=1.0 - ss_res / ss_tot if ss_tot > 0 else 0.0,
                 rmse_rel=float(np.sqrt(np.mean(rel**2))), max_rel=float(np.max(np.abs(rel))))
        summaries.append(s)
    raw = model.to_raw(theta, unit)
    # delta method: standard errors of the raw parameters
    jr = np.empty((p, p))
    for i in range(p):
        h = 1e-6 * max(abs(theta[i]), 1e-8)
        step = np.zeros(p)
        step[i] = h
        jr[:, i] = (model.to_raw(theta + step, unit) - raw) / h
    try:
        raw_se = np.sqrt(np.maximum(np.diag(jr @ cov @ jr.T), 0.0))
    except NameError:  # pragma: no cover
        raw_se = np.full(p, np.inf)
    if unident:
        warnings.warn(f"the {law} fit leaves {', '.join(unident)} undetermined by the data "
                      "(see the standard errors): add runs with different schedules",
                      LawWarning, stacklevel=2)
    return LawFit(
        law=law,
        params={k: float(v) for k, v in zip(names, raw, strict=True)},
        unit=unit,
        warmup=int(np.median([r.warmup for r in runs])),
        stderr={k: float(v) for k, v in zip(names, raw_se, strict=True)},
        identified=not unident,
        unidentified=unident,
        runs=summaries,
        samples=samples,
        run_samples=run_samples,
        run_errors=run_errors,
        options={**model.options, **({"start": start} if start else {})},
        noise=noise,
        cost=float(best.cost),
        starts=[{"cost": float(r.cost), "status": int(r.status), "nfev": int(r.nfev)}
                for r in results],
    )
