"""Warmup-stable-decay ("trapezoidal") schedules, the 1-sqrt and exponential cooldowns."""

from __future__ import annotations

import dataclasses
import functools

from lrkit._validate import bad, check_choice, check_number
from lrkit.schedules._ops import Array, Ops
from lrkit.schedules.base import Rel, Schedule, Value, check_decay, check_value, resolve
from lrkit.schedules.combine import Join
from lrkit.schedules.cosine import Cosine
from lrkit.schedules.polynomial import Constant, Linear
from lrkit.schedules.warmup import WARMUP_SHAPES, Warmup

__all__ = ["DECAY_SHAPES", "WSD", "ExpDecay", "SqrtDecay"]

DECAY_SHAPES = ("linear", "cosine", "1-sqrt")


@dataclasses.dataclass(frozen=True)
class SqrtDecay(Schedule):
    r"""The "1 - sqrt" cooldown from ``peak`` to ``end`` over ``total_steps``, then hold.

    .. math::
        \eta_t = \eta_{end} + (\eta_{peak} - \eta_{end})
                 \left(1 - \sqrt{\min(t, T) / T}\right)

    It drops fast at first and flattens towards ``end``.

    Args:
        total_steps: the horizon :math:`T` (> 0).
        peak: the value at step 0 (default: the group's base rate).
        end: the value at and after :math:`T` (default 0).

    Raises:
        ConfigError: ``total_steps <= 0``, a negative or non-finite value.

    Example:
        >>> s = SqrtDecay(total_steps=100, peak=1.0)
        >>> s(0), s(25), s(100), s(200)
        (1.0, 0.5, 0.0, 0.0)

    Reference: Hägele et al., *Scaling Laws and Compute-Optimal Training Beyond Fixed
    Training Durations*, 2024.
    """

    kind = "sqrt_decay"
    total_steps: float = 1.0
    peak: Value = Rel(1.0)
    end: Value = 0.0

    def __post_init__(self) -> None:
        check_decay(self)

    def _eval(self, t: Array, ops: Ops) -> Array:
        frac = ops.minimum(t, self.total_steps) / self.total_steps
        return ops.lerp(resolve(self.peak), resolve(self.end), ops.sqrt(frac))

    @property
    def horizon(self) -> float | None:
        return self.total_steps


@dataclasses.dataclass(frozen=True)
class ExpDecay(Schedule):
    r"""An exponential cooldown from ``peak`` to exactly ``end`` over ``total_steps``, then hold.

    .. math::
        \eta_t = \eta_{end} + (\eta_{peak} - \eta_{end})
                 \frac{r^{\min(t, T)/T} - r}{1 - r}

    with :math:`T` = ``total_steps`` and :math:`r` = ``ratio``: the exponential
    :math:`r^{t/T}`, which falls to :math:`r` by :math:`T`, rescaled to fall from 1 to 0, so
    the value reaches ``end`` at :math:`T`. A small :math:`r` drops fast at first.

    Args:
        total_steps: the horizon :math:`T` (> 0).
        ratio: :math:`r`, in ``(0, 1)`` (default 0.1).
        peak: the value at step 0 (default: the group's base rate).
        end: the value at and after :math:`T` (default 0).

    Raises:
        ConfigError: ``total_steps <= 0``, ``ratio`` outside ``(0, 1)``, a negative or
            non-finite value.

    Example:
        >>> s = ExpDecay(total_steps=100, ratio=0.25, peak=1.0)
        >>> s(0), s(50), s(100), s(200)
        (1.0, 0.3333333333333333, 0.0, 0.0)

    Equivalent: timm ``WSDLRScheduler(decay_fn="exp", decay_ratio=r)``'s decay (timm's
    ``create_scheduler_v2`` uses :math:`r = 0.1`).
    """

    kind = "exp_decay"
    total_steps: float = 1.0
    ratio: float = 0.1
    peak: Value = Rel(1.0)
    end: Value = 0.0

    def __post_init__(self) -> None:
        check_decay(self)
        object.__setattr__(self, "ratio", check_number("ratio", self.ratio, low=0, high=1,
                                                       low_open=True, high_open=True))

    def _eval(self, t: Array, ops: Ops) -> Array:
        r = self.ratio
        frac = ops.minimum(t, self.total_steps) / self.total_steps
        weight = ops.clip((ops.pow(r, frac) - r) / (1.0 - r), 0.0, 1.0)
        return ops.lerp(resolve(self.end), resolve(self.peak), weight)

    @property
    def horizon(self) -> float | None:
        return self.total_steps


@dataclasses.dataclass(frozen=True)
class WSD(Schedule):
    r"""Warmup, a stable plateau at ``peak``, then a decay to ``end`` by ``total_steps``.

    With :math:`T` = ``total_steps`` (*including* warmup and decay), :math:`w` =
    ``warmup_steps`` and :math:`D` = the decay length:

    .. math::
        \eta_t = \begin{cases}
            \text{warmup from } \eta_{start} \text{ to } \eta_{peak} & t < w \\
            \eta_{peak} & w \le t < T - D \\
            \eta_{end} + (\eta_{peak} - \eta_{end})\, g\!\left(\frac{t - (T - D)}{D}\right)
                & T - D \le t < T \\
            \eta_{end} & t \ge T
        \end{cases}

    where :math:`g(u)` is :math:`1 - u` (``linear``), :math:`(1 + \cos \pi u)/2`
    (``cosine``) or :math:`1 - \sqrt{u}` (``1-sqrt``). :math:`D` is ``decay_steps``, or
    ``decay_fraction`` :math:`\times T` (default 0.2 of :math:`T` if neither is given).
    Built as a prefix :class:`~lrkit.Warmup` in front of a :class:`~lrkit.Join` of
    :class:`~lrkit.Constant` and the decay (:class:`~lrkit.Linear`,
    :class:`~lrkit.Cosine` or :class:`SqrtDecay`).

    Args:
        total_steps: :math:`T`, the whole run including warmup (> 0).
        warmup_steps: :math:`w` (>= 0).
        decay_steps: :math:`D` (> 0), or ``None`` to use ``decay_fraction``.
        decay_fraction: :math:`D / T` in ``(0, 1]``, or ``None``.
        peak: the plateau value (default: the group's base rate).
        end: the value at and after :math:`T` (default 0).
        decay_shape: ``"linear"``, ``"cosine"`` or ``"1-sqrt"``.
        start: the first warmup value (default 0).
        warmup_shape: the warmup's shape (see :class:`~lrkit.Warmup`; default linear).

    Raises:
        ConfigError: bad numbers, both ``decay_steps`` and ``decay_fraction`` given, or
            ``warmup_steps + decay_steps > total_steps``.

    Example:
        >>> s = WSD(total_steps=100, warmup_steps=10, decay_steps=20, peak=1.0)
        >>> s(0), s(5), s(10), s(80), s(90), s(100)
        (0.0, 0.5, 1.0, 1.0, 0.5, 0.0)

    Equivalent: HF ``get_wsd_schedule(opt, num_warmup_steps=w, num_stable_steps=T - w - D,
    num_decay_steps=D, min_lr_ratio=end/peak, decay_type=...)`` (``"linear"``,
    ``"cosine"``, ``"1-sqrt"``); optax ``warmup_constant`` + decay via ``join_schedules``.

    Reference: Hu et al., *MiniCPM*, 2024; Hägele et al., 2024.
    """

    kind = "wsd"
    total_steps: float = 1.0
    warmup_steps: float = 0.0
    decay_steps: float | None = None
    decay_fraction: float | None = None
    peak: Value = Rel(1.0)
    end: Value = 0.0
    decay_shape: str = "linear"
    start: Value = 0.0
    warmup_shape: str = "linear"

    def __post_init__(self) -> None:
        total = check_number("total_steps", self.total_steps, low=0, low_open=True)
        object.__setattr__(self, "total_steps", total)
        warm = check_number("warmup_steps", self.warmup_steps, low=0.0)
        object.__setattr__(self, "warmup_steps", warm)
        if self.decay_steps is not None and self.decay_fraction is not None:
            raise bad("decay_fraction", self.decay_fraction, "None when decay_steps is given")
        if self.decay_steps is not None:
            object.__setattr__(
                self,
                "decay_steps",
                check_number("decay_steps", self.decay_steps, low=0, low_open=True),
            )
        if self.decay_fraction is not None:
            object.__setattr__(
                self,
                "decay_fraction",
                check_number("decay_fraction", self.decay_fraction, low=0, high=1, low_open=True),
            )
        object.__setattr__(self, "peak", check_value("peak", self.peak))
        object.__setattr__(self, "end", check_value("end", self.end))
        check_choice("decay_shape", self.decay_shape, DECAY_SHAPES)
        object.__setattr__(self, "start", check_value("start", self.start))
        check_choice("warmup_shape", self.warmup_shape, WARMUP_SHAPES)
        if not self._decay > 0.0:  # decay_fraction * total_steps underflowed to 0
            raise bad("total_steps", total, "a horizon whose decay part is > 0 steps "
                      f"(decay_fraction * total_steps = {self._decay!r})")
        if warm + self._decay > total:
            name = "decay_steps" if self.decay_steps is not None else "decay_fraction"
            value = self.decay_steps if self.decay_steps is not None else self.decay_fraction
            raise bad(name, value, f"warmup_steps + decay <= total_steps={total:g}")
        # the warmup's own checks (e.g. start > 0 for an exponential warmup)
        Warmup(Constant(self.peak), warm, self.start, self.warmup_shape)

    @property
    def _decay(self) -> float:
        """The decay length :math:`D` in steps."""
        if self.decay_steps is not None:
            return self.decay_steps
        fraction = 0.2 if self.decay_fraction is None else self.decay_fraction
        return fraction * self.total_steps

    @property
    def decay_start(self) -> float:
        """The step :math:`T - D` where the decay starts."""
        return self.total_steps - self._decay

    @functools.cached_property
    def _composed(self) -> Schedule:
        peak, end, d = resolve(self.peak), resolve(self.end), self._decay
        decay: Schedule
        if self.decay_shape == "linear":
            decay = Linear(d, start=peak, end=end)
        elif self.decay_shape == "cosine":
            decay = Cosine(d, peak=peak, end=end)
        else:
            decay = SqrtDecay(d, peak=peak, end=end)
        stable = self.decay_start - self.warmup_steps
        body = Join((Constant(peak), decay), (stable,))
        return Warmup(body, self.warmup_steps, self.start, self.warmup_shape)

    def _eval(self, t: Array, ops: Ops) -> Array:
        # exactly `end` from T on (the pieces' local clocks may round a hair short of T)
        return ops.where(t >= self.total_steps, resolve(self.end), self._composed._eval(t, ops))

    @property
    def horizon(self) -> float | None:
        return self.total_steps

    def milestones(self) -> dict[str, float]:
        return {"warmup_end": self.warmup_steps, "decay_start": self.decay_start}
