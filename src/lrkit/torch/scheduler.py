"""``lrkit.torch.LRScheduler``: drive an optimizer's parameter groups from closed-form schedules."""

from __future__ import annotations

import copy
from typing import Any

import torch

from lrkit._validate import bad, check_choice, check_int
from lrkit.errors import ConfigError, StateError
from lrkit.schedules.base import Schedule
from lrkit.schedules.plateau import Plateau, PlateauTracker
from lrkit.torch._args import ScheduleArg, Spec, check_no_lr_scale, has_plateau
from lrkit.torch._fields import FIELDS, canonical_field, slot_for
from lrkit.torch._plan import Entry, GroupPlan, Layout
from lrkit.torch.device import DeviceStepper
from lrkit.torch.distributed import REDUCTIONS, check_same_rates, is_distributed, reduce_metric
from lrkit.torch.state import (
    FORMAT,
    VERSION,
    check_header,
    config_diff,
    fingerprint,
    read_counts,
    read_step,
)

__all__ = ["LRScheduler"]

NEW_GROUPS = ("schedule", "raise")
ON_MISMATCH = ("raise", "keep_new")
SKIPPED = ("count", "skip")


class LRScheduler(torch.optim.lr_scheduler.LRScheduler):
    r"""A torch learning-rate scheduler whose rates are closed-form functions of the step.

    After :math:`k` calls of :meth:`step` every scheduled field of group :math:`g` holds
    :math:`f_g(k)` (the value the next ``optimizer.step()`` uses), where :math:`f_g` is the
    group's schedule bound to its base (``Rel`` values are relative to the group's initial
    value of that field: ``initial_lr``, or the current value, recorded as torch does).
    The group's current value is never read to compute the next one: the step is the state.

    Args:
        optimizer: any ``torch.optim.Optimizer``.
        schedule: the learning rate: one :class:`~lrkit.Schedule` for all groups, a
            sequence with one ``Schedule`` or ``None`` (not scheduled) per group, a mapping
            group index -> ``Schedule``, or ``None``. Wrap it in :class:`Plateau` for
            metric-driven reductions (then ``step(metric)`` feeds it).
        momentum: the same forms, for ``group["momentum"]`` or, on groups with ``betas``
            (Adam-style), ``betas[0]``. ``beta1`` is another name for it (give one).
        beta2: ``betas[1]``.
        weight_decay: ``group["weight_decay"]``.
        tensor: also turn float values of scheduled fields into 0-dim tensors (default
            dtype, the parameters' device), updated in place each step, so
            ``torch.compile`` of ``optimizer.step`` never recompiles. Values that already
            are tensors are always updated in place, so an optimizer built with tensor
            hyperparameters is in tensor mode without this flag. The optimizer must accept
            tensor values (torch's rule: ``capturable=True`` or ``foreach=False``).
        device: device-side stepping: a ``float64`` step counter on the tensors' device and
            the schedules evaluated by torch operations into the group tensors with
            ``copy_`` (implies ``tensor``): no host sync, so ``step()`` can be captured in a
            CUDA graph and every replay advances the schedule. Values are checked on the
            host at construction and :meth:`set_step` only; no :class:`Plateau`.
        new_groups: groups added to the optimizer later: ``"schedule"`` (default) gives them
            the fields given as one Schedule for all groups (a field given per group raises
            ConfigError), ``"raise"`` raises ConfigError at the next step.
        on_mismatch: :meth:`load_state_dict` of a state saved with other schedules, bases or
            groups: ``"raise"`` (default, :class:`~lrkit.errors.StateError`) or
            ``"keep_new"`` (keep this configuration, take the step and plateau state).
        skipped: a :meth:`step` after which no ``optimizer.step()`` ran since the last one
            (AMP's ``GradScaler`` skips the update when gradients hold inf/NaN):
            ``"count"`` (default) advances anyway (the schedule counts calls), ``"skip"``
            does not advance (the schedule counts real updates: detected with an optimizer
            step post-hook; a metric given then is still taken). No warning either way.
            ``Plateau(every=k)`` expects a metric every ``k`` :meth:`step` calls in both
            policies, so a skipped update does not shift the metric cadence.
        reduce: with a :class:`Plateau` under an initialized ``torch.distributed`` group,
            how the ranks' metrics are combined before each decision: ``"mean"``
            (default), ``"max"``, ``"min"`` (collective: every rank must pass a metric on the
            same steps; all ranks then hold the same rates) or ``"none"`` (each rank decides
            on its own metric). See :mod:`lrkit.torch.distributed`.
        check_ranks: under ``torch.distributed``, verify after every :meth:`step` that all
            ranks hold identical rates (one collective per step; raises
            :class:`~lrkit.errors.StateError` on every rank if not).

    Every call either completes or raises and changes nothing (neither the scheduler nor
    the optimizer): the constructor, :meth:`step`, :meth:`set_step` and
    :meth:`load_state_dict` check every value they would write first (``check_ranks``
    verifies the ranks after a completed step).

    Raises:
        ConfigError: a bad argument (named, with its value and what is allowed), a field a
            group does not hold, or a computed value that is NaN, infinite, negative (or a
            beta ``>= 1``).

    Example:
        >>> import torch
        >>> from lrkit import Linear, Rel, Warmup
        >>> model = torch.nn.Linear(2, 1)
        >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
        >>> sched = LRScheduler(opt, Warmup(Linear(8, end=Rel(0.1)), steps=2))
        >>> lrs = []
        >>> for _ in range(4):
        ...     lrs.append(opt.param_groups[0]["lr"])  # the rate this update uses
        ...     opt.step()
        ...     sched.step()
        >>> [round(v, 6) for v in lrs], sched.last_epoch, round(sched.get_last_lr()[0], 6)
        ([0.0, 0.05, 0.1, 0.08875], 4, 0.08875)

    Equivalent: torch ``LambdaLR(opt, lambda k: f(k) / base)`` for one relative schedule;
    HF ``get_*_schedule_with_warmup``; with :class:`Plateau`, ``ReduceLROnPlateau``.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        schedule: ScheduleArg,
        *,
        momentum: ScheduleArg = None,
        beta1: ScheduleArg = None,
        beta2: ScheduleArg = None,
        weight_decay: ScheduleArg = None,
        tensor: bool = False,
        device: bool = False,
        new_groups: str = "schedule",
        on_mismatch: str = "raise",
        skipped: str = "count",
        reduce: str = "mean",
        check_ranks: bool = False,
    ) -> None:
        # everything is checked before the optimizer is changed (bases recorded, tensors
        # made, step-0 values written, the step hook registered)
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise bad("optimizer", optimizer, "a torch.optim.Optimizer")
        for name, flag in (("tensor", tensor), ("device", device), ("check_ranks", check_ranks)):
            if not isinstance(flag, bool):
                raise bad(name, flag, "True or False")
        self.new_groups = check_choice("new_groups", new_groups, NEW_GROUPS)
        self.on_mismatch = check_choice("on_mismatch", on_mismatch, ON_MISMATCH)
        self.skipped = check_choice("skipped", skipped, SKIPPED)
        self.reduce = check_choice("reduce", reduce, REDUCTIONS)
        self.check_ranks = check_ranks
        if momentum is not None and beta1 is not None:
            raise bad("beta1", beta1, "None when momentum= is given (they name one field)")
        self.optimizer = optimizer
        self._tensor = tensor or device
        groups = optimizer.param_groups
        n = len(groups)
        args = {"lr": schedule, "momentum": beta1 if momentum is None else momentum,
                "beta2": beta2, "weight_decay": weight_decay}
        names = {"lr": "schedule", "momentum": "momentum" if beta1 is None else "beta1"}
        specs = {f: Spec(names.get(f, f), args[f], n) for f in FIELDS}
        self._specs = {f: s for f, s in specs.items() if s.active}
        if not self._specs:
            raise bad("schedule", schedule, "a Schedule for at least one group and field")
        self._prints: dict[int, Any] = {}
        self._plateau: Plateau | None = None
        plans = tuple(self._plan_group(i, g, late=False) for i, g in enumerate(groups))
        self._tracker: PlateauTracker | None = (
            None if self._plateau is None else PlateauTracker(self._plateau)
        )
        if device and self._tracker is not None:
            raise bad("device", device, "False with a Plateau schedule (its metric is a host "
                      "value); use tensor=True")
        layout = Layout(plans, tuple(self._specs))
        cols = _columns(layout, 0)
        if device:
            layout.check_one_device(groups)
        self._plans: tuple[GroupPlan, ...] = ()
        self._layout = layout
        self._ks: tuple[int, ...] = ()
        self._prev_ks: tuple[int, ...] = ()
        self._step = 0
        self._calls = 0  # step() calls (with set_step's step): the plateau's metric cadence
        self._updates = 0  # optimizer.step() calls that ran (counted when skipped="skip")
        self._updates_seen = 0
        self.base_lrs: list[float | torch.Tensor] = []
        self._device: DeviceStepper | None = None
        self._install(plans, layout, groups)
        if device:
            self._device = DeviceStepper(layout.device_units(groups), step=0)
        else:
            self._write(cols, self._ks)
        self._hook: Any = None
        if skipped == "skip":
            self._hook = optimizer.register_step_post_hook(self._count_update)
        from lrkit.inspect.advice import warn_advice  # pure Python: what a schedule means here

        warn_advice(optimizer)  # schedule-free, Prodigy, Rprop ...: a ScheduleAdviceWarning

    def _count_update(self, *_: Any) -> None:
        self._updates += 1

    # -- groups ------------------------------------------------------------------------------
    def _plan_group(self, index: int, group: dict[str, Any], *, late: bool) -> GroupPlan:
        """The plan of one group (reads the group only)."""
        fields: dict[str, Entry] = {}
        for field, spec in self._specs.items():
            sched = spec.for_group(index, late=late)
            if sched is None:
                continue
            if field == "lr" and spec.per is None:
                check_no_lr_scale(index, group)
            slot = slot_for(field, group, index)
            base = slot.initial(group, f"param_groups[{index}]")
            self._check_plateau(field, index, sched)
            self._prints.setdefault(id(sched), (sched, fingerprint(sched)))
            fields[field] = Entry.make(sched, base, slot)
        return GroupPlan(fields)

    def _check_plateau(self, field: str, index: int, sched: Schedule) -> None:
        where = f"{self._specs[field].name}[{index}]"
        if not isinstance(sched, Plateau):
            if has_plateau(sched):
                raise bad(where, sched, "a Schedule with Plateau only as the outermost wrapper")
            return
        if field != "lr":
            raise bad(where, sched, "a time-based Schedule (Plateau reduces the rate only)")
        if self._plateau is None:
            self._plateau = sched
        elif sched.decision_config() != self._plateau.decision_config():
            raise bad(where, sched, "Plateau settings equal to the other groups' (one metric "
                      "drives one plateau; only schedule and min_lr may differ)")

    def _follow(self) -> tuple[tuple[GroupPlan, ...], Layout]:
        """The plans and layout for the optimizer's groups now (groups added with
        ``add_param_group``; new group dicts after ``optimizer.load_state_dict``). Reads only."""
        groups = self.optimizer.param_groups
        n = len(self._plans)
        if len(groups) < n:
            raise StateError(f"optimizer.param_groups has {len(groups)} groups: expected at "
                             f"least the {n} this scheduler was built for")
        if len(groups) > n and self.new_groups == "raise":
            raise ConfigError(f"param_groups[{n}] was added after the scheduler was built "
                              "(LRScheduler(new_groups='schedule') schedules such groups)")
        if len(groups) == n:
            return self._plans, self._layout
        plans = self._plans + tuple(self._plan_group(i, groups[i], late=True)
                                    for i in range(n, len(groups)))
        return plans, Layout(plans, tuple(self._specs), reuse=self._layout)

    def _install(self, plans: tuple[GroupPlan, ...], layout: Layout,
                 groups: list[dict[str, Any]]) -> None:
        """Adopt ``plans`` for ``groups`` (checked): record bases, make tensors, writers."""
        self._plain_w, self._reduce_w = layout.commit(groups, self._tensor)
        extra = len(plans) - len(self._plans)
        for i in range(len(self._plans), len(plans)):
            e = plans[i].get("lr")
            self.base_lrs.append(e.base if e is not None else _as_float(groups[i]["lr"]))
        self._plans, self._layout = plans, layout
        self._ks = self._ks + (0,) * extra
        self._prev_ks = self._prev_ks + (0,) * extra
        self._groups_ref = groups
        self._n = len(groups)
        if self._device is not None:
            self._device.units = [(s, list(ts)) for s, ts in layout.device_units(groups)]

    # -- values ------------------------------------------------------------------------------
    def _write(self, cols: dict[int, list[float]], ks: tuple[int, ...]) -> None:
        """Write checked columns (``_columns``) into the groups."""
        for batch, writer in self._plain_w:
            writer.write(cols[id(batch)])
        for batch, writer in self._reduce_w:
            writer.write_reduced(cols[id(batch)], ks)

    def values_at(self, step: int, field: str = "lr") -> list[float | None]:
        """Each group's value of ``field`` after ``step`` scheduler steps (``None`` where the
        group's field is not scheduled); plateau reductions as of now.

        Example:
            >>> import torch
            >>> from lrkit import Constant, Linear
            >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1, momentum=0.9)
            >>> s = LRScheduler(opt, Linear(10), momentum=Constant(0.8))
            >>> s.values_at(5), s.values_at(5, "momentum")
            ([0.05], [0.8])
        """
        step = check_int("step", step, low=0)
        name = canonical_field(field)
        if name not in FIELDS:
            raise bad("field", field, "one of " + ", ".join((*FIELDS, "beta1")))
        if name not in self._specs:
            return [None] * len(self._plans)
        return self._layout.values(step, name, self._ks)

    def _lrs(self, step: int, ks: tuple[int, ...]) -> list[float]:
        vals = self._layout.values(step, "lr", ks) if "lr" in self._specs \
            else [None] * len(self._plans)
        groups = self.optimizer.param_groups
        return [v if v is not None else _as_float(groups[i]["lr"]) for i, v in enumerate(vals)]

    def lr_at(self, step: int) -> list[float]:
        """Each group's rate after ``step`` scheduler steps (random access; unscheduled groups
        report their current rate).

        Example:
            >>> import torch
            >>> from lrkit import Linear
            >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
            >>> LRScheduler(opt, Linear(10)).lr_at(5)
            [0.05]
        """
        return self._lrs(check_int("step", step, low=0), self._ks)

    def get_lr(self) -> list[float | torch.Tensor]:
        """The rates the next ``optimizer.step()`` uses (floats, never the group tensors)."""
        return list(self._lrs(self.last_epoch, self._ks))

    def get_last_lr(self) -> list[float | torch.Tensor]:
        """The rates the last ``optimizer.step()`` used: after :math:`k \\ge 1` scheduler steps
        the values of step :math:`k - 1` (with the plateau reductions of then), before any
        step those of step 0 (floats, copies)."""
        return list(self._lrs(max(self.last_epoch - 1, 0), self._prev_ks))

    # -- time --------------------------------------------------------------------------------
    def step(self, metric: Any = None) -> None:  # type: ignore[override]
        """Advance one step (call after ``optimizer.step()``); with a :class:`Plateau`,
        ``metric`` (a number or one-element tensor) decides on reductions. Without a
        Plateau a metric is not consulted. A call that raises changes nothing."""
        groups = self.optimizer.param_groups
        fresh = groups is not self._groups_ref or len(groups) != self._n
        tracker = self._tracker
        if not fresh and tracker is None and self._hook is None and self._device is None:
            # the common case: one more step, every column checked, then written
            t = self._step + 1
            cols = [b.column(t) for b, _ in self._plain_w]
            self._step = self._calls = t
            for (_, w), col in zip(self._plain_w, cols, strict=True):
                w.write(col)
            if self.check_ranks:
                self.assert_ranks_agree()
            return
        plans, layout = self._follow() if fresh else (self._plans, self._layout)
        updates = self._updates
        advance = self._hook is None or updates != self._updates_seen
        if tracker is not None and metric is not None and self.reduce != "none" \
                and is_distributed():
            metric = reduce_metric(metric, self.reduce)
        if self._device is not None:  # (no plateau in device mode)
            if fresh:
                self._install(plans, layout, groups)
            self._updates_seen = updates
            if advance:
                self._device.advance()
            elif fresh:
                self._device.write()
        else:
            t = self._step + advance
            extra = (0,) * (len(plans) - len(self._ks))
            ks = self._ks + extra
            prev = ks if advance else self._prev_ks + extra
            if tracker is not None and metric is not None:
                tracker = copy.copy(tracker)  # the decision is kept only if the step completes
                if tracker.observe(metric, self._calls + 1):
                    ks = self._reductions(layout, t, ks)
            if not fresh:
                plain = [b.column(t) for b, _ in self._plain_w] if advance else []
                reduced = [b.column(t) for b, _ in self._reduce_w]
                self._updates_seen = updates
                self._step, self._calls = t, self._calls + 1
                self._tracker, self._ks, self._prev_ks = tracker, ks, prev
                for (_, w), col in zip(self._plain_w, plain, strict=False):
                    w.write(col)
                for (_, w), col in zip(self._reduce_w, reduced, strict=True):
                    w.write_reduced(col, ks)
            else:
                checked = _columns(layout, t)
                self._install(plans, layout, groups)
                self._updates_seen = updates
                self._step, self._calls = t, self._calls + 1
                self._tracker, self._ks, self._prev_ks = tracker, ks, prev
                self._write(checked, ks)
        if self.check_ranks:
            self.assert_ranks_agree()

    def assert_ranks_agree(self) -> None:
        """Raise :class:`~lrkit.errors.StateError` on every rank unless all ranks of the
        ``torch.distributed`` group hold the same step and rates (a collective call; a
        no-op without a process group)."""
        vals: list[float] = [float(self.last_epoch)]
        for field in self._specs:
            vals += [-1.0 if v is None else v
                     for v in self._layout.values(self.last_epoch, field, self._ks)]
        check_same_rates(vals, "the step and scheduled values")

    def _reductions(self, layout: Layout, step: int, ks: tuple[int, ...]) -> tuple[int, ...]:
        """The reduction counts after a plateau decision to reduce at ``step``."""
        assert self._plateau is not None
        eps = self._plateau.eps
        values = layout.values(step, "lr", (0,) * len(ks))
        out = list(ks)
        for i, (plan, v) in enumerate(zip(layout.plans, values, strict=True)):
            e = plan.get("lr")
            if e is not None and v is not None and isinstance(e.bound, Plateau) \
                    and e.bound.reduced(v, out[i]) - e.bound.reduced(v, out[i] + 1) > eps:
                out[i] += 1
        return tuple(out)

    @property
    def last_epoch(self) -> int:  # type: ignore[override]
        """The number of :meth:`step` calls (torch's meaning); setting it calls
        :meth:`set_step`. In device mode reading it syncs with the device."""
        return self._device.read_step() if self._device is not None else self._step

    @last_epoch.setter
    def last_epoch(self, value: int) -> None:
        self.set_step(value)

    def set_step(self, step: int) -> None:
        """Jump to ``step`` (resume): write its values; plateau state is kept, and the
        plateau's metric cadence (``Plateau.every``) counts :meth:`step` calls from
        ``step``. A call that raises changes nothing."""
        step = check_int("step", step, low=0)
        groups = self.optimizer.param_groups
        fresh = groups is not self._groups_ref or len(groups) != self._n
        plans, layout = self._follow() if fresh else (self._plans, self._layout)
        cols = _columns(layout, step)
        if fresh:
            self._install(plans, layout, groups)
        self._prev_ks = self._ks
        self._step = self._calls = step
        if self._device is not None:
            self._device.set_step(step)
        else:
            self._write(cols, self._ks)

    # -- state -------------------------------------------------------------------------------
    def _config(self, plans: tuple[GroupPlan, ...]) -> dict[str, Any]:
        fields = {}
        for f in self._specs:
            entries = [p.get(f) for p in plans]
            fields[f] = {
                "schedules": [None if e is None else self._prints[id(e.schedule)][1]
                              for e in entries],
                "bases": [None if e is None else e.base for e in entries],
            }
        return {"groups": len(plans), "fields": fields}

    def state_dict(self) -> dict[str, Any]:
        """The state as plain data (see :mod:`lrkit.torch.state`): format, step, step calls,
        configuration fingerprint, bases and plateau state."""
        plateau = None
        if self._tracker is not None:
            plateau = {**self._tracker.state(), "reductions": list(self._ks),
                       "last_reductions": list(self._prev_ks)}
        step = self.last_epoch
        return {"format": FORMAT, "version": VERSION, "step": step,
                "calls": step if self._device is not None else self._calls,
                **self._config(self._plans), "plateau": plateau}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` (before or after the optimizer's; order is free).
        States of every earlier format version load (see :mod:`lrkit.torch.state`).

        Raises:
            StateError: not a state of this format, a malformed entry, a step whose values
                are invalid, or (with ``on_mismatch="raise"``) other schedules, bases or
                groups than this one's. Nothing is changed then.
        """
        state, version = check_header(state_dict)
        step = read_step(state)
        calls = read_step(state, "calls") if version >= 2 else step
        groups = self.optimizer.param_groups
        fresh = groups is not self._groups_ref or len(groups) != self._n
        plans, layout = self._follow() if fresh else (self._plans, self._layout)
        saved = {"groups": state.get("groups"), "fields": state.get("fields")}
        diff = config_diff(saved, self._config(plans))
        if diff and self.on_mismatch == "raise":
            raise StateError(f"the saved state does not fit this scheduler: {diff} (pass "
                             "LRScheduler(on_mismatch='keep_new') to keep the new configuration)")
        n = len(plans)
        ks = prev = (0,) * n
        saved_plateau = state.get("plateau")
        tracker = None if self._plateau is None else PlateauTracker(self._plateau)
        if tracker is not None and saved_plateau is not None:
            tracker.load(saved_plateau)
            reducible = [isinstance(getattr(p.get("lr"), "bound", None), Plateau) for p in plans]
            ks = read_counts(saved_plateau, "reductions", reducible, strict=not diff)
            prev = ks if version < 2 else \
                read_counts(saved_plateau, "last_reductions", reducible, strict=not diff)
        try:
            cols = _columns(layout, step)
            _columns(layout, max(step - 1, 0))  # get_last_lr's
        except ConfigError as exc:
            raise StateError(f"state_dict['step']={step} is invalid here: {exc}") from None
        if fresh:
            self._install(plans, layout, groups)
        self._tracker, self._ks, self._prev_ks = tracker, ks, prev
        self._step, self._calls = step, calls
        if self._device is not None:
            self._device.set_step(step)
        else:
            self._write(cols, ks)


def _columns(layout: Layout, step: int) -> dict[int, list[float]]:
    """Every batch's column at ``step`` by ``id(batch)``, all checked (ConfigError)."""
    return {id(b): b.column(step) for b in layout.batches.values()}


def _as_float(value: Any) -> float:
    if isinstance(value, torch.Tensor):
        return float(value.detach().cpu().reshape(-1)[0])
    return float(value)

