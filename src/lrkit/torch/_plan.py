"""What the scheduler does to each parameter group: one small record per group.

A :class:`GroupPlan` says, for each scheduled field of one group, which schedule drives it,
the group's base value of that field (``initial_lr`` ...) and where the value lives
(:class:`~lrkit.torch._fields.Slot`). The schedule is evaluated once per step for all groups
that share it *and* its base (its bound form, ``schedule.bind(base)``, is the unit of
evaluation); groups with other bases or schedules are further rows of the same
:class:`~lrkit.torch._host.Batch`, evaluated together. :class:`Layout` is that arrangement for
a list of plans: the batches, and for every field and group its (batch, row).

Building plans and layouts only reads the optimizer's groups; :meth:`Layout.commit` is the
one place that changes them (records ``initial_*`` values, makes tensors in tensor mode) and
returns the writers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from lrkit._validate import bad
from lrkit.schedules.base import Schedule
from lrkit.schedules.plateau import Plateau
from lrkit.torch._fields import Slot
from lrkit.torch._host import Batch, Writer

__all__ = ["Entry", "GroupPlan", "Layout"]


@dataclasses.dataclass(frozen=True)
class Entry:
    """One scheduled field of one group: ``schedule`` bound to the group's ``base``."""

    schedule: Schedule
    base: float
    slot: Slot
    bound: Schedule

    @classmethod
    def make(cls, schedule: Schedule, base: float, slot: Slot) -> Entry:
        return cls(schedule, base, slot, schedule.bind(base))


@dataclasses.dataclass(frozen=True)
class GroupPlan:
    """The scheduled fields of one parameter group (canonical field name -> entry)."""

    fields: Mapping[str, Entry]

    def get(self, field: str) -> Entry | None:
        return self.fields.get(field)


BatchKey = tuple[str, float, bool]


class Layout:
    """The batches of a list of plans and where each group's values are.

    ``reuse``: batches of an earlier layout, kept (with their cached blocks) where the rows
    are the same.
    """

    def __init__(self, plans: Sequence[GroupPlan], fields: Sequence[str],
                 reuse: Layout | None = None) -> None:
        self.plans = tuple(plans)
        self.fields = tuple(fields)
        rows: dict[BatchKey, dict[Schedule, int]] = {}
        #: field -> per group (batch key, row) or None
        where: dict[str, list[tuple[BatchKey, int] | None]] = {f: [] for f in fields}
        for plan in self.plans:
            for field in fields:
                e = plan.get(field)
                if e is None:
                    where[field].append(None)
                    continue
                key = (field, e.slot.high, isinstance(e.bound, Plateau))
                index = rows.setdefault(key, {})
                r = index.setdefault(e.bound, len(index))
                where[field].append((key, r))
        old = {} if reuse is None else reuse.batches
        self.batches: dict[BatchKey, Batch] = {}
        for key, index in rows.items():
            prev = old.get(key)
            same = prev is not None and prev.rows == tuple(index)
            self.batches[key] = prev if same and prev is not None else \
                Batch(key[0], key[1], list(index))
        self.where = {f: [None if w is None else (self.batches[w[0]], w[1]) for w in ws]
                      for f, ws in where.items()}

    def plain(self) -> list[Batch]:
        return [b for k, b in self.batches.items() if not k[2]]

    def reducible(self) -> list[Batch]:
        return [b for k, b in self.batches.items() if k[2]]

    def columns(self, step: int, batches: Sequence[Batch]) -> list[list[float]]:
        """Each batch's column at ``step`` (all checked before any is used)."""
        return [b.column(step) for b in batches]

    def values(self, step: int, field: str, ks: Sequence[int]) -> list[float | None]:
        """Each group's value of ``field`` at ``step`` with plateau reductions ``ks``."""
        out: list[float | None] = []
        cols: dict[int, list[float]] = {}
        for i, w in enumerate(self.where.get(field, [None] * len(self.plans))):
            if w is None:
                out.append(None)
                continue
            batch, r = w
            col = cols.get(id(batch))
            if col is None:
                col = cols[id(batch)] = batch.column(step)
            v = col[r]
            k = ks[i] if i < len(ks) else 0
            if k:
                plateau = batch.rows[r]
                assert isinstance(plateau, Plateau)
                v = plateau.reduced(v, k)
            out.append(v)
        return out

    def commit(self, groups: Sequence[dict[str, Any]], tensor: bool
               ) -> tuple[list[tuple[Batch, Writer]], list[tuple[Batch, Writer]]]:
        """Record each group's bases (``initial_*``), make tensors (tensor mode) and return
        the writers of the plain and of the plateau-reduced batches."""
        targets: dict[int, tuple[Slot, list[tuple[int, dict[str, Any], int]]]] = {}
        for field, ws in self.where.items():
            for i, w in enumerate(ws):
                if w is None:
                    continue
                e = self.plans[i].fields[field]
                e.slot.record(groups[i], e.base)
                if tensor:
                    e.slot.make_tensor(groups[i])
                batch, r = w
                targets.setdefault(id(batch), (e.slot, []))[1].append((i, groups[i], r))
        plain: list[tuple[Batch, Writer]] = []
        reducible: list[tuple[Batch, Writer]] = []
        for key, batch in self.batches.items():
            slot, ts = targets[id(batch)]
            (reducible if key[2] else plain).append((batch, Writer(batch, slot, ts)))
        return plain, reducible

    def check_one_device(self, groups: Sequence[dict[str, Any]]) -> None:
        """ConfigError unless every scheduled value is (or will be made) a tensor on one
        device (device mode)."""
        devices = set()
        for field, ws in self.where.items():
            for i, w in enumerate(ws):
                if w is not None:
                    t = self.plans[i].fields[field].slot.tensor(groups[i])
                    params = groups[i].get("params") or []
                    devices.add(str(t.device if t is not None else
                                    params[0].device if params else "cpu"))
        if len(devices) > 1:
            raise bad("device", sorted(devices),
                      "every scheduled tensor on one device for device=True")

    def device_units(self, groups: Sequence[dict[str, Any]]
                     ) -> list[tuple[Schedule, list[torch.Tensor]]]:
        """(bound schedule, the group tensors it writes) for device stepping."""
        out: dict[Schedule, list[torch.Tensor]] = {}
        for field, ws in self.where.items():
            for i, w in enumerate(ws):
                if w is None:
                    continue
                e = self.plans[i].fields[field]
                t = e.slot.tensor(groups[i])
                if t is None:  # pragma: no cover - tensor mode made them
                    raise TypeError(f"{field}: a float value where device mode needs a tensor")
                out.setdefault(e.bound, []).append(t)
        return list(out.items())
