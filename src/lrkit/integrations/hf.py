"""Hugging Face ``Trainer``: build the optimizer and an lrkit scheduler from a spec."""

from __future__ import annotations

from typing import Any

import torch

from lrkit._validate import bad, check_choice, check_number
from lrkit.spec import parse
from lrkit.torch import LRScheduler

__all__ = ["TrainerScheduler", "create_optimizer_and_scheduler", "monitor_callback"]

OPTIMIZERS = ("adamw", "adam", "sgd")


class TrainerScheduler(LRScheduler):
    """:class:`lrkit.torch.LRScheduler` whose ``get_last_lr()`` is the rate in the groups now.

    The ``Trainer`` reads ``get_last_lr()`` for its ``learning_rate`` log *between*
    ``optimizer.step()`` and ``scheduler.step()``, when the groups still hold the rate that
    update used. ``LRScheduler.get_last_lr()`` answers for the usual loop order (read after
    ``scheduler.step()``: the previous step's rate), so with the Trainer it would report the
    rate of the update before. This class reports the groups' current rates (torch's
    convention), which is the rate the update used at the Trainer's read.
    """

    def get_last_lr(self) -> list[float | torch.Tensor]:
        return self.get_lr()


def create_optimizer_and_scheduler(
    model: torch.nn.Module,
    schedule: Any,
    *,
    lr: float | None = None,
    total_steps: int | None = None,
    args: Any = None,
    optimizer: str = "adamw",
    weight_decay: float | None = None,
    no_decay: tuple[str, ...] = ("bias", "norm"),
    **optimizer_kwargs: Any,
) -> tuple[torch.optim.Optimizer, TrainerScheduler]:
    """An optimizer and a :class:`TrainerScheduler` for ``Trainer(optimizers=...)``.

    The ``Trainer`` steps the scheduler once per optimizer update (after gradient
    accumulation: updates, not micro-batches), saves its ``state_dict`` in checkpoints and
    restores it on ``resume_from_checkpoint``; its logged ``learning_rate`` is the rate the
    update used (see :class:`TrainerScheduler`).

    Args:
        model: the model whose trainable parameters are optimized.
        schedule: a :class:`~lrkit.Schedule`, a spec string or a spec dict; relative values
            are relative to ``lr``.
        lr: the base rate (default ``args.learning_rate``).
        total_steps: the spec's total horizon, warmup included, in optimizer updates
            (default ``args.max_steps`` when it is set).
        args: ``transformers.TrainingArguments``, to read defaults from.
        optimizer: ``"adamw"`` (default), ``"adam"`` or ``"sgd"``.
        weight_decay: applied to all parameters except those whose name contains one of
            ``no_decay`` (default ``args.weight_decay``, else 0).
        **optimizer_kwargs: passed to the optimizer (``betas``, ``eps``, ``momentum``...).

    Raises:
        ConfigError: a bad argument; SpecError: a bad spec.

    Example:
        >>> model = torch.nn.Linear(3, 1)
        >>> opt, sched = create_optimizer_and_scheduler(model, "warmup(10) then cos", lr=1e-3,
        ...                                             total_steps=100)
        >>> for _ in range(10):
        ...     opt.step(); sched.step()
        >>> opt.param_groups[0]["lr"], len(opt.param_groups)  # peak after warmup; no-decay group
        (0.001, 2)
    """
    check_choice("optimizer", optimizer, OPTIMIZERS)
    if lr is None:
        lr = getattr(args, "learning_rate", None)
    base = check_number("lr", lr, low=0, low_open=True)
    if total_steps is None and args is not None and getattr(args, "max_steps", -1) > 0:
        total_steps = int(args.max_steps)
    if weight_decay is None:
        weight_decay = float(getattr(args, "weight_decay", 0.0) or 0.0)
    wd = check_number("weight_decay", weight_decay, low=0.0)
    if not isinstance(model, torch.nn.Module):
        raise bad("model", type(model).__name__, "a torch.nn.Module")
    decay: list[torch.nn.Parameter] = []
    plain: list[torch.nn.Parameter] = []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (plain if any(k in name.lower() for k in no_decay) else decay).append(p)
    groups = [g for g in ({"params": decay, "weight_decay": wd},
                          {"params": plain, "weight_decay": 0.0}) if g["params"]]
    opt: torch.optim.Optimizer
    if optimizer == "adamw":
        opt = torch.optim.AdamW(groups, lr=base, **optimizer_kwargs)
    elif optimizer == "adam":
        opt = torch.optim.Adam(groups, lr=base, **optimizer_kwargs)
    else:
        opt = torch.optim.SGD(groups, lr=base, **optimizer_kwargs)
    return opt, TrainerScheduler(opt, parse(schedule, total_steps))


def _unwrap(optimizer: Any) -> torch.optim.Optimizer:
    """The torch optimizer inside accelerate's ``AcceleratedOptimizer`` (and like wrappers)."""
    seen = 0
    while hasattr(optimizer, "optimizer") and seen < 5 and type(optimizer).__name__ in (
        "AcceleratedOptimizer", "LightningOptimizer", "DeepSpeedOptimizerWrapper"
    ):
        optimizer, seen = optimizer.optimizer, seen + 1
    return optimizer  # type: ignore[no-any-return]


def monitor_callback(
    every: int = 100,
    *,
    per_param: bool = True,
    prefix: str = "lr",
    tensorboard_dir: str | None = None,
    csv_path: str | None = None,
    **monitor_kwargs: Any,
) -> Any:
    """A ``transformers.TrainerCallback`` that records effective rates per layer.

    A :class:`lrkit.inspect.Monitor` hooks the Trainer's optimizer (unwrapped from
    accelerate's wrapper) when training begins; every ``every``-th update it records each
    named parameter's (``per_param=True``, the per-layer picture of
    :mod:`lrkit.inspect.layers`) or each group's base and effective rates. Records are kept in
    ``callback.monitor.history``, appended to ``trainer.state.log_history`` as
    ``{"step": s, "{prefix}/{name}/{field}": value, ...}`` on the main process, and written
    to TensorBoard (with the per-layer layout) / CSV when the directories are given.

    Args:
        every: record every ``every``-th optimizer update (the first is always recorded).
        per_param: per named parameter (default) or per group.
        prefix: the metric name prefix.
        tensorboard_dir, csv_path: passed to the Monitor.
        **monitor_kwargs: passed to :class:`~lrkit.inspect.Monitor` (``updates``,
            ``sample``...).

    Example:
        >>> cb = monitor_callback(every=50)
        >>> type(cb).__name__, cb.every
        ('LRMonitorTrainerCallback', 50)
    """
    from transformers import TrainerCallback

    from lrkit._validate import check_int
    from lrkit.inspect import Monitor

    every = check_int("every", every, low=1)

    class LRMonitorTrainerCallback(TrainerCallback):  # type: ignore[misc]
        def __init__(self) -> None:
            self.every = every
            self.monitor: Monitor | None = None
            self._logged = 0

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            opt = _unwrap(kw["optimizer"])
            model = kw.get("model")
            self.monitor = Monitor(
                opt, every=every, per_param=per_param,
                named_parameters=model.named_parameters() if model is not None else None,
                tensorboard_dir=tensorboard_dir, csv_path=csv_path, **monitor_kwargs,
            )
            self.monitor.steps = int(state.global_step)  # resumed runs continue the count
            self._logged = 0
            self.monitor.attach()

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            mon = self.monitor
            if mon is None or len(mon.history) == self._logged:
                return
            new, self._logged = mon.history[self._logged:], len(mon.history)
            if not state.is_world_process_zero:
                return
            by_step: dict[int, dict[str, float]] = {}
            for rec in new:
                by_step.setdefault(rec.step, {}).update(rec.metrics(prefix))
            for step, metrics in by_step.items():
                state.log_history.append({"step": step, **metrics})

        def on_train_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if self.monitor is not None:
                self.monitor.close()

    return LRMonitorTrainerCallback()
