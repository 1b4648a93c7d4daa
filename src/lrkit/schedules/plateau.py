"""Reduce the rate when a metric stops improving, on top of any time-based schedule.

The configuration is a schedule wrapper, :class:`Plateau`, so it has a spec form
(``plateau(factor=0.3, patience=2)``), a fingerprint for saved state and one place in the
API: the learning-rate schedule given to :class:`lrkit.torch.LRScheduler`. Nothing here
imports torch. As a pure
function of the step it is its inner schedule; the reductions are decision state kept by the
scheduler (:class:`PlateauTracker`), fed by ``scheduler.step(metric)``.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any

import numpy as np

from lrkit._validate import bad, check_choice, check_int, check_number
from lrkit.errors import ConfigError, StateError
from lrkit.schedules._ops import Array, Ops
from lrkit.schedules.base import Schedule, Value, check_value, resolve
from lrkit.schedules.polynomial import Constant

__all__ = ["Plateau", "PlateauTracker"]

PLATEAU_MODES = ("min", "max")
THRESHOLD_MODES = ("rel", "abs")
NONFINITE = ("raise", "ignore")
#: reductions applied one multiplication at a time (as torch); more use one power
MAX_EXACT_REDUCTIONS = 10_000


@dataclasses.dataclass(frozen=True)
class Plateau(Schedule):
    r"""Multiply ``schedule`` by ``factor`` each time the metric stops improving.

    With :math:`f` = ``schedule``, :math:`\gamma` = ``factor``, :math:`k_g` the number of
    reductions applied to group :math:`g` so far and :math:`\eta_{min}` = ``min_lr``:

    .. math::
        \eta_t = \begin{cases} f(t) & k_g = 0 \\
                 \max(f(t)\, \gamma^{k_g}, \eta_{min}) & k_g \ge 1 \end{cases}

    A metric is *better* than the best so far when it is below
    :math:`best (1 - \theta)` (``mode="min"``, ``threshold_mode="rel"``),
    below :math:`best - \theta` (``"abs"``), or above :math:`best (1 + \theta)` /
    :math:`best + \theta` for ``mode="max"``. After more than ``patience`` metrics in a row
    without improvement the plateau reduces, then ignores ``cooldown`` metrics. A reduction
    that would change a group's current rate by ``eps`` or less is skipped for that group,
    and the floor only applies once a group has been reduced (both as torch's
    ``ReduceLROnPlateau``, which this equals for a constant schedule).

    Args:
        schedule: the time-based schedule (default: the group's base rate, constant).
        factor: :math:`\gamma` in ``(0, 1)``.
        patience: metrics without improvement tolerated before a reduction (>= 0).
        mode: ``"min"`` (loss-like) or ``"max"`` (accuracy-like).
        threshold: :math:`\theta` (>= 0), the least improvement that counts.
        threshold_mode: ``"rel"`` or ``"abs"``.
        cooldown: metrics ignored after a reduction (>= 0).
        min_lr: the floor :math:`\eta_{min}`, absolute or ``Rel`` (of the group's base).
        eps: the smallest change of a rate worth making (>= 0).
        nonfinite: ``"raise"`` (default) on a NaN or infinite metric, or ``"ignore"`` it.
        every: the plateau decides every ``every`` calls only (e.g. the number of updates
            per epoch when the metric comes once an epoch); a metric given on another call is
            an error. :class:`lrkit.torch.LRScheduler` counts its ``step()`` calls, so an
            update that AMP's GradScaler skipped (``skipped="skip"``) keeps the cadence.

    Raises:
        ConfigError: a value outside the ranges above.

    Example:
        >>> from lrkit.schedules import Warmup, Constant
        >>> p = Plateau(Warmup(Constant(0.1), steps=10), factor=0.5, patience=2)
        >>> p(5)  # as a function of the step: the inner schedule, before any reduction
        0.05

    Equivalent: ``torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode, factor, patience,
    threshold, threshold_mode, cooldown, min_lr, eps)`` is ``Plateau(Constant(), ...)``,
    which torch cannot combine with a warmup inside ``SequentialLR``.
    """

    kind = "plateau"
    schedule: Schedule = Constant()  # noqa: RUF009 - a frozen dataclass is immutable
    factor: float = 0.1
    patience: int = 10
    mode: str = "min"
    threshold: float = 1e-4
    threshold_mode: str = "rel"
    cooldown: int = 0
    min_lr: Value = 0.0
    eps: float = 1e-8
    nonfinite: str = "raise"
    every: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.schedule, Schedule):
            raise bad("schedule", self.schedule, "a Schedule")
        if isinstance(self.schedule, Plateau):
            raise bad("schedule", self.schedule, "a time-based Schedule (not a Plateau)")
        set_ = object.__setattr__
        set_(self, "factor", check_number("factor", self.factor, low=0, high=1,
                                          low_open=True, high_open=True))
        set_(self, "patience", check_int("patience", self.patience, low=0))
        check_choice("mode", self.mode, PLATEAU_MODES)
        set_(self, "threshold", check_number("threshold", self.threshold, low=0))
        check_choice("threshold_mode", self.threshold_mode, THRESHOLD_MODES)
        set_(self, "cooldown", check_int("cooldown", self.cooldown, low=0))
        set_(self, "min_lr", check_value("min_lr", self.min_lr))
        set_(self, "eps", check_number("eps", self.eps, low=0))
        check_choice("nonfinite", self.nonfinite, NONFINITE)
        set_(self, "every", check_int("every", self.every, low=1))

    def _eval(self, t: Array, ops: Ops) -> Array:
        return self.schedule._eval(t, ops)

    @property
    def horizon(self) -> float | None:
        return None  # a reduction may come at any step

    def milestones(self) -> dict[str, float]:
        return self.schedule.milestones()

    def reduced(self, value: float, reductions: int) -> float:
        """``value`` after ``reductions`` reductions (one multiplication each, as torch)."""
        if reductions == 0:
            return value
        factor, floor = self.factor, resolve(self.min_lr)
        if reductions > MAX_EXACT_REDUCTIONS:  # e.g. a corrupt saved count: no long loop
            return max(value * factor**reductions, floor)
        for _ in range(reductions):
            value *= factor
            if value <= floor:
                break
        return max(value, floor)

    def decision_config(self) -> tuple[Any, ...]:
        """The fields that every plateau-reduced group of one scheduler must share."""
        return (self.factor, self.patience, self.mode, self.threshold, self.threshold_mode,
                self.cooldown, self.eps, self.nonfinite, self.every)


class PlateauTracker:
    """The decision state of a plateau: best metric, bad-metric run, cooldown, decisions.

    ``observe(metric)`` returns whether to reduce now. The state is plain numbers
    (:meth:`state`, :meth:`load`), so it saves with ``torch.save`` and
    ``torch.load(weights_only=True)``.
    """

    def __init__(self, config: Plateau) -> None:
        self.config = config
        self.best = math.inf if config.mode == "min" else -math.inf
        self.num_bad = 0
        self.cooldown_counter = 0
        self.decisions = 0

    def _better(self, a: float) -> bool:
        c, best = self.config, self.best
        if c.mode == "min":
            if c.threshold_mode == "rel":
                return a < best * (1.0 - c.threshold)
            return a < best - c.threshold
        if c.threshold_mode == "rel":
            return a > best * (1.0 + c.threshold)
        return a > best + c.threshold

    def observe(self, metric: Any, step: int) -> bool:
        """Take one metric at ``step`` (the scheduler's count of ``step()`` calls); ``True``
        when the rate should be reduced now."""
        c = self.config
        if isinstance(metric, (bool, str, bytes, complex)):
            raise bad("metric", metric, "a real number or a one-element tensor")
        try:
            if isinstance(metric, np.ndarray) and metric.size == 1:
                metric = metric.reshape(()).item()  # float() refuses shape (1,) in NumPy 2
                if isinstance(metric, (bool, complex)):
                    raise TypeError
            value = float(metric)
        except (TypeError, ValueError, RuntimeError, OverflowError):
            raise bad("metric", _short(metric), "a real number or a one-element tensor") from None
        if not math.isfinite(value):
            if c.nonfinite == "ignore":
                return False
            raise bad("metric", metric, "a finite number (Plateau(nonfinite='ignore') skips it)")
        if step % c.every:
            raise bad("metric", metric, f"no metric at step {step}: the plateau decides every "
                      f"{c.every} steps only (Plateau.every)")
        if self._better(value):
            self.best = value
            self.num_bad = 0
        else:
            self.num_bad += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad = 0
        if self.num_bad > c.patience:
            self.cooldown_counter = c.cooldown
            self.num_bad = 0
            self.decisions += 1
            return True
        return False

    def state(self) -> dict[str, Any]:
        return {"best": float(self.best), "num_bad": self.num_bad,
                "cooldown_counter": self.cooldown_counter, "decisions": self.decisions}

    def load(self, state: Any) -> None:
        """Restore :meth:`state`; raises :class:`StateError` on a malformed entry."""
        if not isinstance(state, dict):
            raise StateError(f"plateau={state!r} is invalid: expected a dict")
        try:
            raw = state["best"]
            if isinstance(raw, bool) or not isinstance(raw, numbers.Real):
                raise bad("plateau.best", raw, "a number or +-inf")
            best = float(raw)
            num_bad = check_int("plateau.num_bad", state["num_bad"], low=0)
            cooldown = check_int("plateau.cooldown_counter", state["cooldown_counter"], low=0)
            decisions = check_int("plateau.decisions", state["decisions"], low=0)
        except (KeyError, TypeError, OverflowError, ConfigError) as exc:
            raise StateError(f"plateau state is invalid: {exc}") from None
        if math.isnan(best):
            raise StateError("plateau.best=nan is invalid: expected a number or +-inf")
        self.best, self.num_bad = best, num_bad
        self.cooldown_counter, self.decisions = cooldown, decisions


def _short(value: Any) -> Any:
    """A value for an error message: arrays and tensors by shape, long reprs cut."""
    shape = getattr(value, "shape", None)
    if shape is not None and not isinstance(value, (int, float)):
        return f"{type(value).__name__}(shape={tuple(shape)})"
    text = repr(value)
    return value if len(text) <= 80 else text[:77] + "..."
