"""The training loop of one comparison run: stepping, recording, checkpoints, DDP.

:func:`lrkit.train.runner.train_run` is the entry point; this module holds its state
(:class:`Trainer`), the rate driver (lrkit's scheduler or Segmenter's class) and the
effective-rate band recorder.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from lrkit.train.data import Digits, batches
from lrkit.train.model import TinyCNN
from lrkit.train.runner import (
    BAND_QUANTILES,
    RunConfig,
    RunResult,
    ScheduleChoice,
    TaskConfig,
    build_schedule,
    make_optimizer,
)

__all__ = ["Trainer"]


class _Stepper:
    """Drives the rate: lrkit's LRScheduler, or Segmenter's class with ``step_update``."""

    def __init__(
        self, choice: ScheduleChoice, opt: torch.optim.Optimizer, task: TaskConfig
    ) -> None:
        self.kind = choice.kind
        self.updates = 0
        if choice.kind == "segmenter":
            from lrkit.compat.segmenter import PolynomialLR

            self.impl: Any = PolynomialLR(
                opt,
                step_size=1,
                iter_warmup=0,
                iter_max=task.total_steps,
                power=0.9,
                min_lr=1e-5,
            )
        else:
            from lrkit.torch import LRScheduler

            self.impl = LRScheduler(opt, build_schedule(choice, task))

    def load(self, state: dict[str, Any], updates: int) -> None:
        self.impl.load_state_dict(state)
        self.updates = updates

    def after_update(self, metric: float | None) -> None:
        """Called once after each ``optimizer.step()``; ``metric`` at the end of an epoch."""
        self.updates += 1
        if self.kind == "segmenter":
            self.impl.step_update(num_updates=self.updates)
        elif metric is None:
            self.impl.step()
        else:
            self.impl.step(metric=metric)


class _Band:
    """The effective per-element rate band, recorded by :class:`lrkit.inspect.Monitor`.

    The monitor is stepped right after each ``optimizer.step()`` (before the scheduler), so
    each record pairs the base rate a step used with the effective rates of that step. The
    quantiles are taken at once (plain floats), so the band is saved in checkpoints.
    """

    def __init__(self, opt: torch.optim.Optimizer) -> None:
        from lrkit.inspect import Monitor

        self.monitor = Monitor(opt, every=1, updates=None)
        self.data: dict[str, list[float]] = {"low": [], "median": [], "high": []}

    def record(self) -> None:
        low, mid, high = BAND_QUANTILES
        for r in self.monitor.step():
            if r.group == 0:
                self.data["low"].append(r.summary.quantile(low))
                self.data["median"].append(r.summary.quantile(mid))
                self.data["high"].append(r.summary.quantile(high))
        self.monitor.history.clear()

    def rows(self) -> dict[str, list[float]]:
        return {k: list(v) for k, v in self.data.items()}

    def state(self) -> dict[str, Any]:
        return {"steps": self.monitor.steps, "rows": self.rows()}

    def load(self, state: dict[str, Any]) -> None:
        self.monitor.steps = int(state["steps"])
        self.data = {k: [float(x) for x in state["rows"][k]] for k in self.data}


@torch.no_grad()
def _evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    model.eval()
    logits = model(x)
    model.train()
    loss = float(F.cross_entropy(logits, y))
    acc = float((logits.argmax(1) == y).double().mean())
    return loss, acc


def _world() -> tuple[int, int]:
    """(rank, number of processes) of the initialized torch.distributed group, else (0, 1)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _config_key(cfg: RunConfig, task: TaskConfig) -> dict[str, Any]:
    """What a checkpoint must match to be resumed by this run (threads may differ)."""
    c = cfg.schedule
    return {"schedule": [c.name, c.spec, c.kind], "optimizer": cfg.optimizer, "lr": cfg.lr,
            "seed": cfg.seed, "epochs": task.epochs, "batch_size": task.batch_size,
            "steps_per_epoch": task.steps_per_epoch, "accumulate": task.accumulate}


class Trainer:
    """The state of one run, and its checkpoint (see :mod:`lrkit.train.checkpoint`)."""

    def __init__(self, cfg: RunConfig, task: TaskConfig, band: bool) -> None:
        self.cfg, self.task = cfg, task
        self.rank, self.world = _world()
        torch.manual_seed(cfg.seed)
        self.model = TinyCNN()
        self.net: torch.nn.Module = self.model
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            self.net = DistributedDataParallel(self.model)
        self.opt = make_optimizer(cfg.optimizer, self.model.parameters(), cfg.lr)
        self.stepper = _Stepper(cfg.schedule, self.opt, task)
        self.recorder = _Band(self.opt) if band else None
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self.out = RunResult(cfg)
        self.epoch = 0  # the epoch in progress
        self.batch = 0  # batches of it done
        self.losses: list[float] = []  # their losses
        self.epoch_gen_state = self.gen.get_state()  # the data-order RNG at the epoch's start
        self.done = False
        self.elapsed = 0.0
        self._t0 = 0.0

    # -- checkpoints -------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        from lrkit.train.checkpoint import FORMAT, VERSION

        o = self.out
        return {
            "format": FORMAT, "version": VERSION,
            "config": _config_key(self.cfg, self.task),
            "updates": self.stepper.updates, "epoch": self.epoch, "batch": self.batch,
            "losses": list(self.losses), "done": self.done, "elapsed": self.elapsed,
            "model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
            "scheduler": self.stepper.impl.state_dict(),
            "rng": {"torch": torch.get_rng_state(), "data_epoch_start": self.epoch_gen_state},
            "monitor": None if self.recorder is None else self.recorder.state(),
            "result": {"lr": o.lr, "train_loss": o.train_loss,
                       "epoch_train_loss": o.epoch_train_loss, "val_loss": o.val_loss,
                       "val_acc": o.val_acc, "diverged": o.diverged},
        }

    def load(self, state: dict[str, Any], where: str) -> None:
        from lrkit.errors import StateError

        want = _config_key(self.cfg, self.task)
        if state.get("config") != want:
            raise StateError(f"checkpoint {where!r} is from another run: saved "
                             f"{state.get('config')!r}, now {want!r} (remove it or start "
                             "without --resume)")
        try:
            self.model.load_state_dict(state["model"])
            self.opt.load_state_dict(state["optimizer"])
            self.stepper.load(state["scheduler"], int(state["updates"]))
            torch.set_rng_state(state["rng"]["torch"])
            self.epoch_gen_state = state["rng"]["data_epoch_start"]
            self.gen.set_state(self.epoch_gen_state)
            if self.recorder is not None:
                self.recorder.load(state["monitor"])
            r = state["result"]
            self.out.lr, self.out.train_loss = list(r["lr"]), list(r["train_loss"])
            self.out.epoch_train_loss = list(r["epoch_train_loss"])
            self.out.val_loss, self.out.val_acc = list(r["val_loss"]), list(r["val_acc"])
            self.out.diverged = bool(r["diverged"])
            self.epoch, self.batch = int(state["epoch"]), int(state["batch"])
            self.losses = [float(v) for v in state["losses"]]
            self.done, self.elapsed = bool(state["done"]), float(state["elapsed"])
        except (KeyError, TypeError, RuntimeError) as exc:
            raise StateError(f"checkpoint {where!r} is invalid: {type(exc).__name__}: "
                             f"{exc}") from None

    # -- training ----------------------------------------------------------------------
    def _update(self, xb: torch.Tensor, yb: torch.Tensor) -> float:
        """One optimizer update on the global batch ``xb`` (this rank's share, in
        ``accumulate`` micro-batches); returns the batch's mean loss (all ranks)."""
        if self.world == 1 and self.task.accumulate == 1:  # the plain loop
            loss = F.cross_entropy(self.net(xb), yb)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            self.opt.step()
            return loss.detach().item()
        n = xb.shape[0]
        mine = torch.arange(self.rank, n, self.world)
        chunks = mine.tensor_split(self.task.accumulate)
        self.opt.zero_grad(set_to_none=True)
        total = torch.zeros((), dtype=torch.float64)
        for j, idx in enumerate(chunks):
            last = j == len(chunks) - 1
            no_sync: Any = getattr(self.net, "no_sync", None)
            sync = contextlib.nullcontext() if last or no_sync is None else no_sync()
            with sync:
                # sum / n * world: DDP averages over ranks, so the gradient is the batch mean
                loss = F.cross_entropy(self.net(xb[idx]), yb[idx], reduction="sum")
                (loss * (self.world / n)).backward()  # type: ignore[no-untyped-call]
            total += loss.detach().double()
        if self.world > 1:
            import torch.distributed as dist

            dist.all_reduce(total)
        self.opt.step()
        return float(total) / n

    def run(self, data: Digits, on_step: Callable[[], None] | None,
            ckpt: Any | None) -> RunResult:
        from lrkit.train.checkpoint import save_atomic

        task, out = self.task, self.out
        start = time.perf_counter()
        save = ckpt is not None and self.rank == 0

        def checkpoint() -> None:
            if save and ckpt is not None:
                self.elapsed += time.perf_counter() - self._t0
                self._t0 = time.perf_counter()
                save_atomic(self.state(), ckpt.path)

        self._t0 = start
        while not self.done and self.epoch < task.epochs:
            self.gen.set_state(self.epoch_gen_state)
            steps = list(batches(data.x_train, data.y_train, task.batch_size, self.gen))
            for i in range(self.batch, len(steps)):
                xb, yb = steps[i]
                out.lr.append(float(self.opt.param_groups[0]["lr"]))
                value = self._update(xb, yb)
                out.train_loss.append(value)
                self.losses.append(value)
                if self.recorder is not None:
                    self.recorder.record()
                metric = None
                if i == len(steps) - 1:
                    val_loss, val_acc = _evaluate(self.model, data.x_val, data.y_val)
                    out.val_loss.append(val_loss)
                    out.val_acc.append(val_acc)
                    out.epoch_train_loss.append(float(np.mean(self.losses)))
                    metric = val_loss
                self.stepper.after_update(metric)
                if on_step is not None:
                    on_step()
                self.batch = i + 1
                if self.batch == len(steps):
                    self.epoch, self.batch, self.losses = self.epoch + 1, 0, []
                    self.epoch_gen_state = self.gen.get_state()
                if not math.isfinite(value):
                    out.diverged = True
                    break
                if ckpt is not None and self.stepper.updates % ckpt.every == 0:
                    checkpoint()
            if out.diverged:
                break
        if not self.done:
            self.done = True
            checkpoint()
        else:
            self.elapsed += time.perf_counter() - start
        if self.recorder is not None:
            out.band = self.recorder.rows()
        out.wall_time_s = self.elapsed if ckpt is not None else time.perf_counter() - start
        return out
