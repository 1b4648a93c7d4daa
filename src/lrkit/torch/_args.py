"""The scheduler's arguments: one field's schedules for all groups or per group."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from lrkit._validate import bad
from lrkit.errors import ConfigError
from lrkit.schedules.base import Schedule
from lrkit.schedules.plateau import Plateau

__all__ = ["ScheduleArg", "Spec", "check_no_lr_scale", "has_plateau"]

ScheduleArg = Schedule | Sequence[Schedule | None] | Mapping[int, Schedule | None] | None


def has_plateau(x: Any) -> bool:
    if isinstance(x, Plateau):
        return True
    if isinstance(x, Schedule):
        return any(has_plateau(getattr(x, f.name)) for f in dataclasses.fields(x))
    if isinstance(x, tuple):
        return any(has_plateau(v) for v in x)
    return False


class Spec:
    """One field's schedules: the same for all groups (``every``) or per group index."""

    def __init__(self, name: str, arg: ScheduleArg, n: int) -> None:
        self.name = name
        self.every: Schedule | None = None
        self.per: dict[int, Schedule] | None = None
        if arg is None or isinstance(arg, Schedule):
            self.every = arg
            return
        per: dict[int, Schedule] = {}
        if isinstance(arg, Mapping):
            for i, s in arg.items():
                if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < n:
                    raise bad(f"{name} key", i, f"a group index in 0..{n - 1}")
                if s is not None:
                    per[i] = self._check(f"{name}[{i}]", s)
        elif isinstance(arg, (list, tuple)):
            if len(arg) != n:
                raise bad(name, f"a sequence of {len(arg)} schedules",
                          f"one entry (a Schedule or None) for each of the {n} parameter groups")
            per = {i: self._check(f"{name}[{i}]", s) for i, s in enumerate(arg) if s is not None}
        else:
            raise bad(name, arg, "a Schedule, a sequence with one Schedule or None per group, "
                      "a mapping group index -> Schedule, or None")
        self.per = per

    @staticmethod
    def _check(name: str, s: Any) -> Schedule:
        if not isinstance(s, Schedule):
            raise bad(name, s, "a Schedule or None")
        return s

    def for_group(self, index: int, *, late: bool) -> Schedule | None:
        if self.per is None:
            return self.every
        if late:
            raise ConfigError(
                f"param_groups[{index}] was added after the scheduler was built and {self.name}= "
                "was given per group: give one Schedule for all groups, or build the scheduler "
                "after adding the group"
            )
        return self.per.get(index)

    @property
    def active(self) -> bool:
        return self.every is not None or bool(self.per)


def check_no_lr_scale(index: int, group: dict[str, Any]) -> None:
    """Refuse timm's per-group ``lr_scale`` under one shared schedule instead of ignoring it.

    timm's schedulers multiply every rate they write by the group's ``lr_scale`` (layer-wise
    decay); one schedule for all groups would silently drop that factor.
    """
    scale = group.get("lr_scale", 1.0)
    if scale != 1.0:
        raise bad(f"param_groups[{index}]['lr_scale']", scale,
                  "absent or 1 when one schedule drives every group (LRScheduler does not apply "
                  "timm's lr_scale by itself): pass one schedule per group, e.g. "
                  "lrkit.convert.from_timm(..., optimizer=optimizer), which applies it")

