"""Export a schedule as a plain function of the step: for torch ``LambdaLR`` and for optax."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from lrkit._validate import bad, check_number
from lrkit.schedules._ops import Array, Ops
from lrkit.schedules.base import Schedule

__all__ = ["ArrayOps", "to_lambda", "to_optax"]


def _check(schedule: Any, base: Any) -> tuple[Schedule, float]:
    if not isinstance(schedule, Schedule):
        raise bad("schedule", schedule, "an lrkit Schedule")
    return schedule, check_number("base", base, low=0.0, low_open=True)


def to_lambda(schedule: Schedule, base: float = 1.0) -> Callable[[int], float]:
    r"""The multiplier function ``k -> f(k) / base`` that torch's ``LambdaLR`` expects.

    ``LambdaLR`` multiplies the function's value by each group's initial rate, so give the
    base rate the schedule's absolute values assume (a schedule with only relative values
    and zeros gives the same function for every ``base``). The function is a plain
    module-level object (a bound method of a small class), so it pickles with the schedule.

    Raises:
        ConfigError: not a Schedule, or ``base <= 0``.

    Example:
        >>> import torch
        >>> from lrkit import Cosine, Warmup
        >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.5)
        >>> f = to_lambda(Warmup(Cosine(8), 2))
        >>> [f(k) for k in range(4)]
        [0.0, 0.5, 1.0, 0.9619397662556434]
        >>> sched = torch.optim.lr_scheduler.LambdaLR(opt, f)
        >>> opt.param_groups[0]["lr"]
        0.0
    """
    s, b = _check(schedule, base)
    return _Multiplier(s.bind(b) if s.is_relative else s, b)


class _Multiplier:
    def __init__(self, schedule: Schedule, base: float) -> None:
        self.schedule = schedule
        self.base = base

    def __call__(self, step: int) -> float:
        return float(self.schedule(step)) / self.base


def to_optax(schedule: Schedule, base: float = 1.0) -> Callable[[Any], Any]:
    r"""The schedule as an optax-style function ``count -> value`` that accepts arrays.

    The function evaluates the closed form with the operations of the array module its
    argument comes from (``numpy`` for Python numbers and NumPy arrays, ``jax.numpy`` for
    JAX arrays and tracers, so it works inside ``jax.jit``; any module with the NumPy
    names through ``__array_namespace__``), in the argument's floating dtype. JAX is
    imported only when a JAX array is seen. Relative values are taken relative to
    ``base`` (the peak learning rate you would give optax).

    Raises:
        ConfigError: not a Schedule, or ``base <= 0``.

    Example:
        >>> import numpy as np
        >>> from lrkit import Linear
        >>> f = to_optax(Linear(10, end=0.0), base=0.1)
        >>> f(5), f(np.array([0, 10]))
        (0.05, array([0.1, 0. ]))
    """
    s, b = _check(schedule, base)
    bound = s.bind(b) if s.is_relative else s

    def value(count: Any) -> Any:
        if isinstance(count, (int, float, np.integer, np.floating)):
            return float(bound(float(count)))
        if isinstance(count, np.ndarray):
            return bound(count.astype(np.float64))
        xp = namespace_of(count)
        t = count if xp.issubdtype(count.dtype, xp.floating) else count.astype(xp.float32)
        return bound._eval(t, ArrayOps(xp))

    return value


def namespace_of(x: Any) -> Any:
    """The array module of ``x``: its ``__array_namespace__()``, or ``jax.numpy``."""
    if hasattr(x, "__array_namespace__"):
        ns = x.__array_namespace__()
        if hasattr(ns, "issubdtype"):
            return ns
    mod = type(x).__module__.split(".")[0]
    if mod in ("jax", "jaxlib"):
        return importlib.import_module("jax.numpy")
    raise bad("count", type(x).__name__, "a number, a NumPy array or a JAX array")


class ArrayOps(Ops):
    """:class:`~lrkit.schedules._ops.Ops` for any module with NumPy's names (``xp``)."""

    name = "array"

    def __init__(self, xp: Any) -> None:
        self.xp = xp

    def cos(self, x: Array) -> Array:
        return self.xp.cos(x)

    def exp(self, x: Array) -> Array:
        return self.xp.exp(x)

    def log(self, x: Array) -> Array:
        return self.xp.log(x)

    def sqrt(self, x: Array) -> Array:
        return self.xp.sqrt(x)

    def floor(self, x: Array) -> Array:
        return self.xp.floor(x)

    def pow(self, x: Array | float, p: Array | float) -> Array:
        return self.xp.power(x, p)

    def where(self, cond: Array, a: Array | float, b: Array | float) -> Array:
        return self.xp.where(cond, a, b)

    def minimum(self, x: Array, v: Array | float) -> Array:
        return self.xp.minimum(x, v)

    def maximum(self, x: Array, v: Array | float) -> Array:
        return self.xp.maximum(x, v)

    def full_like(self, x: Array, v: float) -> Array:
        return self.xp.full_like(x, v)

    def count_le(self, boundaries: Sequence[float], x: Array) -> Array:
        b = self.xp.asarray(list(boundaries), dtype=x.dtype)
        return self.xp.searchsorted(b, x, side="right").astype(x.dtype)

    def select(self, index: Array, values: Sequence[float]) -> Array:
        table = self.xp.asarray(list(values))
        return self.xp.take(table, index.astype(self.xp.int32))
