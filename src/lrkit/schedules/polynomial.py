"""Constant, linear and polynomial schedules."""

from __future__ import annotations

import dataclasses

from lrkit._validate import check_number
from lrkit.schedules._ops import Array, Ops
from lrkit.schedules.base import Rel, Schedule, Value, check_decay, check_value, resolve

__all__ = ["Constant", "Linear", "Poly"]


@dataclasses.dataclass(frozen=True)
class Constant(Schedule):
    r"""A constant value.

    .. math:: \eta_t = v

    Args:
        value: the value ``v`` (default: the group's base rate, ``Rel(1.0)``).

    Example:
        >>> Constant(0.1)(5)
        0.1

    Equivalent: ``torch.optim.lr_scheduler.ConstantLR(opt, factor=1.0)``; optax
    ``constant_schedule(v)``.
    """

    kind = "constant"
    value: Value = Rel(1.0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", check_value("value", self.value))

    def _eval(self, t: Array, ops: Ops) -> Array:
        return ops.full_like(t, resolve(self.value))

    @property
    def horizon(self) -> float | None:
        return 0.0


@dataclasses.dataclass(frozen=True)
class Poly(Schedule):
    r"""Polynomial decay from ``peak`` to ``end`` over ``total_steps``, then hold ``end``.

    .. math::
        \eta_t = \eta_{end} + (\eta_{peak} - \eta_{end})
                 \left(1 - \frac{\min(t, T)}{T}\right)^{p}

    with :math:`T` = ``total_steps`` and :math:`p` = ``power``. ``power=1`` is a straight
    line; SETR and Segmenter use ``power=0.9`` (the curve bends down late); ``power=2``
    bends early. ``end`` may be absolute (Segmenter's ``min_lr``) or relative.

    Args:
        total_steps: the horizon :math:`T` (> 0); past it the value holds at ``end``.
        power: the exponent :math:`p` (> 0).
        peak: the value at step 0 (default: the group's base rate).
        end: the value at and after step :math:`T` (default 0).

    Raises:
        ConfigError: ``total_steps <= 0``, ``power <= 0``, a negative or non-finite value.

    Example:
        >>> s = Poly(total_steps=100, power=0.9, peak=0.01, end=1e-4)
        >>> s(0), round(s(50), 6), s(100), s(1000)
        (0.01, 0.005405, 0.0001, 0.0001)

    Equivalent: ``torch.optim.lr_scheduler.PolynomialLR(opt, total_iters=T, power=p)`` for
    ``end=0``; optax ``polynomial_schedule(peak, end, p, T)``; HF
    ``get_polynomial_decay_schedule_with_warmup`` (with :class:`~lrkit.Warmup`).
    """

    kind = "poly"
    total_steps: float = 1.0
    power: float = 1.0
    peak: Value = Rel(1.0)
    end: Value = 0.0

    def __post_init__(self) -> None:
        check_decay(self)
        object.__setattr__(self, "power", check_number("power", self.power, low=0, low_open=True))

    def _eval(self, t: Array, ops: Ops) -> Array:
        peak, end = resolve(self.peak), resolve(self.end)
        remaining = 1.0 - ops.minimum(t, self.total_steps) / self.total_steps
        return ops.lerp(end, peak, ops.pow(remaining, self.power))

    @property
    def horizon(self) -> float | None:
        return self.total_steps


@dataclasses.dataclass(frozen=True)
class Linear(Schedule):
    r"""Straight line from ``start`` to ``end`` over ``total_steps``, then hold ``end``.

    .. math:: \eta_t = \eta_{start} + (\eta_{end} - \eta_{start}) \frac{\min(t, T)}{T}

    Args:
        total_steps: the horizon :math:`T` (> 0).
        start: the value at step 0 (default: the group's base rate).
        end: the value at and after :math:`T` (default 0).

    Example:
        >>> Linear(total_steps=10, start=1.0, end=0.0)(5)
        0.5

    Equivalent: ``torch.optim.lr_scheduler.LinearLR(opt, start_factor=a, end_factor=b,
    total_iters=T)`` is ``Linear(T, start=Rel(a), end=Rel(b))``; optax
    ``linear_schedule(start, end, T)``.
    """

    kind = "linear"
    total_steps: float = 1.0
    start: Value = Rel(1.0)
    end: Value = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "total_steps", check_number("total_steps", self.total_steps, low=0, low_open=True)
        )
        object.__setattr__(self, "start", check_value("start", self.start))
        object.__setattr__(self, "end", check_value("end", self.end))

    def _eval(self, t: Array, ops: Ops) -> Array:
        start, end = resolve(self.start), resolve(self.end)
        return ops.lerp(start, end, ops.minimum(t, self.total_steps) / self.total_steps)

    @property
    def horizon(self) -> float | None:
        return self.total_steps
