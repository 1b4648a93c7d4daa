"""``lrkit.torch.LRScheduler``: drive an optimizer's parameter groups from closed-form schedules."""

from __future__ import annotations

from typing import Any

import torch

from lrkit._validate import bad, check_choice, check_int
from lrkit.errors import ConfigError, StateError
from lrkit.schedules.base import Schedule
from lrkit.schedules.plateau import Plateau, PlateauTracker
from lrkit.torch._args import ScheduleArg, Spec, has_plateau
from lrkit.torch._fields import FIELDS, Slot, canonical_field, slot_for
from lrkit.torch._host import BlockCache, HostUnit
from lrkit.torch.device import DeviceStepper
from lrkit.torch.distributed import REDUCTIONS, check_same_rates, is_distributed, reduce_metric
from lrkit.torch.state import FORMAT, VERSION, check_header, config_diff, fingerprint, read_step

__all__ = ["LRScheduler"]

NEW_GROUPS = ("schedule", "raise")
ON_MISMATCH = ("raise", "keep_new")
SKIPPED = ("count", "skip")

# a unit: one bound schedule of one field in one kind of slot, and the groups it writes


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
            step post-hook; a metric given then is still taken, without the ``every``
            check). No warning either way.
        reduce: with a :class:`Plateau` under an initialized ``torch.distributed`` group,
            how the ranks' metrics are combined before each decision: ``"mean"``
            (default), ``"max"``, ``"min"`` (collective: every rank must pass a metric on the
            same steps; all ranks then hold the same rates) or ``"none"`` (each rank decides
            on its own metric). See :mod:`lrkit.torch.distributed`.
        check_ranks: under ``torch.distributed``, verify after every :meth:`step` that all
            ranks hold identical rates (one collective per step; raises
            :class:`~lrkit.errors.StateError` on every rank if not).

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
        self._updates = 0  # optimizer.step() calls that ran (counted when skipped="skip")
        self._updates_seen = 0
        self._hook: Any = None
        if skipped == "skip":
            self._hook = optimizer.register_step_post_hook(self._count_update)
        if momentum is not None and beta1 is not None:
            raise bad("beta1", beta1, "None when momentum= is given (they name one field)")
        self.optimizer = optimizer
        self._tensor = tensor or device
        groups = optimizer.param_groups
        n = len(groups)
        args = {"lr": schedule, "momentum": beta1 if momentum is None else momentum,
                "beta2": beta2, "weight_decay": weight_decay}
        names = {"lr": "schedule", "momentum": "momentum" if beta1 is None else "beta1"}
        self._specs = {f: Spec(names.get(f, f), args[f], n) for f in FIELDS}
        self._specs = {f: s for f, s in self._specs.items() if s.active}
        if not self._specs:
            raise bad("schedule", schedule, "a Schedule for at least one group and field")
        self._plan: dict[str, list[Schedule | None]] = {f: [] for f in self._specs}
        self._bound: dict[str, list[Schedule | None]] = {f: [] for f in self._specs}
        self._bases: dict[str, list[float | None]] = {f: [] for f in self._specs}
        self._slots: dict[str, list[Slot | None]] = {f: [] for f in self._specs}
        self._prints: dict[int, Any] = {}
        self._caches: dict[Schedule, BlockCache] = {}
        self._plateau: Plateau | None = None
        self._ks: list[int] = []
        self.base_lrs: list[float | torch.Tensor] = []
        for i, group in enumerate(groups):
            self._add_group(i, group, late=False)
        self._tracker: PlateauTracker | None = (
            None if self._plateau is None else PlateauTracker(self._plateau)
        )
        if device and self._tracker is not None:
            raise bad("device", device, "False with a Plateau schedule (its metric is a host "
                      "value); use tensor=True")
        self._prev_ks = self._ks
        self._step = 0
        self._device: DeviceStepper | None = None
        self._rebuild()
        if device:
            self._check_values(0)
            self._device = DeviceStepper(self._device_units(), step=0)
        else:
            self._write(0)

    def _count_update(self, *_: Any) -> None:
        self._updates += 1

    # -- groups ------------------------------------------------------------------------------
    def _add_group(self, index: int, group: dict[str, Any], *, late: bool) -> None:
        for field, spec in self._specs.items():
            sched = spec.for_group(index, late=late)
            slot = None if sched is None else slot_for(field, group, index)
            base = None if slot is None else slot.initial(group, f"param_groups[{index}]")
            if sched is not None:
                self._check_plateau(field, index, sched)
                self._prints.setdefault(id(sched), (sched, fingerprint(sched)))
            self._plan[field].append(sched)
            self._slots[field].append(slot)
            self._bases[field].append(base)
            self._bound[field].append(None if sched is None or base is None else sched.bind(base))
        self._ks.append(0)
        lr_base = self._bases["lr"][index] if "lr" in self._bases else None
        self.base_lrs.append(lr_base if lr_base is not None else _as_float(group["lr"]))

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

    def _sync(self) -> None:
        """Follow the optimizer's groups: new group dicts (after ``load_state_dict``) and
        groups added with ``add_param_group``."""
        groups = self.optimizer.param_groups
        n = len(self._ks)
        if len(groups) < n:
            raise StateError(f"optimizer.param_groups has {len(groups)} groups: expected at "
                             f"least the {n} this scheduler was built for")
        if len(groups) > n and self.new_groups == "raise":
            raise ConfigError(f"param_groups[{n}] was added after the scheduler was built "
                              "(LRScheduler(new_groups='schedule') schedules such groups)")
        for i in range(n, len(groups)):
            self._add_group(i, groups[i], late=True)
        if self._tracker is not None and len(self._prev_ks) != len(self._ks):
            self._prev_ks = self._prev_ks + [0] * (len(self._ks) - len(self._prev_ks))
        self._rebuild()
        if self._device is not None:
            self._device.units = [(s, list(ts)) for s, ts in self._device_units()]
            self._device.write()
        elif len(groups) > n:
            self._write(self._step)

    def _rebuild(self) -> None:
        groups = self.optimizer.param_groups
        self._groups_ref = groups
        self._n = len(groups)
        units: dict[tuple[str, Slot, Schedule], HostUnit] = {}
        for field in self._specs:
            for i, (bound, slot) in enumerate(zip(self._bound[field], self._slots[field],
                                                  strict=True)):
                if bound is None or slot is None:
                    continue
                if self._tensor:
                    slot.make_tensor(groups[i])
                unit = units.get((field, slot, bound))
                if unit is None:
                    unit = units[(field, slot, bound)] = HostUnit(self._cache(bound), field, slot)
                unit.targets.append((i, groups[i]))
        for unit in units.values():
            unit.sort_targets()
        self._units = list(units.values())
        self._plain = [u for u in self._units if not isinstance(u.cache.schedule, Plateau)]
        self._reducible = [u for u in self._units if isinstance(u.cache.schedule, Plateau)]

    def _cache(self, bound: Schedule) -> BlockCache:
        cache = self._caches.get(bound)
        if cache is None:
            cache = self._caches[bound] = BlockCache(bound)
        return cache

    def _device_units(self) -> list[tuple[Schedule, list[torch.Tensor]]]:
        out: dict[Schedule, list[torch.Tensor]] = {}
        for unit in self._units:
            out.setdefault(unit.cache.schedule, []).extend(unit.tensor_targets())
        return list(out.items())

    # -- values ------------------------------------------------------------------------------
    def _write(self, step: int) -> None:
        """Write every scheduled value of ``step``; check them all before writing any."""
        values = [u.cache.checked(step, u.field, u.slot) for u in self._plain]
        for unit, v in zip(self._plain, values, strict=True):
            unit.write(v)
        if self._reducible:
            ks = self._ks
            for unit in self._reducible:
                v = unit.cache.checked(step, unit.field, unit.slot)
                plateau = unit.cache.schedule
                assert isinstance(plateau, Plateau)
                for i, g in unit.targets:
                    k = ks[i]
                    unit.slot.write(g, plateau.reduced(v, k) if k else v)

    def _check_values(self, step: int) -> None:
        for u in self._units:
            u.cache.checked(step, u.field, u.slot)

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
            return [None] * len(self._ks)
        return self._values(step, name, self._ks)

    def _values(self, step: int, field: str, ks: list[int]) -> list[float | None]:
        out: list[float | None] = []
        for i, (bound, slot) in enumerate(zip(self._bound[field], self._slots[field],
                                              strict=True)):
            if bound is None or slot is None:
                out.append(None)
                continue
            v = self._cache(bound).checked(step, field, slot)
            if isinstance(bound, Plateau) and ks[i]:
                v = bound.reduced(v, ks[i])
            out.append(v)
        return out

    def _lrs(self, step: int, ks: list[int]) -> list[float]:
        vals = self._values(step, "lr", ks) if "lr" in self._specs else [None] * len(ks)
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
        the values of step :math:`k - 1`, before any step those of step 0 (floats, copies)."""
        return list(self._lrs(max(self.last_epoch - 1, 0), self._prev_ks))

    # -- time --------------------------------------------------------------------------------
    def step(self, metric: Any = None) -> None:  # type: ignore[override]
        """Advance one step (call after ``optimizer.step()``); with a :class:`Plateau`,
        ``metric`` (a number or one-element tensor) decides on reductions. Without a
        Plateau a metric is not consulted."""
        groups = self.optimizer.param_groups
        if groups is not self._groups_ref or len(groups) != self._n:
            self._sync()
        advance = True
        if self._hook is not None:
            advance = self._updates != self._updates_seen
            self._updates_seen = self._updates
        tracker = self._tracker
        if tracker is not None and metric is not None and self.reduce != "none" \
                and is_distributed():
            metric = reduce_metric(metric, self.reduce)
        if self._device is not None:
            if advance:
                self._device.advance()
        else:
            t = self._step + advance
            self._step = t
            if tracker is not None:
                if advance:
                    self._prev_ks = self._ks
                if metric is not None and tracker.observe(metric, t, check_every=advance):
                    self._reduce(t)
            if advance or tracker is not None:
                self._write(t)
        if self.check_ranks:
            self.assert_ranks_agree()

    def assert_ranks_agree(self) -> None:
        """Raise :class:`~lrkit.errors.StateError` on every rank unless all ranks of the
        ``torch.distributed`` group hold the same step and rates (a collective call; a
        no-op without a process group)."""
        vals: list[float] = [float(self.last_epoch)]
        for field in self._specs:
            vals += [-1.0 if v is None else v for v in self._values(self.last_epoch, field,
                                                                     self._ks)]
        check_same_rates(vals, "the step and scheduled values")

    def _reduce(self, step: int) -> None:
        assert self._plateau is not None
        eps = self._plateau.eps
        ks = list(self._ks)
        for i, (bound, slot) in enumerate(zip(self._bound["lr"], self._slots["lr"],
                                              strict=True)):
            if isinstance(bound, Plateau) and slot is not None:
                v = self._cache(bound).checked(step, "lr", slot)
                if bound.reduced(v, ks[i]) - bound.reduced(v, ks[i] + 1) > eps:
                    ks[i] += 1
        self._ks = ks

    @property
    def last_epoch(self) -> int:  # type: ignore[override]
        """The number of :meth:`step` calls (torch's meaning); setting it calls
        :meth:`set_step`. In device mode reading it syncs with the device."""
        return self._device.read_step() if self._device is not None else self._step

    @last_epoch.setter
    def last_epoch(self, value: int) -> None:
        self.set_step(value)

    def set_step(self, step: int) -> None:
        """Jump to ``step`` (resume): write its values; plateau state is kept."""
        step = check_int("step", step, low=0)
        groups = self.optimizer.param_groups
        if groups is not self._groups_ref or len(groups) != self._n:
            self._sync()
        self._prev_ks = self._ks
        self._step = step
        if self._device is not None:
            self._check_values(step)
            self._device.set_step(step)
        else:
            self._write(step)

    # -- state -------------------------------------------------------------------------------
    def _config(self) -> dict[str, Any]:
        fields = {
            f: {"schedules": [None if s is None else self._prints[id(s)][1]
                              for s in self._plan[f]],
                "bases": list(self._bases[f])}
            for f in self._specs
        }
        return {"groups": len(self._ks), "fields": fields}

    def state_dict(self) -> dict[str, Any]:
        """The state as plain data (see :mod:`lrkit.torch.state`): format, step,
        configuration fingerprint, bases and plateau state."""
        plateau = None
        if self._tracker is not None:
            plateau = {**self._tracker.state(), "reductions": list(self._ks)}
        return {"format": FORMAT, "version": VERSION, "step": self.last_epoch,
                **self._config(), "plateau": plateau}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` (before or after the optimizer's; order is free).

        Raises:
            StateError: not a state of this format, a malformed entry, or (with
                ``on_mismatch="raise"``) other schedules, bases or groups than this one's.
        """
        state = check_header(state_dict)
        step = read_step(state)
        groups = self.optimizer.param_groups
        if groups is not self._groups_ref or len(groups) != self._n:
            self._sync()
        saved = {"groups": state.get("groups"), "fields": state.get("fields")}
        diff = config_diff(saved, self._config())
        if diff and self.on_mismatch == "raise":
            raise StateError(f"the saved state does not fit this scheduler: {diff} (pass "
                             "LRScheduler(on_mismatch='keep_new') to keep the new configuration)")
        ks = [0] * len(self._ks)
        saved_plateau = state.get("plateau")
        tracker = None if self._plateau is None else PlateauTracker(self._plateau)
        if tracker is not None and saved_plateau is not None:
            tracker.load(saved_plateau)
            red = saved_plateau.get("reductions") if isinstance(saved_plateau, dict) else None
            if not isinstance(red, list) or (len(red) != len(ks) and not diff):
                raise StateError(f"plateau['reductions']={red!r} is invalid: expected a list "
                                 f"of {len(ks)} counts")
            for i, k in enumerate(red[: len(ks)]):
                try:
                    ks[i] = check_int(f"plateau['reductions'][{i}]", k, low=0)
                except ConfigError as exc:
                    raise StateError(str(exc)) from None
            if not all(isinstance(b, Plateau) or k == 0 for b, k in zip(self._bound["lr"], ks,
                                                                          strict=True)):
                ks = [k if isinstance(b, Plateau) else 0 for b, k in zip(self._bound["lr"], ks,
                                                                         strict=True)]
        self._tracker = tracker
        self._ks = ks
        self.set_step(step)


def _as_float(value: Any) -> float:
    if isinstance(value, torch.Tensor):
        return float(value.detach().cpu().reshape(-1)[0])
    return float(value)
