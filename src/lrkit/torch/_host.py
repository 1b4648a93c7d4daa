"""The host fast path: evaluate each distinct schedule once per step, write every group.

Values come from aligned blocks of :data:`BLOCK` steps evaluated with NumPy in one call
(a schedule is a pure function of the step, so the value of step ``k`` is always the same
element of the same block, whichever way ``k`` was reached: stepping, ``set_step``,
``lr_at``). Writing is sorted once by the kind of target: float values are assigned, CPU
tensors written through a NumPy view of their memory (in place, a few hundred nanoseconds),
other tensors with ``fill_``, tuple elements (float ``betas``) replaced.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from lrkit.errors import ConfigError
from lrkit.schedules._ops import NUMPY
from lrkit.schedules.base import Schedule
from lrkit.torch._fields import Slot

__all__ = ["BLOCK", "BlockCache", "HostUnit"]

BLOCK = 64


class BlockCache:
    """The values of one bound schedule, one aligned block of steps at a time."""

    __slots__ = ("block", "schedule", "values")

    def __init__(self, schedule: Schedule) -> None:
        self.schedule = schedule
        self.block = -1
        self.values: list[float] = []

    def value(self, step: int) -> float:
        block = step // BLOCK
        if block != self.block:
            start = float(block * BLOCK)
            # start + arange, not arange(start, start + BLOCK): always BLOCK entries, even
            # where float64 steps are no longer exact integers
            t = start + np.arange(BLOCK, dtype=np.float64)
            with np.errstate(all="ignore"):  # overflow to inf is clipped by the formulas
                out = np.broadcast_to(np.asarray(self.schedule._eval(t, NUMPY), np.float64),
                                      t.shape)
            self.values = out.tolist()
            self.block = block
        return self.values[step - block * BLOCK]

    def checked(self, step: int, field: str, slot: Slot) -> float:
        """:meth:`value`, raising ConfigError unless finite, ``>= 0`` and ``< slot.high``."""
        v = self.value(step)
        if not 0.0 <= v < slot.high:
            raise_bad_value(field, v, step, slot, self.schedule)
        return v


def raise_bad_value(field: str, v: Any, step: int, slot: Slot, schedule: Schedule) -> None:
    upper = " and < 1" if slot.high == 1.0 else ""
    raise ConfigError(
        f"{field}={v!r} at step {step} is invalid: expected a finite number >= 0{upper} "
        f"(computed by {schedule!r}); nothing was written to the optimizer"
    )


def _numpy_view(t: torch.Tensor) -> np.ndarray | None:
    if t.device.type != "cpu" or t.requires_grad:
        return None
    try:
        return t.numpy()
    except (TypeError, RuntimeError):  # e.g. bfloat16, conjugate views
        return None


class HostUnit:
    """One bound schedule of one field in one kind of slot, and the groups it writes."""

    def __init__(self, cache: BlockCache, field: str, slot: Slot) -> None:
        self.cache = cache
        self.field = field
        self.slot = slot
        #: (group index, group) pairs
        self.targets: list[tuple[int, dict[str, Any]]] = []
        self.floats: list[dict[str, Any]] = []
        self.arrays: list[np.ndarray] = []
        self.tensors: list[torch.Tensor] = []
        self.tuples: list[dict[str, Any]] = []

    def sort_targets(self) -> None:
        """Sort the targets by how they are written (after the groups changed)."""
        self.floats, self.arrays, self.tensors, self.tuples = [], [], [], []
        for _, g in self.targets:
            cur = self.slot.read(g)
            if isinstance(cur, torch.Tensor):
                view = _numpy_view(cur)
                if view is None:
                    self.tensors.append(cur)
                else:
                    self.arrays.append(view)
            elif self.slot.index is None:
                self.floats.append(g)
            else:
                self.tuples.append(g)

    def write(self, v: float) -> None:
        """The same value into every target."""
        key = self.slot.key
        for g in self.floats:
            g[key] = v
        for a in self.arrays:
            a[...] = v
        for t in self.tensors:
            t.fill_(v)
        for g in self.tuples:
            self.slot.write(g, v)

    def tensor_targets(self) -> list[torch.Tensor]:
        out = []
        for _, g in self.targets:
            t = self.slot.tensor(g)
            if t is None:  # pragma: no cover - tensor mode made them
                raise ConfigError(f"{self.field}: a float value where device mode needs a tensor")
            out.append(t)
        return out
