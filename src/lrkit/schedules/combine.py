"""Combinators: join at boundaries, scale, multiply, interpolate, staircase, clamp, repeat,
hold, shift."""

from __future__ import annotations

import dataclasses
import math

from lrkit._validate import bad, check_int, check_number, check_sorted
from lrkit.schedules._ops import Array, Ops
from lrkit.schedules.base import Schedule

__all__ = ["Clamp", "Hold", "Join", "Lerp", "Product", "Repeat", "Scale", "Shift", "Staircase",
           "join"]


def offset_horizon(start: float, length: float) -> float:
    """The first step ``h`` with ``h - start >= length`` in floating point.

    ``start + length`` can round down, so that the local step ``h - start`` of a piece that
    starts at ``start`` falls an ulp short of the piece's own horizon ``length``.
    """
    h = start + length
    while h - start < length:
        h = math.nextafter(h, math.inf)
    return h


def _check_schedule(name: str, value: object) -> Schedule:
    if not isinstance(value, Schedule):
        raise bad(name, value, "a Schedule")
    return value


def _check_schedules(name: str, values: object, *, min_len: int) -> tuple[Schedule, ...]:
    if not isinstance(values, (list, tuple)) or len(values) < min_len:
        raise bad(name, values, f"a sequence of at least {min_len} schedules")
    return tuple(_check_schedule(f"{name}[{i}]", s) for i, s in enumerate(values))


@dataclasses.dataclass(frozen=True)
class Join(Schedule):
    r"""Piece ``i`` from ``boundaries[i-1]`` on, each piece seeing its own local step.

    .. math:: \eta_t = f_i(t - b_{i}) \quad\text{for } b_{i} \le t < b_{i+1},\ b_0 = 0

    With ``local=False`` each piece sees the global step :math:`t` instead.
    Boundaries are non-decreasing and ``>= 0``; a boundary at 0 or a repeated boundary
    makes the pieces before it empty (the last piece that starts at or before :math:`t`
    wins), so every boundary is exact.

    Args:
        schedules: the pieces :math:`f_0, \dots, f_n`.
        boundaries: the :math:`n` steps :math:`b_1 \le \dots \le b_n` where pieces start.
        local: whether pieces see local steps (default, as optax ``join_schedules``).

    Example:
        >>> from lrkit.schedules.polynomial import Constant, Linear
        >>> s = Join((Constant(1.0), Linear(10, start=1.0, end=0.0)), boundaries=(5,))
        >>> s(4), s(5), s(10), s(15)
        (1.0, 1.0, 0.5, 0.0)

    Equivalent: torch ``SequentialLR`` (without its off-by-one at milestones); optax
    ``join_schedules``.
    """

    kind = "join"
    schedules: tuple[Schedule, ...]
    boundaries: tuple[float, ...]
    local: bool = True

    def __post_init__(self) -> None:
        scheds = _check_schedules("schedules", self.schedules, min_len=1)
        if not isinstance(self.boundaries, (list, tuple)):
            raise bad("boundaries", self.boundaries, "a sequence of steps")
        bnds = tuple(
            check_number(f"boundaries[{i}]", b, low=0.0) for i, b in enumerate(self.boundaries)
        )
        if len(bnds) != len(scheds) - 1:
            raise bad("boundaries", list(bnds), f"{len(scheds) - 1} steps, one per join")
        check_sorted("boundaries", bnds, strict=False)
        if not isinstance(self.local, bool):
            raise bad("local", self.local, "True or False")
        object.__setattr__(self, "schedules", scheds)
        object.__setattr__(self, "boundaries", bnds)

    def _eval(self, t: Array, ops: Ops) -> Array:
        out = self.schedules[0]._eval(t, ops)
        for b, piece in zip(self.boundaries, self.schedules[1:], strict=True):
            local_t = ops.maximum(t - b, 0.0) if self.local else t
            out = ops.where(t >= b, piece._eval(local_t, ops), out)
        return out

    @property
    def horizon(self) -> float | None:
        last = self.schedules[-1].horizon
        if last is None:
            return None
        start = self.boundaries[-1] if self.boundaries else 0.0
        return offset_horizon(start, last) if self.local else max(start, last)

    def milestones(self) -> dict[str, float]:
        out: dict[str, float] = {}
        starts = (0.0, *self.boundaries)
        for i, (b, piece) in enumerate(zip(starts, self.schedules, strict=True)):
            if i:
                out[f"join_{i}"] = b
            offset = b if self.local else 0.0
            out.update({k: v + offset for k, v in piece.milestones().items()})
        return out


def join(*pieces: tuple[Schedule, float]) -> Join:
    """Join ``(schedule, length)`` pairs end to end; the last length may be ``inf``.

    Example:
        >>> from lrkit.schedules.polynomial import Constant
        >>> join((Constant(1.0), 3), (Constant(2.0), float("inf")))(3)
        2.0
    """
    for i, piece in enumerate(pieces):
        if not (isinstance(piece, tuple) and len(piece) == 2 and isinstance(piece[0], Schedule)):
            raise bad(f"pieces[{i}]", piece, "a (Schedule, length) pair")
    bounds: list[float] = []
    total = 0.0
    for i, (_, length) in enumerate(pieces[:-1]):
        total += check_number(f"pieces[{i}] length", length, low=0.0)
        bounds.append(total)
    return Join(tuple(s for s, _ in pieces), tuple(bounds))


@dataclasses.dataclass(frozen=True)
class Scale(Schedule):
    r"""A schedule times a constant: :math:`\eta_t = c\, f(t)`, ``c >= 0``.

    Example:
        >>> from lrkit.schedules.polynomial import Constant
        >>> (Constant(0.5) * 0.5)(0)
        0.25
    """

    kind = "scale"
    schedule: Schedule
    factor: float = 1.0

    def __post_init__(self) -> None:
        _check_schedule("schedule", self.schedule)
        object.__setattr__(self, "factor", check_number("factor", self.factor, low=0.0))

    def _eval(self, t: Array, ops: Ops) -> Array:
        return self.schedule._eval(t, ops) * self.factor

    @property
    def horizon(self) -> float | None:
        return self.schedule.horizon

    def milestones(self) -> dict[str, float]:
        return self.schedule.milestones()


@dataclasses.dataclass(frozen=True)
class Product(Schedule):
    r"""The product of schedules: :math:`\eta_t = \prod_i f_i(t)`.

    Example:
        >>> from lrkit.schedules.polynomial import Constant, Linear
        >>> (Constant(2.0) * Linear(10, start=1.0, end=0.0))(5)
        1.0
    """

    kind = "product"
    schedules: tuple[Schedule, ...]

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "schedules", _check_schedules("schedules", self.schedules, min_len=1)
        )

    def _eval(self, t: Array, ops: Ops) -> Array:
        out = self.schedules[0]._eval(t, ops)
        for s in self.schedules[1:]:
            out = out * s._eval(t, ops)
        return out

    @property
    def horizon(self) -> float | None:
        hs = [s.horizon for s in self.schedules]
        return None if any(h is None for h in hs) else max(h for h in hs if h is not None)


@dataclasses.dataclass(frozen=True)
class Lerp(Schedule):
    r"""Interpolate between two schedules by a third:
    :math:`\eta_t = a(t) + \big(b(t) - a(t)\big)\, \bar w(t)`.

    .. math:: \bar w(t) = \min(\max(w(t), 0), 1)

    with :math:`a` = ``start``, :math:`b` = ``end`` and :math:`w` = ``weight`` (clipped to
    :math:`[0, 1]`, so the value stays between :math:`a(t)` and :math:`b(t)`; exactly
    :math:`b(t)` where :math:`w(t) \ge 1`). The arguments are in the order of
    ``torch.lerp(start, end, weight)``. Use it to decay one schedule towards another (a
    floor that is itself a schedule), or to cross-fade two schedules.

    Args:
        start: :math:`a`, the value where the weight is 0.
        end: :math:`b`, the value where the weight is 1.
        weight: :math:`w`.

    Raises:
        ConfigError: an argument that is not a Schedule.

    Example:
        >>> from lrkit.schedules.inverse_sqrt import InverseSqrt
        >>> from lrkit.schedules.polynomial import Constant, Linear
        >>> s = Lerp(Constant(0.1), InverseSqrt(1.0, peak=2.0), Linear(8, start=1.0, end=0.0))
        >>> s(0), s(3), s(8), s(100)
        (2.0, 0.6625, 0.1, 0.1)

    Equivalent: timm ``rsqrt`` (``WSDLRScheduler(stable_fn="rsqrt")``) with ``lr_min=m``
    decays its stable value :math:`\max(\eta / \sqrt{1 + t/\tau}, m)` towards ``m``:
    ``Lerp(Constant(m), Clamp(InverseSqrt(tau), low=m), decay)`` (what
    :func:`lrkit.convert.from_timm` gives).
    """

    kind = "lerp"
    start: Schedule
    end: Schedule
    weight: Schedule

    def __post_init__(self) -> None:
        for name in ("start", "end", "weight"):
            _check_schedule(name, getattr(self, name))

    def _eval(self, t: Array, ops: Ops) -> Array:
        a, b = self.start._eval(t, ops), self.end._eval(t, ops)
        w = ops.clip(self.weight._eval(t, ops), 0.0, 1.0)
        return ops.where(w >= 1.0, b, a + (b - a) * w)

    @property
    def horizon(self) -> float | None:
        hs = [s.horizon for s in (self.start, self.end, self.weight)]
        return None if any(h is None for h in hs) else max(h for h in hs if h is not None)

    def milestones(self) -> dict[str, float]:
        return {**self.start.milestones(), **self.end.milestones(), **self.weight.milestones()}


@dataclasses.dataclass(frozen=True)
class Staircase(Schedule):
    r"""Hold the value for ``step_size`` steps: :math:`\eta_t = f(s \lfloor t/s \rfloor)`.

    Like Segmenter's ``step_size``: the rate changes only at multiples of :math:`s`.

    Example:
        >>> from lrkit.schedules.polynomial import Linear
        >>> Staircase(Linear(10, start=1.0, end=0.0), step_size=4)(7)
        0.6
    """

    kind = "staircase"
    schedule: Schedule
    step_size: int = 1

    def __post_init__(self) -> None:
        _check_schedule("schedule", self.schedule)
        object.__setattr__(self, "step_size", check_int("step_size", self.step_size, low=1))

    def _eval(self, t: Array, ops: Ops) -> Array:
        s = float(self.step_size)
        return self.schedule._eval(ops.floor(t / s) * s, ops)

    @property
    def horizon(self) -> float | None:
        h = self.schedule.horizon
        if h is None:
            return None
        s = self.step_size
        return float(-(-h // s) * s)

    def milestones(self) -> dict[str, float]:
        return self.schedule.milestones()


@dataclasses.dataclass(frozen=True)
class Clamp(Schedule):
    r"""Bound a schedule: :math:`\eta_t = \min(\max(f(t), \ell), h)`.

    Either bound may be ``None`` (no bound); ``low <= high`` when both are given.

    Example:
        >>> from lrkit.schedules.polynomial import Linear
        >>> Clamp(Linear(10, start=1.0, end=0.0), low=0.25)(9)
        0.25
    """

    kind = "clamp"
    schedule: Schedule
    low: float | None = None
    high: float | None = None

    def __post_init__(self) -> None:
        _check_schedule("schedule", self.schedule)
        if self.low is not None:
            object.__setattr__(self, "low", check_number("low", self.low, low=0.0))
        if self.high is not None:
            object.__setattr__(self, "high", check_number("high", self.high, low=0.0))
        if self.low is not None and self.high is not None and self.low > self.high:
            raise bad("high", self.high, f"a value >= low={self.low!r}")

    def _eval(self, t: Array, ops: Ops) -> Array:
        out = self.schedule._eval(t, ops)
        if self.low is not None:
            out = ops.maximum(out, self.low)
        if self.high is not None:
            out = ops.minimum(out, self.high)
        return out

    @property
    def horizon(self) -> float | None:
        return self.schedule.horizon

    def milestones(self) -> dict[str, float]:
        return self.schedule.milestones()


@dataclasses.dataclass(frozen=True)
class Repeat(Schedule):
    r"""Repeat the first ``period`` steps of a schedule, ``times`` times, then hold.

    .. math:: \eta_t = f(t \bmod P) \text{ for } t < nP, \qquad \eta_t = f(P) \text{ after}

    ``times=None`` repeats forever. (The hold after the last cycle is :math:`f(P)`, the value
    the last cycle ends on.)

    Example:
        >>> from lrkit.schedules.polynomial import Linear
        >>> s = Repeat(Linear(4, start=1.0, end=0.0), period=4, times=2)
        >>> s(1), s(5), s(100)
        (0.75, 0.75, 0.0)
    """

    kind = "repeat"
    schedule: Schedule
    period: float = 1.0
    times: int | None = None

    def __post_init__(self) -> None:
        _check_schedule("schedule", self.schedule)
        object.__setattr__(
            self, "period", check_number("period", self.period, low=0, low_open=True)
        )
        if self.times is not None:
            object.__setattr__(self, "times", check_int("times", self.times, low=1))

    def _eval(self, t: Array, ops: Ops) -> Array:
        p = self.period
        # clipped: for a tiny period t / p overflows and the difference is -inf, not a phase
        local = ops.clip(t - ops.floor(t / p) * p, 0.0, p)
        if self.times is not None:
            local = ops.where(t >= p * self.times, p, local)
        return self.schedule._eval(local, ops)

    @property
    def horizon(self) -> float | None:
        return None if self.times is None else self.period * self.times


@dataclasses.dataclass(frozen=True)
class Hold(Schedule):
    r"""Freeze a schedule from step ``after`` on: :math:`\eta_t = f(\min(t, a))`.

    Example:
        >>> from lrkit.schedules.polynomial import Linear
        >>> Hold(Linear(10, start=1.0, end=0.0), after=5)(9)
        0.5
    """

    kind = "hold"
    schedule: Schedule
    after: float = 0.0

    def __post_init__(self) -> None:
        _check_schedule("schedule", self.schedule)
        object.__setattr__(self, "after", check_number("after", self.after, low=0.0))

    def _eval(self, t: Array, ops: Ops) -> Array:
        return self.schedule._eval(ops.minimum(t, self.after), ops)

    @property
    def horizon(self) -> float | None:
        return self.after

    def milestones(self) -> dict[str, float]:
        return {k: v for k, v in self.schedule.milestones().items() if v <= self.after}



#: The largest float: ``t + by`` is clipped to it (a huge step plus a huge shift would be inf).
_MAX = 1.7976931348623157e308


@dataclasses.dataclass(frozen=True)
class Shift(Schedule):
    r"""Start a schedule ``by`` steps into it: :math:`\eta_t = f(t + d)`, :math:`d \ge 0`.

    .. math:: \eta_t = f(t + d), \qquad h_{shift} = \max(h_f - d, 0)

    with :math:`f` = ``schedule``, :math:`d` = ``by`` and :math:`h` the horizons. Step 0
    of the result is step :math:`d` of :math:`f` (:math:`d` may be fractional):
    :math:`f`'s first :math:`d` steps are skipped, its milestones move :math:`d` earlier
    (those before :math:`d` are dropped). For the opposite, a delay, join a constant in
    front: ``Join((Constant(v), f), (d,))``.

    Args:
        schedule: :math:`f`.
        by: :math:`d` (a finite number >= 0).

    Raises:
        ConfigError: not a Schedule, or ``by`` negative or not finite.

    Example:
        >>> from lrkit.schedules.polynomial import Linear
        >>> s = Shift(Linear(10, start=1.0, end=0.0), by=2.5)
        >>> s(0), s(5), s(7.5), s(100), s.horizon
        (0.75, 0.25, 0.0, 0.0, 7.5)

    Equivalent: torch (and mmengine) ``OneCycleLR(max_lr=m, total_steps=T, pct_start=p)``
    with :math:`pT < 1` has no step in its rise and starts its fall :math:`d = 1 - pT` steps
    in: ``Shift(Cosine(T - 1 + d, peak=m, end=m / div / final_div), by=d)``, which
    :func:`lrkit.convert.from_torch` gives for it (with ``three_phase``, :math:`d = 2 - 2pT`
    and the fall starts at ``m / div``); HF ``cosine_warmup_with_min_lr`` without warmup
    starts its cosine one step in: ``Shift(Cosine(T, end=Rel(r)), by=1)``.
    """

    kind = "shift"
    schedule: Schedule
    by: float = 0.0

    def __post_init__(self) -> None:
        _check_schedule("schedule", self.schedule)
        object.__setattr__(self, "by", check_number("by", self.by, low=0.0))

    def _eval(self, t: Array, ops: Ops) -> Array:
        return self.schedule._eval(ops.minimum(t + self.by, _MAX), ops)

    def _unshift(self, m: float) -> float:
        """The first step ``u >= 0`` whose shifted clock ``u + by`` reaches ``m``."""
        u = max(m - self.by, 0.0)
        while u + self.by < m:  # m - by may round down
            u = math.nextafter(u, math.inf)
        return u

    @property
    def horizon(self) -> float | None:
        h = self.schedule.horizon
        return None if h is None else self._unshift(h)

    def milestones(self) -> dict[str, float]:
        return {k: self._unshift(v) for k, v in self.schedule.milestones().items()
                if v >= self.by}
