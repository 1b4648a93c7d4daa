"""PyTorch Lightning: log the base rate and effective-rate summaries through the logger."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl

from lrkit._validate import check_int
from lrkit.inspect.monitor import DEFAULT_EVERY, Monitor, Record

__all__ = ["LRMonitorCallback", "record_metrics"]


def record_metrics(record: Record, prefix: str = "lr") -> dict[str, float]:
    """A :class:`~lrkit.inspect.Record` as flat scalars: ``{prefix}/{group}/base`` (the rate
    the step used) and ``{prefix}/{group}/{p50, mean, ...}`` (effective-rate summary; with
    ``per_param=True`` the per-layer fields too: ``log10_update_to_weight``,
    ``update_grad_cosine``; see :mod:`lrkit.inspect.layers`)."""
    return record.metrics(prefix)


class LRMonitorCallback(pl.Callback):
    """Log each group's base rate and its effective-rate summary every ``every`` updates.

    A :class:`lrkit.inspect.Monitor` hooks the optimizer (after ``optimizer.step()``, before
    any scheduler step), so the base rate logged for update :math:`k` is the rate update
    :math:`k` used, whichever scheduler sets it. Metrics go to every logger of the trainer
    with ``step`` = the trainer's ``global_step`` after the update (``1`` for the first).

    Args:
        every: record every ``every``-th optimizer update (the first is always recorded).
        per_param: summaries per named parameter instead of per param group: the per-layer
            picture (:mod:`lrkit.inspect.layers`), logged as ``{prefix}/{name}/{field}``.
        prefix: the metric name prefix.
        optimizer: which of ``trainer.optimizers`` to watch.
        **monitor_kwargs: passed to :class:`~lrkit.inspect.Monitor` (``updates``,
            ``bins_per_decade``...).

    Example:
        >>> cb = LRMonitorCallback(every=10)
        >>> cb.every
        10
    """

    def __init__(
        self,
        every: int = DEFAULT_EVERY,
        *,
        per_param: bool = False,
        prefix: str = "lr",
        optimizer: int = 0,
        **monitor_kwargs: Any,
    ) -> None:
        super().__init__()
        self.every = check_int("every", every, low=1)
        self.per_param = per_param
        self.prefix = prefix
        self.optimizer_index = optimizer
        self.monitor_kwargs = monitor_kwargs
        self.monitor: Monitor | None = None
        self._logged = 0

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        opt = trainer.optimizers[self.optimizer_index]
        self.monitor = Monitor(opt, every=self.every, per_param=self.per_param,
                               named_parameters=pl_module.named_parameters(),
                               **self.monitor_kwargs)
        self.monitor.steps = trainer.global_step  # resumed runs continue the count
        self._logged = len(self.monitor.history)
        self.monitor.attach()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        mon = self.monitor
        if mon is None or len(mon.history) == self._logged:
            return
        new, self._logged = mon.history[self._logged:], len(mon.history)
        if trainer.global_rank != 0:
            return
        for rec in new:
            metrics = record_metrics(rec, self.prefix)
            for logger in trainer.loggers:
                logger.log_metrics(metrics, step=rec.step)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.monitor is not None:
            self.monitor.detach()
