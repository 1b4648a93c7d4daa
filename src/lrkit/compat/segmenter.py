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
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch.optim.lr_scheduler import LRScheduler

from lrkit._validate import bad, check_int, check_number
from lrkit.errors import ConfigError, StateError
from lrkit.schedules._ops import Array, Ops
from lrkit.schedules.base import Rel, Schedule, Value, check_value, resolve
from lrkit.schedules.combine import Hold, Join, Staircase
from lrkit.schedules.polynomial import Constant

__all__ = ["PolynomialLR", "SegmenterPoly", "segmenter_schedule"]


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
    m_raw = check_number("iter_max", iter_max, low=1.0)
    w_raw = check_number("iter_warmup", iter_warmup, low=0.0)
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
    if s > m:
        return Constant(Rel(1.0))
    curve = SegmenterPoly(total_steps=m, power=p, warmup_steps=w, peak=Rel(1.0), end=lo)
    decay = Hold(Staircase(curve, step_size=s), after=m)
    return Join((Constant(Rel(1.0)), decay), boundaries=(s,), local=False)


_CONFIG_KEYS = ("step_size", "iter_warmup", "iter_max", "power", "min_lr")
_CACHE_KEYS = ("_schedule", "_bound")
#: entries torch's LRScheduler.state_dict() holds in some versions
_TORCH_KEYS = ("verbose", "_is_initial", "_get_lr_called_within_step", "_step_count", "_last_lr")


def _same(saved: Any, current: Any) -> bool:
    try:
        return bool(saved == current)
    except Exception:  # e.g. an array: ambiguous truth value
        return False


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class PolynomialLR(LRScheduler):
    r"""Drop-in for Segmenter's ``PolynomialLR``: the same rates, bit for bit, in closed form.

    Rate at step :math:`k` (see :mod:`lrkit.compat.segmenter` for the formula and quirks) is
    ``segmenter_schedule(...)(k, base=group's initial lr)``, evaluated in Python floats.
    Step it once per optimizer update, after ``optimizer.step()``, with :meth:`step_update`
    (as Segmenter's engine does) or :meth:`step`.

    Differences from the original, all for configurations or uses it gets wrong:

    - invalid arguments raise :class:`~lrkit.errors.ConfigError` naming the parameter
      (``iter_max < 1``, ``iter_warmup > iter_max``, ``step_size`` not an integer >= 1,
      ``power <= 0``, negative or non-finite values) instead of later producing negative or
      complex rates or ``ZeroDivisionError``;
    - the rate depends only on the step, never on ``group["lr"]``: :meth:`load_state_dict`
      alone restores the exact rate (it writes it into the optimizer), so resuming does not
      depend on also restoring the optimizer, and ``step(epoch)`` is exact;
    - step 0 uses the group's ``initial_lr`` (the base rate), which only differs from the
      original's ``group["lr"]`` if another scheduler set ``initial_lr`` earlier;
    - :meth:`state_dict` holds plain values only (``torch.load(weights_only=True)`` works) and
      loading a state saved with a different configuration raises
      :class:`~lrkit.errors.StateError` (the original silently adopted it).

    ``last_epoch`` keeps torch's meaning: ``-1`` starts; ``k >= 0`` needs ``initial_lr`` in
    every group (``KeyError`` otherwise) and makes the constructor's step go to ``k + 1``.

    Args:
        optimizer: the wrapped optimizer.
        step_size, iter_warmup, iter_max, power, min_lr: as :func:`segmenter_schedule`.
        last_epoch: the index of the last step taken (``-1``: start).

    Example:
        >>> import torch
        >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
        >>> sched = PolynomialLR(opt, step_size=1, iter_warmup=2, iter_max=4, power=1.0)
        >>> rates = [opt.param_groups[0]["lr"]]
        >>> for k in range(1, 6):
        ...     opt.step()
        ...     sched.step_update(num_updates=k)
        ...     rates.append(opt.param_groups[0]["lr"])
        >>> rates
        [0.1, 0.025, 0.05, 0.025, 0.0, 0.0]
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        step_size: int,
        iter_warmup: float,
        iter_max: float,
        power: float,
        min_lr: float = 0,
        last_epoch: int = -1,
    ) -> None:
        s, w, m, p, lo = _config(step_size, iter_warmup, iter_max, power, min_lr)
        self.step_size = s
        self.iter_warmup = w
        self.iter_max = m
        self.power = p
        self.min_lr = lo
        self._schedule = segmenter_schedule(s, w, m, p, lo)
        self._bound: dict[float, Schedule] = {}
        # the first rates, checked before torch's constructor records initial_lr and steps
        start = check_int("last_epoch", last_epoch, low=-1) + 1
        for i, group in enumerate(getattr(optimizer, "param_groups", [])):
            base = group.get("initial_lr", group.get("lr")) if start == 0 \
                else group.get("initial_lr")
            if base is not None:  # (torch raises its KeyError for a missing initial_lr)
                try:
                    self.rate(start, float(base))
                except (TypeError, ValueError, OverflowError, RuntimeError):
                    raise bad(f"param_groups[{i}]['lr']", base,
                              "a finite number >= 0") from None
        super().__init__(optimizer, last_epoch)

    @property
    def schedule(self) -> Schedule:
        """The closed-form schedule (relative to each group's base rate)."""
        return self._schedule

    def rate(self, step: int, base: float) -> float:
        """The rate at ``step`` for a group whose base rate is ``base`` (Python floats)."""
        k = check_int("step", step, low=0)
        base = float(base)
        bound = self._bound.get(base)
        if bound is None:
            bound = self._bound[base] = self._schedule.bind(base)
        return float(bound._eval(float(k), _PYTHON))

    def get_lr(self) -> list[float | torch.Tensor]:
        """The rates for the current step ``last_epoch``, one per parameter group."""
        return [self.rate(self.last_epoch, float(b)) for b in self.base_lrs]

    _get_closed_form_lr = get_lr

    def step(self, epoch: int | None = None) -> None:
        """One step (``epoch=None``), or go to step ``epoch`` (torch's deprecated form, here
        exact). The rates are computed first: a call that raises changes nothing."""
        target = self.last_epoch + 1 if epoch is None else check_int("epoch", epoch, low=0)
        for b in self.base_lrs:
            self.rate(target, float(b))
        super().step(epoch if epoch is None else target)

    def step_update(self, num_updates: int) -> None:
        """Segmenter's entry point: one step per optimizer update (``num_updates`` unused)."""
        self.step()

    def state_dict(self) -> dict[str, Any]:
        """The torch scheduler state (plain values), without the schedule object."""
        return {k: v for k, v in super().state_dict().items() if k not in _CACHE_KEYS}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state (also one saved by Segmenter's class) and apply its rate to the groups.

        Raises:
            StateError: the state was saved with a different configuration, or with another
                number of parameter groups, or holds an entry that is not valid (a key that
                is not scheduler state, a step that is not an integer >= 0, a base rate that
                is not a finite number >= 0). Nothing is changed then.
        """
        if not isinstance(state_dict, dict):
            raise StateError(f"state_dict={type(state_dict).__name__} is invalid: expected a dict")
        known = {*self.state_dict(), *_TORCH_KEYS}
        for key, value in state_dict.items():
            if key not in known:
                raise StateError(f"state_dict[{key!r}] is invalid: not an entry of this "
                                 f"scheduler's state ({', '.join(sorted(known))})")
            if key in _CONFIG_KEYS and not _same(value, getattr(self, key)):
                raise StateError(
                    f"{key}={value!r} in the saved state does not match "
                    f"this scheduler's {key}={getattr(self, key)!r}"
                )
        bases = state_dict.get("base_lrs", self.base_lrs)
        if not isinstance(bases, (list, tuple)) or len(bases) != len(self.optimizer.param_groups):
            raise StateError(
                f"base_lrs={_short(bases)} in the saved state is invalid: expected one base rate "
                f"for each of the optimizer's {len(self.optimizer.param_groups)} parameter groups"
            )
        try:
            step = check_int("last_epoch", state_dict.get("last_epoch", self.last_epoch), low=0)
            count = check_int("_step_count", state_dict.get("_step_count", 0), low=0)
            floats = [check_number(f"base_lrs[{i}]", b, low=0.0) for i, b in enumerate(bases)]
            rates = [self.rate(step, b) for b in floats]
        except ConfigError as exc:
            raise StateError(f"the saved state is invalid: {exc}") from None
        # only the checked entries: the configuration is equal, torch's flags are transient
        # and _last_lr is recomputed
        super().load_state_dict({"last_epoch": step, "base_lrs": floats,
                                 **({"_step_count": count} if "_step_count" in state_dict
                                    else {})})
        for group, lr in zip(self.optimizer.param_groups, rates, strict=True):
            if isinstance(group["lr"], torch.Tensor):
                group["lr"].fill_(lr)
            else:
                group["lr"] = lr
        self._last_lr = list[float | torch.Tensor](rates)
