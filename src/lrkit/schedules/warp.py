"""A schedule on a power-warped clock (timm's ``k_decay``)."""

from __future__ import annotations

import dataclasses
import math

from lrkit._validate import bad, check_number
from lrkit.schedules._ops import Array, Ops
from lrkit.schedules.base import Schedule

__all__ = ["TimeWarp"]


@dataclasses.dataclass(frozen=True)
class TimeWarp(Schedule):
    r"""Run a schedule on the clock :math:`T (t/T)^k`, frozen from step :math:`T` on.

    .. math::
        \eta_t = f\!\left(T \left(\frac{\min(t, T)}{T}\right)^{k}\right)

    with :math:`f` = ``schedule``, :math:`T` = ``total_steps`` and :math:`k` = ``power``.
    The warped clock starts at 0 and reaches :math:`T` at step :math:`T`; :math:`k > 1`
    makes it slow at first (the schedule keeps its early values longer), :math:`k < 1`
    fast. With ``Cosine(T)`` or ``Poly(T)`` inside, this is the *k-decay* of Zhang & Li
    (timm's ``k_decay``): :math:`\cos(\pi t^k / T^k)`, :math:`(1 - t^k/T^k)^p`.

    Args:
        schedule: :math:`f`.
        total_steps: :math:`T` (> 0); the value holds from :math:`T` on.
        power: :math:`k` (> 0).

    Raises:
        ConfigError: not a Schedule, ``total_steps <= 0`` or ``power <= 0``.

    Example:
        >>> from lrkit.schedules.polynomial import Linear
        >>> s = TimeWarp(Linear(100, start=1.0, end=0.0), total_steps=100, power=2.0)
        >>> s(0), s(50), s(100), s(200)
        (1.0, 0.75, 0.0, 0.0)

    Equivalent: timm ``CosineLRScheduler(..., k_decay=k)`` (one cycle) is
    ``TimeWarp(Cosine(T, end=lr_min), T, k)``; timm ``PolyLRScheduler(..., k_decay=k)``
    is ``TimeWarp(Poly(T, p, end=lr_min), T, k)``.

    Reference: Zhang & Li, *k-decay: A New Method For Learning Rate Schedule*, 2020.
    """

    kind = "timewarp"
    schedule: Schedule
    total_steps: float = 1.0
    power: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.schedule, Schedule):
            raise bad("schedule", self.schedule, "a Schedule")
        object.__setattr__(self, "total_steps", check_number(
            "total_steps", self.total_steps, low=0, low_open=True))
        object.__setattr__(self, "power", check_number("power", self.power, low=0,
                                                       low_open=True))

    def _eval(self, t: Array, ops: Ops) -> Array:
        T = self.total_steps
        warped = ops.pow(ops.minimum(t, T) / T, self.power) * T
        return self.schedule._eval(warped, ops)

    def _unwarp(self, m: float) -> float:
        """The first step whose warped clock reaches ``m`` (``m <= T``)."""
        T = self.total_steps
        u = float(T * (m / T) ** (1.0 / self.power))
        while u < T and (u / T) ** self.power * T < m:  # rounding may land a hair short
            u = math.nextafter(u, math.inf)
        return min(u, T)

    @property
    def horizon(self) -> float | None:
        h = self.schedule.horizon
        if h is None or h >= self.total_steps:
            return self.total_steps
        return self._unwarp(h)

    def milestones(self) -> dict[str, float]:
        T = self.total_steps
        return {k: self._unwarp(v) for k, v in self.schedule.milestones().items() if v <= T}
