"""Exponential decay, step decay every ``step_size`` steps, and decay at milestones."""

from __future__ import annotations

import dataclasses
import functools
import math

from lrkit._validate import bad, check_number, check_sorted
from lrkit.schedules._ops import Array, Ops
from lrkit.schedules.base import Rel, Schedule, Value, check_value, resolve

__all__ = ["Exponential", "MultiStep", "StepDecay"]


@dataclasses.dataclass(frozen=True)
class Exponential(Schedule):
    r"""Exponential decay (or growth): multiply by ``gamma`` every ``period`` steps.

    .. math::
        \eta_t = \operatorname{lim}_{end}\left(\eta_{peak}\, \gamma^{\,e(t)}\right), \qquad
        e(t) = \begin{cases} \min(t, T)/p & \text{smooth} \\
                             \lfloor \min(t, T)/p \rfloor & \text{staircase} \end{cases}

    with :math:`p` = ``period``, :math:`T` = ``total_steps`` (:math:`\infty` if ``None``:
    no hold) and :math:`\operatorname{lim}_{end}` the optional limit ``end``: a floor when
    :math:`\gamma < 1`, a cap when :math:`\gamma > 1` (as optax ``end_value``). Growth
    (:math:`\gamma > 1`, as in a learning-rate range test) must be bounded by ``end`` or
    ``total_steps``.

    Args:
        gamma: the factor :math:`\gamma` per period (>= 0).
        peak: the value at step 0 (default: the group's base rate).
        period: :math:`p`, the steps per factor of :math:`\gamma` (> 0).
        staircase: change only at multiples of ``period`` (``StepLR``-like).
        total_steps: hold the value from this step on (``None``: never).
        end: the floor (decay) or cap (growth), or ``None``.

    Raises:
        ConfigError: ``gamma < 0``, ``period <= 0``, ``total_steps <= 0``, a negative or
            non-finite value, or unbounded growth (``gamma > 1`` with neither limit, or a
            value that overflows at ``total_steps``).

    Example:
        >>> s = Exponential(gamma=0.5, peak=1.0, period=10)
        >>> s(0), s(10), round(s(15), 12), s(20)
        (1.0, 0.5, 0.353553390593, 0.25)
        >>> Exponential(gamma=0.5, peak=1.0, period=10, staircase=True, end=0.3)(25)
        0.3

    Equivalent: ``torch.optim.lr_scheduler.ExponentialLR(opt, gamma)`` is
    ``Exponential(gamma)``; optax ``exponential_decay(peak, transition_steps=p,
    decay_rate=gamma, staircase=..., end_value=end)``; Keras ``ExponentialDecay``.
    """

    kind = "exp"
    gamma: float = 1.0
    peak: Value = Rel(1.0)
    period: float = 1.0
    staircase: bool = False
    total_steps: float | None = None
    end: Value | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "gamma", check_number("gamma", self.gamma, low=0.0))
        object.__setattr__(self, "peak", check_value("peak", self.peak))
        object.__setattr__(
            self, "period", check_number("period", self.period, low=0, low_open=True)
        )
        if not isinstance(self.staircase, bool):
            raise bad("staircase", self.staircase, "True or False")
        if self.total_steps is not None:
            object.__setattr__(
                self,
                "total_steps",
                check_number("total_steps", self.total_steps, low=0, low_open=True),
            )
        if self.end is not None:
            object.__setattr__(self, "end", check_value("end", self.end))
        if self.gamma > 1.0 and self.end is None:
            if self.total_steps is None:
                raise bad("gamma", self.gamma, "a value <= 1, or end= or total_steps= set")
            try:
                growth = self.gamma ** (self.total_steps / self.period)
            except OverflowError:
                growth = math.inf
            if not growth < 1e300:
                raise bad("total_steps", self.total_steps, "a horizon without overflow")

    def _eval(self, t: Array, ops: Ops) -> Array:
        peak = resolve(self.peak)
        if self.total_steps is not None:
            t = ops.minimum(t, self.total_steps)
        e = t / self.period
        if self.staircase:
            e = ops.floor(e)
        if self.end is not None and self.gamma > 1.0:
            # cap the exponent where gamma**e would pass the cap, keeping it finite
            end = resolve(self.end)
            if peak > 0.0 and end > 0.0:
                # log(end) - log(peak), not log(end / peak): the ratio may underflow to 0
                cap = (math.log(end) - math.log(peak)) / math.log(self.gamma)
                e = ops.minimum(e, max(cap, 0.0) + 1.0)
            else:
                e = ops.minimum(e, 0.0)
        out = peak * ops.pow(self.gamma, e)
        if self.end is not None:
            end = resolve(self.end)
            out = ops.minimum(out, end) if self.gamma > 1.0 else ops.maximum(out, end)
        return out

    @property
    def horizon(self) -> float | None:
        return self.total_steps


@dataclasses.dataclass(frozen=True)
class StepDecay(Schedule):
    r"""Multiply by ``gamma`` every ``step_size`` steps.

    .. math:: \eta_t = \eta_{peak}\, \gamma^{\lfloor t / s \rfloor}

    with :math:`s` = ``step_size``: :class:`Exponential` with ``period=s, staircase=True``.

    Args:
        step_size: :math:`s`, steps between decays (> 0).
        gamma: the factor :math:`\gamma` per decay (in ``[0, 1]``; default 0.1).
        peak: the value at step 0 (default: the group's base rate).

    Raises:
        ConfigError: ``step_size <= 0``, ``gamma`` outside ``[0, 1]``, a bad ``peak``.

    Example:
        >>> s = StepDecay(step_size=30, gamma=0.1, peak=1.0)
        >>> s(29), s(30), round(s(60), 12)
        (1.0, 0.1, 0.01)

    Equivalent: ``torch.optim.lr_scheduler.StepLR(opt, step_size=s, gamma=g)``; optax
    ``exponential_decay(peak, s, g, staircase=True)``.
    """

    kind = "step"
    step_size: float = 1.0
    gamma: float = 0.1
    peak: Value = Rel(1.0)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "step_size", check_number("step_size", self.step_size, low=0, low_open=True)
        )
        object.__setattr__(self, "gamma", check_number("gamma", self.gamma, low=0.0, high=1.0))
        object.__setattr__(self, "peak", check_value("peak", self.peak))

    @functools.cached_property
    def _exponential(self) -> Exponential:
        return Exponential(self.gamma, self.peak, period=self.step_size, staircase=True)

    def _eval(self, t: Array, ops: Ops) -> Array:
        return self._exponential._eval(t, ops)


@dataclasses.dataclass(frozen=True)
class MultiStep(Schedule):
    r"""Multiply by ``gamma`` at each milestone.

    .. math:: \eta_t = \eta_{peak}\, \gamma^{\#\{i : m_i \le t\}}

    with milestones :math:`m_1 \le m_2 \le \dots`; a milestone listed twice applies
    :math:`\gamma` twice (as PyTorch's ``MultiStepLR``). The value holds from the last
    milestone on. (The field is ``boundaries``, as in :class:`~lrkit.Join`, because
    ``milestones`` is the name of every schedule's plot-marks method.)

    Args:
        boundaries: the milestones, non-decreasing steps :math:`m_i \ge 0` (may be empty).
        gamma: the factor :math:`\gamma` per milestone (>= 0; default 0.1).
        peak: the value before the first milestone (default: the group's base rate).

    Raises:
        ConfigError: unsorted or negative boundaries, ``gamma < 0``, a bad ``peak``.

    Example:
        >>> s = MultiStep(boundaries=(30, 80), gamma=0.1, peak=1.0)
        >>> s(29), s(30), round(s(80), 12)
        (1.0, 0.1, 0.01)

    Equivalent: ``torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[...], gamma=g)``;
    optax ``piecewise_constant_schedule(peak, {m: g ...})``.
    """

    kind = "multistep"
    boundaries: tuple[float, ...] = ()
    gamma: float = 0.1
    peak: Value = Rel(1.0)

    def __post_init__(self) -> None:
        if not isinstance(self.boundaries, (list, tuple)):
            raise bad("boundaries", self.boundaries, "a sequence of steps")
        ms = tuple(
            check_number(f"boundaries[{i}]", m, low=0.0) for i, m in enumerate(self.boundaries)
        )
        check_sorted("boundaries", ms, strict=False)
        object.__setattr__(self, "boundaries", ms)
        object.__setattr__(self, "gamma", check_number("gamma", self.gamma, low=0.0))
        object.__setattr__(self, "peak", check_value("peak", self.peak))
        if self.gamma > 1.0 and not len(ms) * math.log(self.gamma) < math.log(1e300):
            raise bad("gamma", self.gamma, f"a factor whose growth over {len(ms)} boundaries "
                      "stays finite (gamma**len(boundaries) < 1e300)")

    def _eval(self, t: Array, ops: Ops) -> Array:
        peak = resolve(self.peak)
        if not self.boundaries:
            return ops.full_like(t, peak)
        return peak * ops.pow(self.gamma, ops.count_le(self.boundaries, t))

    @property
    def horizon(self) -> float | None:
        return self.boundaries[-1] if self.boundaries else 0.0

    def milestones(self) -> dict[str, float]:
        return {f"decay_{i + 1}": b for i, b in enumerate(self.boundaries)}
