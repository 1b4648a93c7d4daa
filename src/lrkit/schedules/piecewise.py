"""Piecewise schedules through given points: linear or constant between them."""

from __future__ import annotations

import dataclasses
import functools

from lrkit._validate import bad, check_choice, check_number, check_sorted
from lrkit.schedules._ops import Array, Ops
from lrkit.schedules.base import Schedule, Value, check_value
from lrkit.schedules.combine import Join
from lrkit.schedules.polynomial import Constant, Linear

__all__ = ["INTERPOLATIONS", "Piecewise"]

INTERPOLATIONS = ("linear", "constant")


@dataclasses.dataclass(frozen=True)
class Piecewise(Schedule):
    r"""Through the points :math:`(s_i, v_i)`: linear or constant in between, held outside.

    .. math::
        \eta_t = \begin{cases}
            v_0 & t < s_0 \\
            v_i + (v_{i+1} - v_i) \dfrac{t - s_i}{s_{i+1} - s_i}
                & s_i \le t < s_{i+1} \text{ (linear)} \\
            v_i & s_i \le t < s_{i+1} \text{ (constant)} \\
            v_n & t \ge s_n
        \end{cases}

    Steps are non-decreasing. A step listed twice is a jump: the value *at* the step is the
    one listed last (the schedule is right-continuous), the earlier one is approached from
    the left (linear) or held up to the jump (constant). Built as a :class:`~lrkit.Join` of
    :class:`~lrkit.Linear` / :class:`~lrkit.Constant` pieces.

    Args:
        steps: the points' steps :math:`s_0 \le \dots \le s_n` (>= 0, at least one).
        values: the values :math:`v_i` at those steps (floats or ``Rel``), as many as steps.
        interpolation: ``"linear"`` or ``"constant"`` (hold :math:`v_i` until :math:`s_{i+1}`).

    Raises:
        ConfigError: no points, unsorted or negative steps, a length mismatch, a bad value.

    Example:
        >>> s = Piecewise(steps=(0, 10, 10, 20), values=(0.0, 1.0, 0.5, 0.0))
        >>> s(5), s(9.5), s(10), s(15), s(30)
        (0.5, 0.95, 0.5, 0.25, 0.0)
        >>> Piecewise((10, 20), (1.0, 0.1), interpolation="constant")(19)
        1.0

    Equivalent: ``numpy.interp(t, steps, values)`` (linear; NumPy takes the *first* of two
    equal steps at the jump itself); optax ``piecewise_interpolate_schedule``
    (``interpolate_type="linear"``) and ``piecewise_constant_schedule``; Keras
    ``PiecewiseConstantDecay``; torch ``LambdaLR`` with a table.
    """

    kind = "piecewise"
    steps: tuple[float, ...] = (0.0,)
    values: tuple[Value, ...] = (0.0,)
    interpolation: str = "linear"

    def __post_init__(self) -> None:
        if not isinstance(self.steps, (list, tuple)) or not self.steps:
            raise bad("steps", self.steps, "a non-empty sequence of steps")
        steps = tuple(check_number(f"steps[{i}]", s, low=0.0) for i, s in enumerate(self.steps))
        check_sorted("steps", steps, strict=False)
        if not isinstance(self.values, (list, tuple)) or len(self.values) != len(steps):
            raise bad("values", self.values, f"a sequence of {len(steps)} values, one per step")
        values = tuple(check_value(f"values[{i}]", v) for i, v in enumerate(self.values))
        check_choice("interpolation", self.interpolation, INTERPOLATIONS)
        object.__setattr__(self, "steps", steps)
        object.__setattr__(self, "values", values)

    @functools.cached_property
    def _joined(self) -> Schedule:
        """The pieces (built from bound values): hold v_0, then one piece per interval."""
        pieces: list[Schedule] = [Constant(self.values[0])]
        for i in range(len(self.steps) - 1):
            length = self.steps[i + 1] - self.steps[i]
            a, b = self.values[i], self.values[i + 1]
            if self.interpolation == "linear" and length > 0:
                pieces.append(Linear(length, start=a, end=b))
            else:  # constant, or an empty interval at a jump (never evaluated)
                pieces.append(Constant(a))
        pieces.append(Constant(self.values[-1]))
        return Join(tuple(pieces), self.steps)

    def _eval(self, t: Array, ops: Ops) -> Array:
        return self._joined._eval(t, ops)

    @property
    def horizon(self) -> float | None:
        return self.steps[-1]
