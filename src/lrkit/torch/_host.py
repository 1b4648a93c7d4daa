"""The host fast path: evaluate distinct schedules in batches, write every group.

A :class:`Batch` holds the distinct bound schedules of one field (one row each: a group's
schedule bound to its base, shared by every group with the same schedule and base) and
evaluates them over aligned blocks of steps with NumPy, all rows at once, then hands out one
column (every row's value at one step) per step. A schedule is a pure, elementwise function
of the step, so the value of step ``k`` is the same whichever block computed it and however
``k`` was reached (stepping, ``set_step``, ``lr_at``): bit-identical to ``schedule(k)``.
Blocks grow with the number of rows (``BLOCK`` steps for one row, up to ``MAX_BLOCK``), so
the NumPy calls per step stay few whether 1 or 1000 groups differ. Values are checked once
per block (finite, ``>= 0``, below the slot's bound); a bad value raises when its step is
reached, before anything is written.

A :class:`Writer` writes a batch's column into the groups, its targets sorted once by kind:
float values are assigned, CPU tensors written through a NumPy view of their memory (in
place, a few hundred nanoseconds), other tensors with ``fill_``, tuple elements (float
``betas``) replaced.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from lrkit.errors import ConfigError
from lrkit.schedules._ops import NUMPY
from lrkit.schedules.base import Schedule
from lrkit.schedules.plateau import Plateau
from lrkit.torch._fields import Slot

__all__ = ["BLOCK", "MAX_BLOCK", "Batch", "Writer", "raise_bad_value"]

BLOCK = 64
MAX_BLOCK = 1024
#: batches of at most this many rows keep their current block as Python lists too
LIST_ROWS = 16


def block_length(rows: int) -> int:
    """Steps per block for ``rows`` schedules: ``BLOCK`` times the next power of two."""
    return min(MAX_BLOCK, BLOCK << max(rows - 1, 0).bit_length())


class Batch:
    """The distinct bound schedules of one field and slot bound, one block of steps at a time.

    Keeps the last two blocks (stepping reads the current one, ``get_last_lr`` the one
    before at a block's first step).
    """

    __slots__ = ("_blocks", "_last", "field", "high", "length", "rows")

    def __init__(self, field: str, high: float, rows: Sequence[Schedule]) -> None:
        self.field = field
        self.high = high
        self.rows = tuple(rows)
        self.length = block_length(len(self.rows))
        #: block number -> (values, shape (length, rows); bad columns or None), newest first
        self._blocks: list[tuple[int, np.ndarray, set[int] | None]] = []
        self._last: tuple[int, np.ndarray, set[int] | None, list[list[float]] | None] = (
            -1, np.empty((0, 0)), None, None)

    def _block(self, block: int) -> tuple[np.ndarray, set[int] | None]:
        for b, values, bad in self._blocks:
            if b == block:
                return values, bad
        n = self.length
        # start + arange, not arange(start, start + n): always n entries, even where float64
        # steps are no longer exact integers
        t = float(block * n) + np.arange(n, dtype=np.float64)
        values = np.empty((n, len(self.rows)), dtype=np.float64)
        with np.errstate(all="ignore"):  # overflow to inf is clipped by the formulas
            for r, sched in enumerate(self.rows):
                values[:, r] = np.asarray(sched._eval(t, NUMPY), dtype=np.float64)
            ok = (values >= 0.0) & (values < self.high)  # NaN fails both
        bad = None if ok.all() else set(np.flatnonzero(~ok.all(axis=1)).tolist())
        self._blocks = [(block, values, bad), *self._blocks[:1]]
        return values, bad

    def column(self, step: int) -> list[float]:
        """Every row's value at ``step``; ConfigError if one is invalid."""
        block, j = divmod(step, self.length)
        last = self._last
        if last[0] == block:
            _, values, bad, lists = last
        else:
            values, bad = self._block(block)
            # few rows: the block as Python lists once (a list per step is then free);
            # many: one row of floats per step (the lists would take a lot of memory)
            lists = values.tolist() if values.shape[1] <= LIST_ROWS else None
            self._last = (block, values, bad, lists)
        if bad is not None and j in bad:
            row = values[j]
            r = int(np.flatnonzero(~((row >= 0.0) & (row < self.high)))[0])
            raise_bad_value(self.field, float(row[r]), step, self.high, self.rows[r])
        if lists is not None:
            return lists[j]
        out: list[float] = values[j].tolist()
        return out


def raise_bad_value(field: str, v: Any, step: int, high: float, schedule: Schedule) -> None:
    upper = " and < 1" if high == 1.0 else ""
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


class Writer:
    """Writes one batch's column into its groups: ``targets`` are (group index, group, row);
    on plateau-reduced rows each group's value is reduced by its own count."""

    def __init__(self, batch: Batch, slot: Slot,
                 targets: Sequence[tuple[int, dict[str, Any], int]]) -> None:
        self.batch = batch
        self.slot = slot
        self.key = slot.key
        self.plateau = all(isinstance(s, Plateau) for s in batch.rows)
        #: (group index, group, row) of every group with this batch's field
        self.targets = list(targets)
        self.floats: list[tuple[dict[str, Any], int]] = []
        self.arrays: list[tuple[np.ndarray, int]] = []
        self.tensors: list[tuple[torch.Tensor, int]] = []
        self.tuples: list[tuple[dict[str, Any], int]] = []
        for _, g, r in self.targets:
            cur = slot.read(g)
            if isinstance(cur, torch.Tensor):
                view = _numpy_view(cur)
                if view is None:
                    self.tensors.append((cur, r))
                else:
                    self.arrays.append((view, r))
            elif slot.index is None:
                self.floats.append((g, r))
            else:
                self.tuples.append((g, r))
        self.single = len(batch.rows) == 1 and not self.arrays and not self.tensors \
            and not self.tuples

    def write(self, col: list[float]) -> None:
        """Write ``col`` (a column of the batch: one value per row)."""
        key = self.key
        if self.single:
            v = col[0]
            for g, _ in self.floats:
                g[key] = v
            return
        for g, r in self.floats:
            g[key] = col[r]
        for a, r in self.arrays:
            a[...] = col[r]
        for t, r in self.tensors:
            t.fill_(col[r])
        for g, r in self.tuples:
            self.slot.write(g, col[r])

    def write_reduced(self, col: list[float], ks: Sequence[int]) -> None:
        """Write ``col`` with each group's plateau reductions ``ks[group index]`` applied."""
        rows = self.batch.rows
        for i, g, r in self.targets:
            v, k = col[r], ks[i]
            if k:
                plateau = rows[r]
                assert isinstance(plateau, Plateau)
                v = plateau.reduced(v, k)
            self.slot.write(g, v)
