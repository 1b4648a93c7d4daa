"""Cosine annealing, and cosine annealing with warm restarts (SGDR)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from lrkit._validate import bad, check_int, check_number
from lrkit.schedules._ops import NUMPY, Array, Ops
from lrkit.schedules.base import Rel, Schedule, Value, check_decay, check_value, resolve

__all__ = ["Cosine", "CosineRestarts"]

#: restarts listed by CosineRestarts.milestones() at most
MAX_MILESTONES = 100


@dataclasses.dataclass(frozen=True)
class Cosine(Schedule):
    r"""Half a cosine from ``peak`` down to ``end`` over ``total_steps``, then hold ``end``.

    .. math::
        \eta_t = \eta_{end} + (\eta_{peak} - \eta_{end})
                 \frac{1 + \cos\left(\pi \min(t, T) / T\right)}{2}

    with :math:`T` = ``total_steps``. The value is exactly ``peak`` at step 0 and exactly
    ``end`` from step :math:`T` on: unlike PyTorch's ``CosineAnnealingLR``, it does not climb
    back up past :math:`T`. ``end`` is the floor (``eta_min``); it may also exceed ``peak``,
    which gives a cosine-shaped rise.

    Args:
        total_steps: the horizon :math:`T` (> 0).
        peak: the value at step 0 (default: the group's base rate).
        end: the value at and after :math:`T` (default 0).

    Raises:
        ConfigError: ``total_steps <= 0``, a negative or non-finite value.

    Example:
        >>> s = Cosine(total_steps=100, peak=1.0, end=0.1)
        >>> s(0), round(s(50), 12), s(100), s(250)
        (1.0, 0.55, 0.1, 0.1)

    Equivalent: ``torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=T, eta_min=e)`` is
    ``Cosine(T, end=e)`` up to step :math:`T`; timm ``CosineLRScheduler(t_initial=T,
    lr_min=e)`` (``cycle_limit=1``); optax ``cosine_decay_schedule(peak, T, alpha=e/peak)``;
    HF ``get_cosine_schedule_with_warmup`` is ``Warmup(Cosine(T - w, end=0.0), w)``.

    Reference: Loshchilov & Hutter, *SGDR: Stochastic Gradient Descent with Warm Restarts*,
    ICLR 2017.
    """

    kind = "cosine"
    total_steps: float = 1.0
    peak: Value = Rel(1.0)
    end: Value = 0.0

    def __post_init__(self) -> None:
        check_decay(self)

    def _eval(self, t: Array, ops: Ops) -> Array:
        frac = ops.minimum(t, self.total_steps) / self.total_steps
        return ops.lerp(resolve(self.end), resolve(self.peak), ops.cos_anneal(frac))

    @property
    def horizon(self) -> float | None:
        return self.total_steps


@dataclasses.dataclass(frozen=True)
class CosineRestarts(Schedule):
    r"""Cosine cycles that restart at the peak: SGDR, with growing cycles and decaying peaks.

    Cycle :math:`k = 0, 1, \dots` lasts :math:`L_k = P m^k` steps and starts at

    .. math::
        S_k = \sum_{j<k} L_j = \begin{cases} P k & m = 1 \\
              P \dfrac{m^k - 1}{m - 1} & m > 1 \end{cases}

    and inside it (:math:`S_k \le t < S_{k+1}`)

    .. math::
        \eta_t = \eta_{end} + (\eta_{peak} d^k - \eta_{end})
                 \frac{1 + \cos\left(\pi (t - S_k) / L_k\right)}{2}

    with :math:`P` = ``period``, :math:`m` = ``period_mult``, :math:`d` = ``peak_decay``.
    After ``max_cycles`` cycles (if given) the value holds at ``end``. The cycle index is
    found in closed form, :math:`k = \lfloor \log_m(1 + t (m - 1)/P) \rfloor`, then corrected
    by comparing ``t`` with :math:`S_k` and :math:`S_{k+1}` computed by the same formula, so
    rounding in the logarithm never puts a step in the wrong cycle: every restart happens
    exactly at :math:`S_k` (for integer ``period`` and ``period_mult``, exactly at the
    integer step).

    Args:
        period: the first cycle's length :math:`P` (> 0).
        period_mult: the growth factor :math:`m` of cycle lengths (>= 1, may be fractional).
        peak: the first cycle's peak (default: the group's base rate).
        end: the floor every cycle anneals towards, held after the last cycle (default 0).
        peak_decay: :math:`d`, cycle :math:`k` peaks at ``peak * d**k`` (in ``[0, 1]``).
        max_cycles: the number of cycles (>= 1), or ``None`` for endless restarts.

    Raises:
        ConfigError: a non-positive ``period``, ``period_mult < 1``, ``peak_decay``
            outside ``[0, 1]``, ``max_cycles < 1``, a negative or non-finite value.

    Example:
        >>> s = CosineRestarts(period=10, period_mult=2, peak=1.0, max_cycles=2)
        >>> s(0), s(5), s(10), s(20), s(30), s(99)
        (1.0, 0.5, 1.0, 0.5, 0.0, 0.0)

    Equivalent: ``torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=P,
    T_mult=m, eta_min=e)`` is ``CosineRestarts(P, m, end=e)`` (torch allows integer
    :math:`m` only); timm ``CosineLRScheduler(t_initial=P, cycle_mul=m, cycle_decay=d,
    cycle_limit=n, lr_min=e)`` is ``CosineRestarts(P, m, end=e, peak_decay=d,
    max_cycles=n)`` (timm's ``_get_lr`` anneals only while the cycle index is below
    ``cycle_limit``, so its ``cycle_limit=0`` is ``lr_min`` throughout); optax
    ``sgdr_schedule``.
    """

    kind = "restarts"
    period: float = 1.0
    period_mult: float = 1.0
    peak: Value = Rel(1.0)
    end: Value = 0.0
    peak_decay: float = 1.0
    max_cycles: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "period", check_number("period", self.period, low=0, low_open=True)
        )
        object.__setattr__(
            self, "period_mult", check_number("period_mult", self.period_mult, low=1.0)
        )
        object.__setattr__(self, "peak", check_value("peak", self.peak))
        object.__setattr__(self, "end", check_value("end", self.end))
        object.__setattr__(
            self, "peak_decay", check_number("peak_decay", self.peak_decay, low=0.0, high=1.0)
        )
        if self.max_cycles is not None:
            object.__setattr__(self, "max_cycles", check_int("max_cycles", self.max_cycles, low=1))
            if not math.isfinite(self.cycle_start(self.max_cycles)):
                raise bad("max_cycles", self.max_cycles, "a count whose last cycle ends at a "
                          "finite step (period * period_mult**max_cycles overflows)")

    def cycle_start(self, k: int) -> float:
        """:math:`S_k`, the step at which cycle ``k`` starts (a host float; ``inf`` where
        ``period_mult**k`` overflows).

        Computed by the same NumPy operations as the evaluation (NumPy's ``power`` may differ
        from Python's ``**`` in the last bit), so the value at ``cycle_start(k)`` is the peak.
        """
        with np.errstate(over="ignore"):  # as a 1-element array, like every evaluation
            return float(np.asarray(self._start(np.full(1, float(k)), NUMPY)).reshape(-1)[0])

    def _start(self, k: Array, ops: Ops) -> Array:
        m, p = self.period_mult, self.period
        return k * p if m == 1.0 else p * (ops.pow(m, k) - 1.0) / (m - 1.0)

    def _eval(self, t: Array, ops: Ops) -> Array:
        m, p = self.period_mult, self.period
        if m == 1.0:
            k = ops.floor(t / p)
        else:
            # (m - 1) / p overflows for a tiny period: cap it (k is corrected below)
            k = ops.floor(ops.log(1.0 + t * min((m - 1.0) / p, 1e300)) / math.log(m))
            # cycles past p * m**k > 1e300 start beyond any step: cap k so m**k stays finite
            cap = (math.log(1e300) - max(math.log(p), 0.0)) / math.log(m)
            k = ops.minimum(k, max(0.0, math.floor(cap)))
        k = ops.maximum(k, 0.0)
        if self.max_cycles is not None:  # keep k (and m**k) finite far past the last cycle
            k = ops.minimum(k, float(self.max_cycles))
        # exact correction: S_k <= t < S_{k+1} with S computed by one formula
        k = ops.where(t < self._start(k, ops), ops.maximum(k - 1.0, 0.0), k)
        k = ops.where(t >= self._start(k + 1.0, ops), k + 1.0, k)
        start = self._start(k, ops)
        length = p * ops.pow(m, k) if m != 1.0 else p
        frac = ops.clip((t - start) / length, 0.0, 1.0)
        end, peak = resolve(self.end), resolve(self.peak)
        top = peak * ops.pow(self.peak_decay, k) if self.peak_decay != 1.0 else peak
        out = end + (top - end) * ops.cos_anneal(frac)
        out = ops.where(frac <= 0.0, top, out)  # exact peak at every restart
        out = ops.clip(out, min(end, peak), max(end, peak))
        if self.max_cycles is not None:
            out = ops.where(t >= self.cycle_start(self.max_cycles), end, out)
        return out

    @property
    def horizon(self) -> float | None:
        return None if self.max_cycles is None else self.cycle_start(self.max_cycles)

    def milestones(self) -> dict[str, float]:
        n = self.max_cycles if self.max_cycles is not None else 5
        shown = min(n, MAX_MILESTONES + 1)  # a plot marks at most the first 100 restarts
        return {f"restart_{k}": self.cycle_start(k) for k in range(1, shown)} | (
            {} if self.max_cycles is None else {"end": self.cycle_start(n)}
        )
