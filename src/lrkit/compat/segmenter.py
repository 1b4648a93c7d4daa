r"""A bit-exact, closed-form drop-in for Segmenter's / SETR's ``PolynomialLR``.

Segmenter (``segm/optim/scheduler.py``) and SETR train with a poly schedule written as a
*chainable* PyTorch scheduler. Its learning-rate sequence, stepped once per optimizer update
(the engine calls ``lr_scheduler.step_update(num_updates=...)`` after ``optimizer.step()``,
and ``step_update`` just calls ``step()``), is, for step :math:`k` (completed updates) and a
group with base rate :math:`\eta_0`:

.. math::
    \eta_k = \begin{cases}
        \eta_0 & k < s \text{ or } s > M \\
        P(s \lfloor \min(k, M) / s \rfloor) & \text{otherwise}
    \end{cases}
    \qquad
    P(j) = (\eta_0 - m)\, c_j + m, \quad
    c_j = \begin{cases}
        \dfrac{j}{W} \left(1 - \dfrac{W}{M}\right)^{p} & j < W \\[1ex]
        \left(1 - \dfrac{j}{M}\right)^{p} & j \ge W
    \end{cases}

with :math:`s` = ``step_size``, :math:`W` = ``int(iter_warmup)``, :math:`M` = ``int(iter_max)``,
:math:`p` = ``power`` and :math:`m` = ``min_lr`` (absolute, the same for every group). Its
quirks, kept on purpose:

- before the first step the group's base rate is used; with warmup the next value is small
  (the warmup starts at ``min_lr`` *after* one step at the full base rate);
- the warmup climbs to :math:`P(W)`, the polynomial's own value at ``iter_warmup``, not to
  the base rate (an *overlapping* warmup);
- between multiples of ``step_size`` the last value is held, and after ``iter_max`` the value
  of the last multiple of ``step_size`` that is ``<= iter_max`` is held.

Here the sequence is computed in closed form from the step, so restoring only the scheduler
state resumes exactly, and configurations the original mishandles raise
:class:`~lrkit.errors.ConfigError` (a ``ValueError``) naming the parameter.

**Bit-exactness.** The rates equal the original's bit for bit (tested against the original
class over random configurations) because:

1. the structure (step 0, the ``step_size`` staircase, the hold after ``iter_max``) is lrkit's
   combinators, which only move the step (``Join``, ``Staircase``, ``Hold``: exact integer
   arithmetic in floats) and never touch the value;
2. the formula is :class:`SegmenterPoly`, which performs Segmenter's IEEE operations in
   Segmenter's order; lrkit's ``Warmup(Poly(...), mode="overlap")`` draws the same curve
   but rounds differently (see the class for why it is not that composition);
3. the scheduler evaluates the schedule on plain Python floats (a private scalar backend
   below), so ``**`` is CPython's, i.e. the C library's ``pow``, as in the original.

NumPy's ``power`` (used by ``schedule(step)`` and by arrays) may differ from the C library's
by one unit in the last place on CPUs where NumPy uses its SIMD (AVX-512) ``pow``; about 5%
of the values with ``power=0.9`` on such a machine. torch's ``pow`` likewise. Those paths
are for plots and analysis; they agree with the drop-in to within 2 ulp.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from lrkit._validate import MAX_INT, bad, check_int, check_number
from lrkit.schedules._ops import Array, Ops
from lrkit.schedules.base import Rel, Schedule, Value, check_value, resolve
from lrkit.schedules.combine import Hold, Join, Staircase
from lrkit.schedules.polynomial import Constant

__all__ = ["PolynomialLR", "Segmenter", "SegmenterPoly", "segmenter_schedule"]


class _PythonOps(Ops):
    """Scalar backend on Python floats: ``pow`` is CPython's ``**`` (the C library's pow).

    Used by :class:`PolynomialLR` so that every rate is computed with exactly the arithmetic
    of the original (which uses Python floats), whatever SIMD NumPy picks for ``power``.
    """

    name = "python"

    def cos(self, x: Array) -> Array:
        return math.cos(x)

    def exp(self, x: Array) -> Array:
        return math.exp(x)

    def log(self, x: Array) -> Array:
        return math.log(x)

    def sqrt(self, x: Array) -> Array:
        return math.sqrt(x)

    def floor(self, x: Array) -> Array:
        return float(math.floor(x))

    def pow(self, x: Array | float, p: Array | float) -> Array:
        return float(x) ** float(p)

    def where(self, cond: Array, a: Array | float, b: Array | float) -> Array:
        return a if cond else b

    def minimum(self, x: Array, v: Array | float) -> Array:
        return x if x <= v else v

    def maximum(self, x: Array, v: Array | float) -> Array:
        return x if x >= v else v

    def full_like(self, x: Array, v: float) -> Array:
        return float(v)

    def count_le(self, boundaries: Sequence[float], x: Array) -> Array:
        return float(bisect.bisect_right(list(boundaries), x))

    def select(self, index: Array, values: Sequence[float]) -> Array:
        return float(values[int(index)])


_PYTHON: Ops = _PythonOps()


@dataclasses.dataclass(frozen=True)
class SegmenterPoly(Schedule):
    r"""Segmenter's ``polynomial_decay``: poly decay with an overlapping linear warmup.

    With :math:`\eta_0` = ``peak``, :math:`m` = ``end``, :math:`p` = ``power``,
    :math:`M` = ``total_steps`` and :math:`W` = ``warmup_steps``:

    .. math::
        \eta_t = (\eta_0 - m)\, c_t + m, \qquad
        c_t = \begin{cases}
            \dfrac{t}{W} \left(1 - \dfrac{W}{M}\right)^{p} & t < W \\[1ex]
            \left(1 - \dfrac{\min(t, M)}{M}\right)^{p} & t \ge W
        \end{cases}

    The curve is ``Warmup(Poly(M, p, peak, end), W, start=end, mode="overlap")``: the
    warmup climbs from ``end`` to the polynomial's own value at :math:`W`. It is a class of
    its own, not that composition, because it must reproduce Segmenter's rates bit for bit:
    Segmenter computes ``(lr - min_lr) * coef + min_lr`` with ``coef = (t / W) * c`` in the
    warmup, while :class:`~lrkit.schedules.polynomial.Poly` and
    :class:`~lrkit.schedules.warmup.Warmup` go through ``Ops.lerp`` (which snaps to the
    peak where the weight rounds to 1 and clips to ``[end, peak]``) and the warmup
    interpolates from the rounded target :math:`f(W)`. Those differ from Segmenter's
    arithmetic in the last bit at some steps (and ``end > peak`` is allowed here, as in
    Segmenter: the "decay" then rises to ``end``).

    Args:
        total_steps: the decay horizon :math:`M`, an integer >= 1 (includes the warmup).
        power: the exponent :math:`p` (> 0).
        warmup_steps: :math:`W`, an integer in ``[0, total_steps]`` (0: no warmup).
        peak: the rate the polynomial starts from (default: the group's base rate).
        end: the floor :math:`m` (default 0; Segmenter's ``min_lr`` is absolute).

    Raises:
        ConfigError: a value outside those ranges, naming the parameter.

    Example:
        >>> s = SegmenterPoly(total_steps=10, power=1.0, warmup_steps=5)
        >>> s(0), s(1), s(5), s(10)
        (0.0, 0.1, 0.5, 0.0)

    Equivalent: Segmenter's ``PolynomialLR.polynomial_decay``; see :func:`segmenter_schedule`
    for the whole scheduler (step 0, ``step_size``, the hold after ``iter_max``).
    """

    kind = "segmenter_poly"
    total_steps: int = 1
    power: float = 1.0
    warmup_steps: int = 0
    peak: Value = Rel(1.0)
    end: Value = 0.0

    def __post_init__(self) -> None:
        total = check_int("total_steps", self.total_steps, low=1)
        warmup = check_int("warmup_steps", self.warmup_steps, low=0)
        if warmup > total:
            raise bad("warmup_steps", self.warmup_steps, f"at most total_steps={total}")
        object.__setattr__(self, "total_steps", total)
        object.__setattr__(self, "warmup_steps", warmup)
        object.__setattr__(self, "power", check_number("power", self.power, low=0, low_open=True))
        object.__setattr__(self, "peak", check_value("peak", self.peak))
        object.__setattr__(self, "end", check_value("end", self.end))

    def _eval(self, t: Array, ops: Ops) -> Array:
        # Segmenter's operations, in Segmenter's order: do not "simplify" (bit-exactness).
        peak, end = resolve(self.peak), resolve(self.end)
        m = float(self.total_steps)
        decay = (peak - end) * ops.pow(1.0 - ops.minimum(t, m) / m, self.power) + end
        if self.warmup_steps == 0:
            return decay
        w = float(self.warmup_steps)
        c = (1.0 - w / m) ** self.power  # a host constant, in Python floats as Segmenter
        ramp = (peak - end) * (ops.minimum(t, w) / w * c) + end
        return ops.where(t < w, ramp, decay)

    @property
    def horizon(self) -> float | None:
        return float(self.total_steps)

    def milestones(self) -> dict[str, float]:
        return {"warmup_end": float(self.warmup_steps)} if self.warmup_steps else {}


def _config(
    step_size: Any, iter_warmup: Any, iter_max: Any, power: Any, min_lr: Any
) -> tuple[int, int, int, float, float]:
    """Validate Segmenter's arguments; ``iter_*`` are truncated with ``int()`` as it does."""
    s = check_int("step_size", step_size, low=1)
    m_raw = check_number("iter_max", iter_max, low=1.0, high=float(MAX_INT))
    w_raw = check_number("iter_warmup", iter_warmup, low=0.0, high=float(MAX_INT))
    m, w = int(m_raw), int(w_raw)
    if w > m:
        raise bad("iter_warmup", iter_warmup, f"a number <= iter_max={m} after int()")
    p = check_number("power", power, low=0.0, low_open=True)
    lo = check_number("min_lr", min_lr, low=0.0)
    return s, w, m, p, lo


def segmenter_schedule(
    step_size: int,
    iter_warmup: float,
    iter_max: float,
    power: float,
    min_lr: float = 0.0,
) -> Schedule:
    r"""Segmenter's ``PolynomialLR`` sequence as an lrkit schedule (relative to the base rate).

    The composition (``s`` = ``step_size``, ``W``/``M`` = ``int(iter_warmup)``/``int(iter_max)``)::

        Join((Constant(Rel(1)),
              Hold(Staircase(SegmenterPoly(M, p, W, end=min_lr), s), after=M)),
             boundaries=(s,), local=False)

    i.e. the base rate until the first multiple of ``step_size`` (Segmenter's step 0 is the
    group's rate, held until the first update), then the warmed-up poly sampled at multiples
    of ``step_size`` and frozen at ``iter_max`` (so past it the value of the last multiple
    ``<= iter_max`` holds). If ``step_size > iter_max`` the rate never changes: ``Constant``.
    See the module docstring for the formula and why :class:`SegmenterPoly` is its own class.

    Args:
        step_size: update the rate every ``step_size`` steps (an integer >= 1).
        iter_warmup: warmup length (>= 0, truncated with ``int()``, at most ``iter_max``).
        iter_max: decay length (>= 1, truncated with ``int()``); includes the warmup.
        power: the exponent (> 0).
        min_lr: the floor, an absolute rate (>= 0) shared by all groups.

    Raises:
        ConfigError: any of the above violated, naming the parameter.

    Example:
        >>> s = segmenter_schedule(step_size=1, iter_warmup=2, iter_max=4, power=1.0)
        >>> [s(k, base=0.1) for k in range(6)]
        [0.1, 0.025, 0.05, 0.025, 0.0, 0.0]

    Equivalent: ``segm.optim.scheduler.PolynomialLR(opt, step_size, iter_warmup, iter_max,
    power, min_lr)``; close to (not bit-exact with) ``Warmup(Poly(M, p, end=min_lr), W,
    start=min_lr, mode="overlap")`` apart from the step-0 and ``step_size`` quirks.
    """
    s, w, m, p, lo = _config(step_size, iter_warmup, iter_max, power, min_lr)
    return _compose(s, w, m, p, lo, Rel(1.0))


def _compose(s: int, w: int, m: int, p: float, end: Value, peak: Value) -> Schedule:
    if s > m:
        return Constant(peak)
    curve = SegmenterPoly(total_steps=m, power=p, warmup_steps=w, peak=peak, end=end)
    decay = Hold(Staircase(curve, step_size=s), after=m)
    return Join((Constant(peak), decay), boundaries=(s,), local=False)


@dataclasses.dataclass(frozen=True)
class Segmenter(Schedule):
    r"""Segmenter's whole ``PolynomialLR`` sequence as one schedule kind (spec ``segmenter``).

    The rates of :func:`segmenter_schedule` (formula in :mod:`lrkit.compat.segmenter`), with
    lrkit's names for Segmenter's arguments, so that it has a spec form that parses:
    ``segmenter(160000, power=0.9, end=1e-5)`` or ``segmenter(power=0.9, end=1e-5) over
    160000``.

    Args:
        total_steps: ``iter_max``, the decay horizon :math:`M` (an integer >= 1; includes
            the warmup).
        power: ``power``, :math:`p` (> 0; default 0.9, Segmenter's ``poly_power``).
        warmup_steps: ``iter_warmup``, :math:`W` (an integer in ``[0, total_steps]``).
        end: ``min_lr``, the floor :math:`m` (absolute, default 0).
        step_size: ``step_size``, update the rate every ``step_size`` steps (integer >= 1).
        peak: the base rate (default: the group's own, as Segmenter).

    Raises:
        ConfigError: a value outside those ranges, naming the parameter.

    Example:
        >>> s = Segmenter(total_steps=4, power=1.0, warmup_steps=2)
        >>> [s(k, base=0.1) for k in range(6)]
        [0.1, 0.025, 0.05, 0.025, 0.0, 0.0]

    Equivalent: ``segm.optim.scheduler.PolynomialLR(opt, step_size, iter_warmup=W,
    iter_max=M, power=p, min_lr=m)``; the drop-in :class:`PolynomialLR` steps it bit for bit.
    """

    kind = "segmenter"
    total_steps: int
    power: float = 0.9
    warmup_steps: int = 0
    end: Value = 0.0
    step_size: int = 1
    peak: Value = Rel(1.0)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        total = check_int("total_steps", self.total_steps, low=1)
        warmup = check_int("warmup_steps", self.warmup_steps, low=0)
        if warmup > total:
            raise bad("warmup_steps", self.warmup_steps, f"at most total_steps={total}")
        set_(self, "total_steps", total)
        set_(self, "warmup_steps", warmup)
        set_(self, "step_size", check_int("step_size", self.step_size, low=1))
        set_(self, "power", check_number("power", self.power, low=0, low_open=True))
        set_(self, "end", check_value("end", self.end))
        set_(self, "peak", check_value("peak", self.peak))

    @functools.cached_property
    def _inner(self) -> Schedule:
        return _compose(self.step_size, self.warmup_steps, self.total_steps, self.power,
                        self.end, self.peak)

    def _eval(self, t: Array, ops: Ops) -> Array:
        return self._inner._eval(t, ops)

    @property
    def horizon(self) -> float | None:
        return self._inner.horizon

    def milestones(self) -> dict[str, float]:
        return {"warmup_end": float(self.warmup_steps)} if self.warmup_steps else {}


if TYPE_CHECKING:
    from lrkit.compat._segmenter_torch import PolynomialLR


def __getattr__(name: str) -> Any:
    # the torch drop-in lives apart so that the schedule (and the spec registry, which
    # scans this module) never import torch
    if name == "PolynomialLR":
        from lrkit.compat._segmenter_torch import PolynomialLR

        return PolynomialLR
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
