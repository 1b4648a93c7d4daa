"""Hyperbolic-tangent decay (timm's ``tanh`` scheduler, one cycle)."""

from __future__ import annotations

import dataclasses

from lrkit._validate import bad, check_number
from lrkit.schedules._ops import Array, Ops
from lrkit.schedules.base import Rel, Schedule, Value, check_decay, resolve

__all__ = ["Tanh"]


@dataclasses.dataclass(frozen=True)
class Tanh(Schedule):
    r"""Decay from ``peak`` to ``end`` along a hyperbolic tangent, then hold ``end``.

    .. math::
        \eta_t = \eta_{end} + (\eta_{peak} - \eta_{end})
                 \frac{1 - \tanh\left(a (1 - u) + b u\right)}{2}, \qquad u = \min(t, T)/T

    with :math:`T` = ``total_steps``, :math:`a` = ``lower``, :math:`b` = ``upper``. With
    timm's :math:`a = -7`, :math:`b = 3` the value starts a hair below ``peak``
    (:math:`(1 + \tanh 7)/2`), stays high for most of the run and falls late, ending a hair
    above ``end`` at :math:`T` (:math:`(1 - \tanh 3)/2 \approx 0.0025` of the range); from
    :math:`T` on it holds that value.

    Args:
        total_steps: :math:`T` (> 0).
        peak: the scale at the top (default: the group's base rate).
        end: the floor (default 0).
        lower: :math:`a`, the tanh argument at step 0.
        upper: :math:`b`, the tanh argument at :math:`T` (> ``lower``).

    Raises:
        ConfigError: ``total_steps <= 0``, ``upper <= lower``, a negative or non-finite value.

    Example:
        >>> s = Tanh(total_steps=100, peak=1.0)
        >>> round(s(0), 5), round(s(70), 4), round(s(100), 6), s(100) == s(500)
        (1.0, 0.5, 0.002473, True)

    Equivalent: timm ``TanhLRScheduler(t_initial=T, lr_min=end, lb=a, ub=b)`` (one cycle:
    ``cycle_limit=1``).

    Reference: Hsueh et al., *Stochastic Gradient Descent with Hyperbolic-Tangent Decay on
    Classification*, WACV 2019.
    """

    kind = "tanh"
    total_steps: float = 1.0
    peak: Value = Rel(1.0)
    end: Value = 0.0
    lower: float = -7.0
    upper: float = 3.0

    def __post_init__(self) -> None:
        check_decay(self)
        object.__setattr__(self, "lower", check_number("lower", self.lower))
        object.__setattr__(self, "upper", check_number("upper", self.upper))
        if self.upper <= self.lower:
            raise bad("upper", self.upper, f"a number > lower={self.lower:g}")

    def _eval(self, t: Array, ops: Ops) -> Array:
        u = ops.minimum(t, self.total_steps) / self.total_steps
        x = self.lower * (1.0 - u) + self.upper * u
        # (1 - tanh x) / 2 = 1 / (1 + e^{2x}); e^{2x} is clipped so it never overflows
        weight = 1.0 / (1.0 + ops.exp(ops.clip(2.0 * x, -700.0, 700.0)))
        return ops.lerp(resolve(self.end), resolve(self.peak), weight)

    @property
    def horizon(self) -> float | None:
        return self.total_steps
