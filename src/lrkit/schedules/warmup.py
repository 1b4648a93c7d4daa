"""Warmup in front of any schedule."""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from lrkit._validate import bad, check_choice, check_number
from lrkit.schedules._ops import NUMPY, Array, Ops
from lrkit.schedules.base import Rel, Schedule, Value, check_value, resolve
from lrkit.schedules.combine import offset_horizon

__all__ = ["WARMUP_MODES", "WARMUP_SHAPES", "Warmup"]

WARMUP_SHAPES = ("linear", "cosine", "exponential", "constant")
WARMUP_MODES = ("prefix", "overlap")


@dataclasses.dataclass(frozen=True)
class Warmup(Schedule):
    r"""Ramp from ``start`` to the schedule's value over ``steps``, then hand over.

    With :math:`w` = ``steps``, :math:`u = t / w` and target :math:`\eta^\ast`:

    .. math::
        \eta_t = \begin{cases}
            \eta_{start} + (\eta^\ast - \eta_{start})\, g(u) & t < w \\
            f(t - w) & t \ge w,\ \text{mode = prefix} \\
            f(t)     & t \ge w,\ \text{mode = overlap}
        \end{cases}

    where :math:`f` is ``schedule`` and the target :math:`\eta^\ast` is :math:`f(0)` in
    *prefix* mode (the schedule starts after warmup; horizons add up) and :math:`f(w)` in
    *overlap* mode (warmup replaces the schedule's first ``w`` steps, as Segmenter's
    ``PolynomialLR`` does). The shape :math:`g` is ``linear`` (:math:`u`), ``cosine``
    (:math:`(1 - \cos \pi u)/2`), ``constant`` (:math:`0`: hold ``start``, then jump, as
    torch's ``ConstantLR``) or ``exponential`` (geometric:
    :math:`\eta_{start} (\eta^\ast/\eta_{start})^{u}`, which needs ``start > 0``).
    At :math:`t = w` the value is exactly the target: no jump or overshoot at the hand-over
    (except by design for ``constant``).

    Args:
        schedule: the schedule to warm up into.
        steps: warmup length :math:`w` (>= 0; 0 means no warmup).
        start: the value at step 0 (default 0, absolute).
        shape: ``"linear"``, ``"cosine"``, ``"exponential"`` or ``"constant"``.
        mode: ``"prefix"`` or ``"overlap"``.

    Example:
        >>> from lrkit.schedules.polynomial import Poly
        >>> s = Warmup(Poly(total_steps=90, peak=1.0), steps=10)
        >>> s(0), s(5), s(10), s(100)
        (0.0, 0.5, 1.0, 0.0)

    Equivalent: HF ``get_*_schedule_with_warmup`` (linear, prefix, ``start=0``); timm
    ``warmup_t``/``warmup_lr_init`` with ``warmup_prefix=True`` (prefix) or ``False`` (overlap).
    """

    kind = "warmup"
    schedule: Schedule
    steps: float = 0.0
    start: Value = 0.0
    shape: str = "linear"
    mode: str = "prefix"

    def __post_init__(self) -> None:
        if not isinstance(self.schedule, Schedule):
            raise bad("schedule", self.schedule, "a Schedule")
        object.__setattr__(self, "steps", check_number("steps", self.steps, low=0.0))
        object.__setattr__(self, "start", check_value("start", self.start))
        check_choice("shape", self.shape, WARMUP_SHAPES)
        check_choice("mode", self.mode, WARMUP_MODES)
        zero_start = self.start == 0.0 or (isinstance(self.start, Rel) and self.start.factor == 0)
        if self.shape == "exponential" and zero_start:
            raise bad("start", self.start, "a value > 0 for shape='exponential'")

    def _eval(self, t: Array, ops: Ops) -> Array:
        w = self.steps
        if w == 0:
            return self.schedule._eval(t, ops)
        start = resolve(self.start)
        offset = w if self.mode == "prefix" else 0.0
        after = self.schedule._eval(ops.maximum(t - offset, 0.0), ops)
        target = self._target
        u = ops.minimum(t, w) / w
        if self.shape == "linear":
            ramp = ops.lerp(start, target, u)
        elif self.shape == "cosine":
            ramp = ops.lerp(start, target, 1.0 - ops.cos_anneal(u))
        elif self.shape == "constant":
            ramp = ops.full_like(t, start)
        else:  # exponential: geometric interpolation, start > 0 checked above
            ramp = start * ops.pow(target / start, u)
        return ops.where(t < w, ramp, after)

    @functools.cached_property
    def _target(self) -> float:
        """The value warmup climbs to: f(0) (prefix) or f(w) (overlap), a host constant."""
        at = 0.0 if self.mode == "prefix" else self.steps
        return float(self.schedule._eval(np.float64(at), NUMPY))

    @property
    def horizon(self) -> float | None:
        inner = self.schedule.horizon
        if inner is None:
            return None
        if self.mode == "prefix":
            return offset_horizon(self.steps, inner)
        return max(inner, self.steps)

    def milestones(self) -> dict[str, float]:
        offset = self.steps if self.mode == "prefix" else 0.0
        inner = {k: v + offset for k, v in self.schedule.milestones().items()}
        return {"warmup_end": self.steps, **inner}
