"""A training run as the laws see it: the rate at every update and the loss at logged steps."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import numpy.typing as npt

from lrkit.errors import ConfigError

__all__ = ["LawError", "Run"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

#: a run needs at least this many logged losses after its warmup
MIN_POINTS = 8


class LawError(ConfigError):
    """Runs a law cannot be fitted to (or a fit that failed); the message says why."""


@dataclasses.dataclass(frozen=True, eq=False)
class Run:
    """One run: ``rates[i]`` is the rate of update ``i``; ``losses[j]`` the loss at ``steps[j]``.

    ``steps`` count completed updates (the loss logged at step ``t`` depends on
    ``rates[:t]``), strictly increasing, ``1 <= t <= len(rates)``. Losses may be noisy,
    logged every k steps, smoothed or not; they must be finite and > 0.

    Raises:
        LawError: empty or mismatched arrays, NaN / negative / non-finite rates or losses,
            steps not strictly increasing or outside ``1..len(rates)``, constant losses.

    Example:
        >>> import numpy as np
        >>> run = Run(rates=np.full(100, 1e-3), steps=[10, 50, 100], losses=[3.0, 2.5, 2.4])
        >>> run.n, run.peak
        (100, 0.001)
    """

    rates: F64
    steps: I64
    losses: F64
    label: str = "run"
    seed: int | None = None

    def __post_init__(self) -> None:
        name = f"run {self.label!r}"
        rates = np.asarray(self.rates, dtype=np.float64).reshape(-1)
        steps_in = np.asarray(self.steps, dtype=np.float64).reshape(-1)
        losses = np.asarray(self.losses, dtype=np.float64).reshape(-1)
        if rates.size == 0:
            raise LawError(f"{name}: no rates (expected the rate of every update)")
        if not np.all(np.isfinite(rates)) or np.any(rates < 0):
            i = int(np.flatnonzero(~np.isfinite(rates) | (rates < 0))[0])
            raise LawError(f"{name}: rate at update {i} is {float(rates[i])!r}: expected a finite "
                           "number >= 0")
        if not rates.max() > 0:
            raise LawError(f"{name}: every rate is 0")
        if steps_in.size != losses.size:
            raise LawError(f"{name}: {steps_in.size} steps but {losses.size} losses")
        if steps_in.size == 0:
            raise LawError(f"{name}: no logged losses")
        if not np.all(np.isfinite(steps_in)) or np.any(steps_in != np.round(steps_in)):
            raise LawError(f"{name}: steps must be whole numbers")
        steps = steps_in.astype(np.int64)
        bad_order = np.flatnonzero(np.diff(steps) <= 0)
        if bad_order.size:
            i = int(bad_order[0])
            raise LawError(f"{name}: steps are not strictly increasing: step {steps[i]} is "
                           f"followed by {steps[i + 1]}")
        if steps[0] < 1 or steps[-1] > rates.size:
            raise LawError(f"{name}: logged steps {steps[0]}..{steps[-1]} are outside "
                           f"1..{rates.size} (the updates whose rates are given)")
        badl = np.flatnonzero(~np.isfinite(losses) | (losses <= 0))
        if badl.size:
            i = int(badl[0])
            raise LawError(f"{name}: loss at step {steps[i]} is {float(losses[i])!r}: expected a "
                           "finite number > 0")
        if np.ptp(losses) <= 1e-12 * abs(float(losses[0])):
            raise LawError(f"{name}: the loss is constant ({losses[0]:g}): nothing to fit")
        object.__setattr__(self, "rates", rates)
        object.__setattr__(self, "steps", steps)
        object.__setattr__(self, "losses", losses)
        if self.seed is not None and not isinstance(self.seed, int):
            raise LawError(f"{name}: seed={self.seed!r} is invalid: expected an integer")

    @property
    def n(self) -> int:
        """Updates covered by ``rates``."""
        return int(self.rates.size)

    @property
    def peak(self) -> float:
        return float(self.rates.max())

    @property
    def warmup(self) -> int:
        """Updates before the rate first reaches its peak."""
        from lrkit.laws._curve import warmup_length

        return warmup_length(self.rates)

    def summary(self) -> dict[str, Any]:
        """Plain data describing the run (law.json keeps these for the fitted runs)."""
        return {
            "label": self.label,
            "seed": self.seed,
            "updates": self.n,
            "warmup": self.warmup,
            "peak": self.peak,
            "final_rate": float(self.rates[-1]),
            "points": int(self.steps.size),
            "final_loss": float(self.losses[-1]),
        }

    def binned(self, max_points: int, start: int = 0) -> tuple[I64, F64]:
        """Logged losses after the warmup (and from step ``start`` on), averaged in log
        space into at most ``max_points`` bins.

        Returns the bins' steps (rounded mean step) and mean log-losses.
        """
        keep = (self.steps > self.warmup) & (self.steps >= start)
        t, y = self.steps[keep], np.log(self.losses[keep])
        if t.size < MIN_POINTS:
            raise LawError(
                f"run {self.label!r}: {t.size} logged losses after the warmup (step "
                f"{self.warmup}) and step {start}; a law needs at least {MIN_POINTS}: the "
                "run is too short")
        if t.size <= max_points:
            return t, y
        edges = np.linspace(t[0], t[-1] + 1, max_points + 1)
        idx = np.clip(np.searchsorted(edges, t, side="right") - 1, 0, max_points - 1)
        count = np.bincount(idx, minlength=max_points)
        ok = count > 0
        ts = np.bincount(idx, t.astype(np.float64), max_points)[ok] / count[ok]
        ys = np.bincount(idx, y, max_points)[ok] / count[ok]
        return np.round(ts).astype(np.int64), ys


def same_schedule(a: Run, b: Run) -> bool:
    """Whether two runs share one rate sequence (over their common updates)."""
    n = min(a.n, b.n)
    scale = max(a.peak, b.peak)
    return bool(np.allclose(a.rates[:n], b.rates[:n], rtol=0, atol=1e-6 * scale)) and (
        math.isclose(a.rates[n - 1], a.rates[-1]) and math.isclose(b.rates[n - 1], b.rates[-1]))
