"""Cyclical learning rates (triangular, triangular2, exp_range) and the one-cycle policy."""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math

from lrkit._validate import bad, check_choice, check_number
from lrkit.errors import ConfigError
from lrkit.schedules._ops import Array, Ops
from lrkit.schedules.base import Rel, Schedule, Value, check_value, resolve
from lrkit.schedules.combine import Join
from lrkit.schedules.cosine import Cosine
from lrkit.schedules.polynomial import Linear

__all__ = ["CYCLIC_MODES", "Cyclic", "OneCycle", "OneCycleMomentum"]

CYCLIC_MODES = ("triangular", "triangular2", "exp_range")
SCALE_MODES = ("cycle", "iterations")
ANNEALS = ("cos", "linear")


@dataclasses.dataclass(frozen=True)
class Cyclic(Schedule):
    r"""Triangular cycles between ``low`` and ``high`` (Smith's cyclical learning rates).

    With :math:`u` = ``step_size_up``, :math:`d` = ``step_size_down``, :math:`C = u + d`
    and :math:`r = u / C`:

    .. math::
        c = \left\lfloor 1 + t / C \right\rfloor, \quad x = 1 + t/C - c, \quad
        h = \begin{cases} x / r & x \le r \\ (x - 1)/(r - 1) & x > r \end{cases}

    .. math:: \eta_t = \eta_{low} + (\eta_{high} - \eta_{low})\, h\, a

    where the amplitude :math:`a` is 1 (``triangular``), :math:`2^{-(c - 1)}`
    (``triangular2``: halved every cycle) or :math:`\gamma^{t}` (``exp_range``).
    :math:`a` is a function of the cycle number :math:`c` or of the step :math:`t`:
    ``scale_mode`` ``"cycle"`` or ``"iterations"``, by default ``"cycle"`` for the two
    triangular modes and ``"iterations"`` for ``exp_range``. (PyTorch ignores its
    ``scale_mode`` argument for these built-in modes and always uses these defaults.) The
    cycle starts at ``low``; with ``low > high`` it is inverted, which is how momentum is
    cycled against the rate: ``Cyclic(low=max_momentum, high=base_momentum, ...)``.

    Args:
        low: the value at the start of each cycle (torch ``base_lr``).
        high: the value at the top of the first cycle (torch ``max_lr``).
        step_size_up: :math:`u`, steps from ``low`` to ``high`` (> 0).
        step_size_down: :math:`d`, steps back (> 0; default :math:`u`).
        mode: ``"triangular"``, ``"triangular2"`` or ``"exp_range"``.
        gamma: :math:`\gamma` for ``exp_range``, in ``(0, 1]``.
        scale_mode: ``"cycle"``, ``"iterations"``, or ``None`` for the mode's default.

    Raises:
        ConfigError: a non-positive step size, an unknown mode, ``gamma`` outside
            ``(0, 1]``, a negative or non-finite value.

    Example:
        >>> s = Cyclic(low=0.1, high=1.0, step_size_up=10, mode="triangular2")
        >>> s(0), s(10), s(20), s(30), s(40)
        (0.1, 1.0, 0.1, 0.55, 0.1)

    Equivalent: ``torch.optim.lr_scheduler.CyclicLR(opt, base_lr=low, max_lr=high,
    step_size_up=u, step_size_down=d, mode=..., gamma=g)``, whose momentum cycle
    (``cycle_momentum=True``) is ``Cyclic(low=max_momentum, high=base_momentum, ...)``.

    Reference: Smith, *Cyclical Learning Rates for Training Neural Networks*, WACV 2017.
    """

    kind = "cyclic"
    low: Value
    high: Value
    step_size_up: float = 2000.0
    step_size_down: float | None = None
    mode: str = "triangular"
    gamma: float = 1.0
    scale_mode: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "low", check_value("low", self.low))
        object.__setattr__(self, "high", check_value("high", self.high))
        object.__setattr__(
            self,
            "step_size_up",
            check_number("step_size_up", self.step_size_up, low=0, low_open=True),
        )
        if self.step_size_down is not None:
            object.__setattr__(
                self,
                "step_size_down",
                check_number("step_size_down", self.step_size_down, low=0, low_open=True),
            )
        up = self.step_size_up
        down = up if self.step_size_down is None else self.step_size_down
        if not (math.isfinite(up + down) and 0.0 < up / (up + down) < 1.0):
            raise bad("step_size_up", up, f"step sizes whose sum is finite and whose ratio "
                      f"is a normal float (step_size_down={down!r})")
        check_choice("mode", self.mode, CYCLIC_MODES)
        object.__setattr__(
            self, "gamma", check_number("gamma", self.gamma, low=0.0, high=1.0, low_open=True)
        )
        if self.scale_mode is not None:
            check_choice("scale_mode", self.scale_mode, SCALE_MODES)

    @property
    def _scale_mode(self) -> str:
        if self.scale_mode is not None:
            return self.scale_mode
        return "iterations" if self.mode == "exp_range" else "cycle"

    def _eval(self, t: Array, ops: Ops) -> Array:
        up = self.step_size_up
        down = up if self.step_size_down is None else self.step_size_down
        total = up + down
        ratio = up / total
        # t / total overflows for a tiny total: past 2**60 cycles every x is 0 anyway
        u = ops.minimum(t / total, 2.0**60)
        cycle = ops.floor(1.0 + u)
        x = 1.0 + u - cycle
        # both branches finite: 0 < ratio < 1
        scale = ops.where(x <= ratio, x / ratio, (x - 1.0) / (ratio - 1.0))
        low, high = resolve(self.low), resolve(self.high)
        height = (high - low) * scale
        if self.mode == "triangular":
            return low + height * 1.0
        arg = cycle if self._scale_mode == "cycle" else t
        amp = ops.pow(0.5, arg - 1.0) if self.mode == "triangular2" else ops.pow(self.gamma, arg)
        return low + height * amp

    def milestones(self) -> dict[str, float]:
        return {"first_peak": self.step_size_up}


def _phase_ends(total_steps: float, pct_start: float, three_phase: bool) -> tuple[float, ...]:
    """The last step of each phase, with PyTorch ``OneCycleLR``'s arithmetic."""
    if three_phase:
        return (
            float(pct_start * total_steps) - 1,
            float(2 * pct_start * total_steps) - 2,
            total_steps - 1.0,
        )
    return (float(pct_start * total_steps) - 1, total_steps - 1.0)


def _check_phases(total_steps: float, pct_start: float, three_phase: bool) -> None:
    ends = _phase_ends(total_steps, pct_start, three_phase)
    if ends[0] <= 0:
        raise bad(
            "pct_start",
            pct_start,
            f"pct_start * total_steps > 1 (the rise ends at step pct_start * {total_steps:g} - 1)",
        )
    for a, b in itertools.pairwise(ends):
        if b <= a:
            raise bad("pct_start", pct_start, "phases of positive length (a smaller pct_start)")


def _one_cycle(
    ends: tuple[float, ...], anneal: str, first: float, top: float, last: float
) -> Schedule:
    """``first -> top -> last`` (two phases) or ``first -> top -> first -> last`` (three),
    each phase annealed by ``anneal``, joined at the phase ends.

    Each piece sees ``step - phase start`` and has length ``phase end - phase start``: the
    very operations torch performs, so the phase fractions agree with torch bit for bit.
    """

    def piece(length: float, a: float, b: float) -> Schedule:
        return Cosine(length, peak=a, end=b) if anneal == "cos" else Linear(length, a, b)

    values = (first, top, first, last) if len(ends) == 3 else (first, top, last)
    starts = (0.0, *ends[:-1])
    pieces = tuple(
        piece(e - s, a, b) for s, e, a, b in zip(starts, ends, values[:-1], values[1:], strict=True)
    )
    return Join(pieces, ends[:-1])


@dataclasses.dataclass(frozen=True)
class OneCycle(Schedule):
    r"""The one-cycle policy: rise to ``peak``, then anneal far below the start.

    With :math:`T` = ``total_steps``, :math:`p` = ``pct_start``,
    :math:`\eta_0 = \eta_{peak} / \text{div\_factor}` and
    :math:`\eta_{min} = \eta_0 / \text{final\_div\_factor}`, the phases end at steps
    :math:`e_1 = pT - 1` and :math:`e_2 = T - 1` (two phases: :math:`\eta_0 \to
    \eta_{peak} \to \eta_{min}`) or :math:`e_1 = pT - 1`, :math:`e_2 = 2pT - 2`,
    :math:`e_3 = T - 1` (three phases: :math:`\eta_0 \to \eta_{peak} \to \eta_0 \to
    \eta_{min}`), exactly as PyTorch's ``OneCycleLR`` computes them. Within a phase from
    :math:`a` at step :math:`s` to :math:`b` at step :math:`e`, with :math:`q = (t-s)/(e-s)`:

    .. math::
        \eta_t = b + (a - b)\frac{1 + \cos \pi q}{2} \;\text{(cos)}, \qquad
        \eta_t = a + (b - a)\, q \;\text{(linear)}

    The final value :math:`\eta_{min}` is reached at step :math:`T - 1` (the last of
    :math:`T` updates) and held after it (torch extrapolates at step :math:`T` and raises
    after). Built as a :class:`~lrkit.Join` of :class:`~lrkit.Cosine` or
    :class:`~lrkit.Linear` pieces, one per phase (the rise is a cosine from
    :math:`\eta_0` up to :math:`\eta_{peak}`).

    Args:
        total_steps: :math:`T` (> 0).
        peak: the top value (torch ``max_lr``; default: the group's base rate).
        pct_start: :math:`p`, the fraction of :math:`T` spent rising (``pT > 1``).
        div_factor: :math:`\eta_{peak} / \eta_0` (> 0; default 25).
        final_div_factor: :math:`\eta_0 / \eta_{min}` (> 0; default 1e4).
        anneal: ``"cos"`` or ``"linear"``.
        three_phase: use the three-phase variant.

    Raises:
        ConfigError: bad numbers, or a ``pct_start`` that leaves a phase empty.

    Example:
        >>> s = OneCycle(total_steps=101, peak=1.0, pct_start=0.5, div_factor=10,
        ...              final_div_factor=100)
        >>> s(0), round(s(24.75), 6), s(49.5), s(100), s(500)
        (0.1, 0.55, 1.0, 0.001, 0.001)

    Equivalent: ``torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=peak, total_steps=T,
    pct_start=p, anneal_strategy=..., div_factor=..., final_div_factor=...,
    three_phase=...)`` (its momentum cycle is :meth:`momentum`); fastai ``fit_one_cycle``.

    Reference: Smith & Topin, *Super-Convergence*, 2017.
    """

    kind = "onecycle"
    total_steps: float = 1.0
    peak: Value = Rel(1.0)
    pct_start: float = 0.3
    div_factor: float = 25.0
    final_div_factor: float = 1e4
    anneal: str = "cos"
    three_phase: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "total_steps", check_number("total_steps", self.total_steps, low=0, low_open=True)
        )
        object.__setattr__(self, "peak", check_value("peak", self.peak))
        object.__setattr__(
            self, "pct_start", check_number("pct_start", self.pct_start, low=0.0, high=1.0)
        )
        object.__setattr__(
            self, "div_factor", check_number("div_factor", self.div_factor, low=0, low_open=True)
        )
        object.__setattr__(
            self,
            "final_div_factor",
            check_number("final_div_factor", self.final_div_factor, low=0, low_open=True),
        )
        check_choice("anneal", self.anneal, ANNEALS)
        if not isinstance(self.three_phase, bool):
            raise bad("three_phase", self.three_phase, "True or False")
        _check_phases(self.total_steps, self.pct_start, self.three_phase)
        # the start and final values (for a relative peak: at base 1) must be finite floats
        top = self.peak.factor if isinstance(self.peak, Rel) else self.peak
        if not math.isfinite(top / self.div_factor):
            raise bad("div_factor", self.div_factor, f"a factor with peak / div_factor finite"
                      f" (peak={self.peak!r})")
        if not math.isfinite(top / self.div_factor / self.final_div_factor):
            raise bad("final_div_factor", self.final_div_factor, "a factor with peak /"
                      f" div_factor / final_div_factor finite (peak={self.peak!r})")

    @functools.cached_property
    def _composed(self) -> Schedule:
        peak = resolve(self.peak)
        first = peak / self.div_factor
        last = first / self.final_div_factor
        if not math.isfinite(last):  # a relative peak bound to a huge base
            raise ConfigError(f"value=inf is invalid: expected a finite number (the parameters"
                              f" of {self!r} overflow the float range)")
        ends = _phase_ends(self.total_steps, self.pct_start, self.three_phase)
        return _one_cycle(ends, self.anneal, first, peak, last)

    def _eval(self, t: Array, ops: Ops) -> Array:
        # exactly the final value from T - 1 on (local clocks may round a hair short)
        final = self._final
        return ops.where(t >= self.total_steps - 1.0, final, self._composed._eval(t, ops))

    @property
    def horizon(self) -> float | None:
        return self.total_steps - 1.0

    @property
    def _final(self) -> float:
        return resolve(self.peak) / self.div_factor / self.final_div_factor

    def milestones(self) -> dict[str, float]:
        ends = _phase_ends(self.total_steps, self.pct_start, self.three_phase)
        names = ("peak", "return", "end") if self.three_phase else ("peak", "end")
        return dict(zip(names, ends, strict=True))

    def momentum(self, low: float = 0.85, high: float = 0.95) -> OneCycleMomentum:
        """The matching momentum (or Adam beta1) cycle: ``high -> low -> high``.

        Example:
            >>> m = OneCycle(total_steps=101, pct_start=0.5).momentum()
            >>> m(0), m(49.5), m(100)
            (0.95, 0.85, 0.95)
        """
        return OneCycleMomentum(
            self.total_steps, self.pct_start, low, high, self.anneal, self.three_phase
        )


@dataclasses.dataclass(frozen=True)
class OneCycleMomentum(Schedule):
    r"""The momentum (or Adam :math:`\beta_1`) cycle of the one-cycle policy.

    The mirror image of :class:`OneCycle` on the same phase steps: ``high`` falls to
    ``low`` while the rate rises, then climbs back to ``high`` (two phases) or climbs back
    and stays (three phases); it holds ``high`` from step :math:`T - 1` on. The values are
    absolute momenta, not relative to a learning rate.

    Args:
        total_steps: :math:`T` (> 0), as for the rate.
        pct_start: as for the rate.
        low: the momentum at the rate's peak (torch ``base_momentum``, 0.85).
        high: the momentum at the start and end (torch ``max_momentum``, 0.95).
        anneal: ``"cos"`` or ``"linear"``.
        three_phase: use the three-phase variant.

    Raises:
        ConfigError: bad numbers, or a ``pct_start`` that leaves a phase empty.

    Example:
        >>> m = OneCycleMomentum(total_steps=101, pct_start=0.5)
        >>> m(0), round(m(24.75), 6), m(49.5), m(100)
        (0.95, 0.9, 0.85, 0.95)

    Equivalent: the momentum / ``betas[0]`` that ``torch.optim.lr_scheduler.OneCycleLR``
    writes with ``cycle_momentum=True, base_momentum=low, max_momentum=high``.
    """

    kind = "onecycle_momentum"
    total_steps: float = 1.0
    pct_start: float = 0.3
    low: float = 0.85
    high: float = 0.95
    anneal: str = "cos"
    three_phase: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "total_steps", check_number("total_steps", self.total_steps, low=0, low_open=True)
        )
        object.__setattr__(
            self, "pct_start", check_number("pct_start", self.pct_start, low=0.0, high=1.0)
        )
        object.__setattr__(self, "low", check_number("low", self.low, low=0.0))
        object.__setattr__(self, "high", check_number("high", self.high, low=0.0))
        check_choice("anneal", self.anneal, ANNEALS)
        if not isinstance(self.three_phase, bool):
            raise bad("three_phase", self.three_phase, "True or False")
        _check_phases(self.total_steps, self.pct_start, self.three_phase)

    @functools.cached_property
    def _composed(self) -> Schedule:
        ends = _phase_ends(self.total_steps, self.pct_start, self.three_phase)
        return _one_cycle(ends, self.anneal, self.high, self.low, self.high)

    @property
    def _final(self) -> float:
        return self.high

    def _eval(self, t: Array, ops: Ops) -> Array:
        # exactly the final value from T - 1 on (local clocks may round a hair short)
        final = self._final
        return ops.where(t >= self.total_steps - 1.0, final, self._composed._eval(t, ops))

    @property
    def horizon(self) -> float | None:
        return self.total_steps - 1.0
