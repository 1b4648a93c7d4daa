"""The schedule contract: an immutable, closed-form function of the step.

Vocabulary used by every schedule (stated once here):

- ``step``: completed optimizer updates, counted from 0; ``s(0)`` is the first rate used.
  Past a schedule's horizon its value holds. Negative or non-finite steps are an error.
- ``total_steps``: the schedule's own horizon (for a warmup in *prefix* mode, the steps after
  warmup; the combinators say which).
- ``peak`` the top value, ``end`` the final value, ``start`` the first value of a ramp,
  ``warmup_steps`` / ``steps`` the length of a ramp, ``power`` an exponent, ``gamma`` a
  multiplicative decay factor.
- A value is either absolute (a float, such as Segmenter's ``min_lr`` or timm's ``lr_min``,
  the same for every parameter group) or *relative* to each group's base learning rate,
  written ``Rel(0.1)`` (``"0.1x"`` in a spec string). ``peak`` defaults to ``Rel(1.0)``:
  the group's own base rate. :meth:`Schedule.bind` turns relative values into absolute ones
  for one base; calling an unbound schedule uses ``base=1.0``, so it reads as a multiplier.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar, TypeVar, overload

import numpy as np

from lrkit._validate import bad, check_number
from lrkit.errors import ConfigError
from lrkit.schedules._ops import NUMPY, TORCH, Array, Ops

__all__ = ["Rel", "Schedule", "Value", "check_decay", "check_value", "resolve"]

S = TypeVar("S", bound="Schedule")

#: NumPy arrays are evaluated in blocks of this many steps: each block's temporaries stay in
#: cache, and the blocks of a large array are shared among threads (NumPy releases the GIL
#: inside its kernels). The formulas are elementwise, so the result is bit-identical to one
#: pass over the whole array.
NUMPY_BLOCK = 1 << 16

_pool_lock = threading.Lock()
_pool: tuple[int, int, ThreadPoolExecutor] | None = None


def _threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def _executor() -> tuple[int, ThreadPoolExecutor] | None:
    """The process's evaluation pool and its size (``None`` with one CPU); a forked child
    builds its own (the parent's threads do not exist there)."""
    global _pool
    workers = min(_threads(), 8)
    if workers < 2:
        return None
    with _pool_lock:
        if _pool is None or _pool[0] != os.getpid():
            pool = ThreadPoolExecutor(workers, thread_name_prefix="lrkit-eval")
            _pool = (os.getpid(), workers, pool)
        return _pool[1], _pool[2]


@dataclasses.dataclass(frozen=True)
class Rel:
    """A value relative to the parameter group's base learning rate: ``factor * base``."""

    factor: float

    def __post_init__(self) -> None:
        check_number("Rel.factor", self.factor, low=0.0)
        object.__setattr__(self, "factor", float(self.factor))

    def __repr__(self) -> str:
        return f"Rel({self.factor!r})"


Value = float | Rel


def check_value(name: str, value: Any) -> Value:
    """Validate a learning-rate-like value: a finite float >= 0 or a :class:`Rel`."""
    if isinstance(value, Rel):
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise bad(name, value, "a finite number >= 0 or Rel(factor)")
    return check_number(name, value, low=0.0)


def check_decay(schedule: Schedule) -> None:
    """Validate and normalise the ``total_steps`` (> 0), ``peak`` and ``end`` fields that the
    decays from ``peak`` to ``end`` (poly, cosine, 1-sqrt) share; call from ``__post_init__``."""
    set_ = object.__setattr__
    total = getattr(schedule, "total_steps")  # noqa: B009 - declared by each subclass
    set_(schedule, "total_steps", check_number("total_steps", total, low=0, low_open=True))
    set_(schedule, "peak", check_value("peak", getattr(schedule, "peak")))  # noqa: B009
    set_(schedule, "end", check_value("end", getattr(schedule, "end")))  # noqa: B009


def resolve(value: Value) -> float:
    """The float of a bound value; relative values must have been bound first."""
    if isinstance(value, Rel):  # pragma: no cover - guarded by Schedule.__call__
        raise TypeError("relative value used before Schedule.bind(base)")
    return value


def _bind_any(x: Any, base: float) -> Any:
    if isinstance(x, Rel):
        return x.factor * base
    if isinstance(x, Schedule):
        return x.bind(base)
    if isinstance(x, tuple):
        return tuple(_bind_any(v, base) for v in x)
    return x


def _has_rel(x: Any) -> bool:
    if isinstance(x, Rel):
        return True
    if isinstance(x, Schedule):
        return x.is_relative
    if isinstance(x, tuple):
        return any(_has_rel(v) for v in x)
    return False


@dataclasses.dataclass(frozen=True)
class Schedule:
    """Base class: a pure function ``value = f(step)``; subclasses are frozen dataclasses.

    A subclass implements :meth:`_eval`, the formula, once, against the :class:`Ops`
    interface; ``__call__`` runs it on a Python number (returns ``float``), a NumPy array
    (returns ``float64`` array) or a torch tensor (returns a tensor on the same device, in the
    step's floating dtype, ``float64`` for integer steps) with no host sync.

    Exactness: a Python number and a NumPy array give bit-identical values (the scalar path
    is the NumPy path on a 0-d value). torch computes ``pow``, ``exp``, ``log`` and ``cos``
    with its own vectorized kernels, which may differ from NumPy's in the last bits (a few
    ulps, more where a cycle index amplifies it); formulas made only of ``+ - * /``, ``min``
    and ``max`` agree bit for bit. Within torch, the device path equals :meth:`eval_tensor`.
    """

    #: The name used in specs (``"poly"``, ``"cosine"``...); set by each subclass.
    kind: ClassVar[str] = ""

    # -- the formula ---------------------------------------------------------------------
    def _eval(self, t: Array, ops: Ops) -> Array:
        """Evaluate at steps ``t`` (float array, all ``>= 0``); values are already bound."""
        raise NotImplementedError

    @property
    def horizon(self) -> float | None:
        """The step from which the value no longer changes, or ``None`` if it never settles."""
        return None

    def milestones(self) -> dict[str, float]:
        """Named steps worth marking on a plot (``warmup_end``, ``decay_start``...)."""
        return {}

    # -- relative values -----------------------------------------------------------------
    @functools.cached_property
    def is_relative(self) -> bool:
        """Whether any value (here or in a child schedule) is relative to the base rate."""
        return any(_has_rel(getattr(self, f.name)) for f in dataclasses.fields(self))

    def bind(self: S, base: float) -> S:
        """This schedule with every relative value multiplied by ``base``."""
        base = check_number("base", base, low=0.0)
        if not self.is_relative:
            return self
        changes = {
            f.name: _bind_any(getattr(self, f.name), base)
            for f in dataclasses.fields(self)
            if _has_rel(getattr(self, f.name))
        }
        return dataclasses.replace(self, **changes)

    # -- evaluation ----------------------------------------------------------------------
    @overload
    def __call__(self, step: int | float, *, base: float = 1.0) -> float: ...

    @overload
    def __call__(self, step: np.ndarray, *, base: float = 1.0) -> np.ndarray: ...

    @overload
    def __call__(self, step: Any, *, base: float = 1.0) -> Any: ...

    def __call__(self, step: Any, *, base: float = 1.0) -> Any:
        """The value at ``step`` (scalar, NumPy array or torch tensor) for base rate ``base``."""
        sched = self.bind(base) if self.is_relative else self
        if isinstance(step, numbers.Real) and not isinstance(step, bool):
            try:
                t = float(step)
            except OverflowError:  # an int beyond the float range
                t = math.inf
            if not (math.isfinite(t) and t >= 0):
                raise bad("step", step, "a finite number >= 0")
            with np.errstate(all="ignore"):  # overflow to inf is clipped by the formulas
                # as a 1-element array: NumPy's scalar and array kernels (e.g. power) may
                # differ in the last bit, and s(t) must equal s(array)[i] exactly
                arr = np.full(1, t, dtype=np.float64)
                value = float(np.asarray(sched._eval(arr, NUMPY), dtype=np.float64).reshape(-1)[0])
            if not math.isfinite(value):
                raise _overflow(self, step, value)
            return value
        if isinstance(step, np.ndarray):
            out = sched._eval_numpy(_float_steps(step))
            if out.size and not np.isfinite(out).all():
                where = np.asarray(step).reshape(-1)[~np.isfinite(out.reshape(-1))][0]
                raise _overflow(self, float(where), float(out.reshape(-1)[~np.isfinite(
                    out.reshape(-1))][0]))
            return out
        if type(step).__module__.startswith("torch"):
            return sched.eval_tensor(step)
        if isinstance(step, (list, tuple)):
            return sched(_float_steps(step))
        raise bad("step", step, "an int, float, NumPy array or torch tensor")

    def _eval_numpy(self, arr: np.ndarray) -> np.ndarray:
        """Evaluate a bound schedule on a float64 array, block by block."""
        if arr.size:
            # min() is NaN if any entry is; one reduction each instead of two masks.
            lo, hi = arr.min(), arr.max()
            if not (lo >= 0 and math.isfinite(hi)):
                raise bad("step", "array with negative or non-finite entries", "steps >= 0")
        if arr.size <= NUMPY_BLOCK:
            with np.errstate(all="ignore"):  # overflow to inf is clipped by the formulas
                out = np.asarray(self._eval(arr, NUMPY), dtype=np.float64)
            return out if out.shape == arr.shape else np.broadcast_to(out, arr.shape).copy()
        flat = arr.reshape(-1)
        res = np.empty_like(flat)
        starts = range(0, flat.size, NUMPY_BLOCK)

        def run(part: range) -> None:
            with np.errstate(all="ignore"):  # per thread: NumPy's error state is thread-local
                for i in part:
                    res[i : i + NUMPY_BLOCK] = self._eval(flat[i : i + NUMPY_BLOCK], NUMPY)

        found = _executor() if len(starts) >= 4 else None
        if found is None or threading.current_thread().name.startswith("lrkit-eval"):
            run(starts)
        else:
            n, pool = found  # every n-th block to each worker
            for f in [pool.submit(run, starts[j::n]) for j in range(n)]:
                f.result()
        return res.reshape(arr.shape)

    def eval_tensor(self, step: Any, *, check: bool | None = None) -> Any:
        """Evaluate on a torch tensor with torch operations only (graph- and compile-safe).

        ``check`` validates that steps are finite and ``>= 0``; it defaults to ``True`` on
        CPU and ``False`` on accelerators, where checking would force a host sync.
        The schedule must already be bound (see :meth:`bind`) if it has relative values.
        """
        import torch

        t = step if step.is_floating_point() else step.to(torch.float64)
        if check is None:
            check = t.device.type == "cpu"
        if check and t.numel() and not bool(torch.all(torch.isfinite(t) & (t >= 0))):
            raise bad("step", "tensor with negative or non-finite entries", "steps >= 0")
        sched = self.bind(1.0) if self.is_relative else self
        out = sched._eval(t, TORCH)
        if not isinstance(out, torch.Tensor) or out.shape != t.shape:
            out = torch.broadcast_to(torch.as_tensor(out, dtype=t.dtype, device=t.device), t.shape)
        return out

    # -- composition sugar ---------------------------------------------------------------
    def __mul__(self, other: Any) -> Schedule:
        from lrkit.schedules.combine import Product, Scale

        if isinstance(other, Schedule):
            return Product((self, other))
        if isinstance(other, numbers.Real) and not isinstance(other, bool):
            return Scale(self, float(other))
        return NotImplemented

    __rmul__ = __mul__


def _float_steps(step: Any) -> np.ndarray:
    """Steps as a float64 array; entries that are not real numbers in the float range
    (``10**400``, strings, ``None``) are a :class:`ConfigError`, not NumPy's error."""
    try:
        return np.asarray(step, dtype=np.float64)
    except (OverflowError, TypeError, ValueError):
        raise bad("step", step, "steps that are finite numbers >= 0") from None


def _overflow(schedule: Schedule, step: Any, value: float) -> ConfigError:
    """The error for a non-finite value (the parameters overflow the float range)."""
    return ConfigError(f"value={value!r} at step {step!r} is invalid: expected a finite "
                       f"number (the parameters of {schedule!r} overflow the float range)")
