r"""The two loss-curve laws: formulas, parameters, their meaning and their units.

Both are written in the *law's rate unit*: rates divided by ``unit`` (the peak rate of the
fitted runs), so parameters have similar magnitudes whatever the optimizer. The reported
("raw") parameters are in the papers' units (rates as given); :meth:`LawModel.to_raw` and
:meth:`LawModel.from_raw` convert.

**Multi-power law** (Luo et al., *A Multi-Power Law for Loss Curve Prediction Across
Learning Rate Schedules*, ICLR 2025, arXiv:2503.12811):

.. math::
    L(t) = L_0 + A\,(S_1(t) + S_W)^{-\alpha} - LD(t), \qquad
    LD(t) = B \sum_{k=1}^{t} (\eta_{k-1} - \eta_k)\,
            G\!\left(\eta_k^{-\gamma} S_k(t)\right),\quad
    G(x) = 1 - (C x + 1)^{-\beta}

with :math:`S_1 + S_W` the area under the rate curve (warmup included) and
:math:`S_k(t) = \sum_{\tau=k}^{t}\eta_\tau` (see :mod:`lrkit.laws._curve`).

**Annealing (momentum) law** (Tissue et al., *Scaling Law with Learning Rate Annealing*,
2024, arXiv:2408.11029):

.. math::
    L(s) = L_0 + A\,S_1^{-\alpha} - C\,S_2, \qquad
    S_2 = \sum_{i=1}^{s} m_i, \quad m_i = \lambda\, m_{i-1} + (\eta_{i-1} - \eta_i)

with the decay factor :math:`\lambda` fixed (0.999 by default, as in the paper) and
:math:`S_1` the area under the rate curve (warmup included); :math:`m` starts after warmup.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from lrkit.laws._curve import Curve, DropTable, Terms

__all__ = ["LAWS", "AnnealingLaw", "LawModel", "MultiPowerLaw"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclasses.dataclass(frozen=True)
class Features:
    """What a law needs at fixed query steps of one curve."""

    area: F64  # S1 + S_W at the queries (law's unit)
    post: I64  # t' = t - w
    extra: Any  # law-specific (MPL: Terms; annealing: S2)


class LawModel:
    """A law: parameter names, meanings, bounds, the formula, unit conversions."""

    name: str = ""
    params: tuple[str, ...] = ()
    meaning: ClassVar[dict[str, str]] = {}
    #: per-parameter (low, high) in the law's unit
    bounds: tuple[tuple[float, float], ...] = ()
    #: parameters the curve is linear in (initialised by linear least squares)
    linear: tuple[str, ...] = ("L0", "A")

    def __init__(self, **options: Any) -> None:
        self.options = options

    def features(self, curve: Curve, steps: I64) -> Features:
        raise NotImplementedError

    def loss(self, theta: F64, f: Features) -> F64:
        raise NotImplementedError

    def basis(self, nonlinear: dict[str, float], f: Features) -> F64:
        """Columns multiplying the linear parameters (for initialisation)."""
        raise NotImplementedError

    def grid(self, horizon: int) -> list[dict[str, float]]:
        """Starting values of the nonlinear parameters."""
        raise NotImplementedError

    def to_raw(self, theta: F64, unit: float) -> F64:
        raise NotImplementedError

    def from_raw(self, raw: F64, unit: float) -> F64:
        raise NotImplementedError

    def curve_at(self, theta: F64, curve: Curve, steps: I64) -> F64:
        """Loss at absolute ``steps`` (NaN where ``step <= warmup``)."""
        return self.evaluator(curve, steps)(theta)

    def evaluator(self, curve: Curve, steps: I64) -> Callable[[F64], F64]:
        """``theta -> loss at steps`` (NaN where ``step <= warmup``), prepared once."""
        steps = np.asarray(steps, dtype=np.int64)
        ok = steps > curve.warmup
        feats = self.features(curve, steps[ok]) if ok.any() else None

        def run(theta: F64) -> F64:
            out = np.full(steps.shape, np.nan)
            if feats is not None:
                out[ok] = self.loss(theta, feats)
            return out

        return run


class MultiPowerLaw(LawModel):
    """The multi-power law (Luo et al., 2025). Options: ``near`` (compression, default 3)."""

    name = "multi-power"
    params = ("L0", "A", "alpha", "B", "C", "beta", "gamma")
    meaning: ClassVar[dict[str, str]] = {
        "L0": "loss of an infinitely long run at constant rate (asymptote)",
        "A": "scale of the power-law decrease with the rate area",
        "alpha": "power of the rate area (how fast the loss falls with more area)",
        "B": "scale of the loss drop from rate decreases",
        "C": "speed at which a decrease pays off (inside G)",
        "beta": "power of the loss-drop saturation G",
        "gamma": "how the payoff scales with the lowered rate (eta_k^-gamma)",
    }
    bounds = ((0.0, np.inf), (1e-12, np.inf), (1e-3, 3.0), (0.0, np.inf),
              (1e-9, 1e6), (0.05, 10.0), (0.0, 2.0))
    linear = ("L0", "A", "B")

    def table(self, curve: Curve) -> DropTable:
        """The curve's loss-drop table (the last one is kept: a prediction and its band
        evaluate the same curve)."""
        cached = getattr(self, "_table", None)
        if cached is not None and cached[0] is curve:
            return cached[1]  # type: ignore[no-any-return]
        table = DropTable(curve, int(self.options.get("near", 3)))
        self._table = (curve, table)
        return table

    def features(self, curve: Curve, steps: I64) -> Features:
        steps = np.asarray(steps, dtype=np.int64)
        post = steps - curve.warmup
        return Features(curve.cum[steps], post, self.table(curve).terms(post))

    def evaluator(self, curve: Curve, steps: I64) -> Callable[[F64], F64]:
        """Long query sets go through the chunked sum (flattened terms would not fit)."""
        steps = np.asarray(steps, dtype=np.int64)
        if steps.size <= 20_000:
            return super().evaluator(curve, steps)
        ok = steps > curve.warmup
        table = self.table(curve)
        area, post = curve.cum[steps[ok]], steps[ok] - curve.warmup

        def run(theta: F64) -> F64:
            l0, a, alpha, b, c, beta, gamma = (float(v) for v in theta)
            out = np.full(steps.shape, np.nan)
            out[ok] = l0 + a * area ** (-alpha) - b * table.loss_drop(post, c, beta, gamma)[0]
            return out

        return run

    def loss(self, theta: F64, f: Features) -> F64:
        l0, a, alpha, b, c, beta, gamma = (float(v) for v in theta)
        terms: Terms = f.extra
        return l0 + a * f.area ** (-alpha) - b * terms.loss_drop(c, beta, gamma)

    def basis(self, nonlinear: dict[str, float], f: Features) -> F64:
        ld = f.extra.loss_drop(nonlinear["C"], nonlinear["beta"], nonlinear["gamma"])
        return np.stack([np.ones_like(f.area), f.area ** (-nonlinear["alpha"]), -ld], 1)

    def grid(self, horizon: int) -> list[dict[str, float]]:
        cs = [10.0 / horizon, 100.0 / horizon, 1000.0 / horizon, 1.0]
        keys = ("alpha", "C", "beta", "gamma")
        return [dict(zip(keys, v, strict=True)) for v in itertools.product(
            (0.3, 0.5, 0.8), cs, (0.3, 0.6, 1.0), (0.3, 0.6))]

    def to_raw(self, theta: F64, unit: float) -> F64:
        l0, a, alpha, b, c, beta, gamma = theta
        return np.array([l0, a * unit**alpha, alpha, b / unit, c * unit ** (gamma - 1.0),
                         beta, gamma])

    def from_raw(self, raw: F64, unit: float) -> F64:
        l0, a, alpha, b, c, beta, gamma = raw
        return np.array([l0, a / unit**alpha, alpha, b * unit, c / unit ** (gamma - 1.0),
                         beta, gamma])


class AnnealingLaw(LawModel):
    """The annealing law (Tissue et al., 2024). Options: ``decay`` (λ, default 0.999)."""

    name = "annealing"
    params = ("L0", "A", "alpha", "C")
    meaning: ClassVar[dict[str, str]] = {
        "L0": "loss of an infinitely long run at constant rate (asymptote)",
        "A": "scale of the power-law decrease with the rate area S1",
        "alpha": "power of the rate area S1",
        "C": "loss drop per unit of annealing area S2",
    }
    bounds = ((0.0, np.inf), (1e-12, np.inf), (1e-3, 3.0), (0.0, np.inf))
    linear = ("L0", "A", "C")

    @property
    def decay(self) -> float:
        return float(self.options.get("decay", 0.999))

    def features(self, curve: Curve, steps: I64) -> Features:
        steps = np.asarray(steps, dtype=np.int64)
        post = steps - curve.warmup
        s2 = curve.momentum_area(self.decay)
        return Features(curve.cum[steps], post, s2[np.clip(post, 0, s2.size - 1)])

    def loss(self, theta: F64, f: Features) -> F64:
        l0, a, alpha, c = (float(v) for v in theta)
        return l0 + a * f.area ** (-alpha) - c * f.extra  # type: ignore[no-any-return]

    def basis(self, nonlinear: dict[str, float], f: Features) -> F64:
        return np.stack([np.ones_like(f.area), f.area ** (-nonlinear["alpha"]), -f.extra], 1)

    def grid(self, horizon: int) -> list[dict[str, float]]:
        return [{"alpha": a} for a in (0.2, 0.35, 0.5, 0.7, 1.0)]

    def to_raw(self, theta: F64, unit: float) -> F64:
        l0, a, alpha, c = theta
        return np.array([l0, a * unit**alpha, alpha, c / unit])

    def from_raw(self, raw: F64, unit: float) -> F64:
        l0, a, alpha, c = raw
        return np.array([l0, a / unit**alpha, alpha, c * unit])


LAWS: dict[str, type[LawModel]] = {
    MultiPowerLaw.name: MultiPowerLaw,
    AnnealingLaw.name: AnnealingLaw,
}
