"""Train the tiny CNN once per (schedule, optimizer, seed) and record every number.

A run is deterministic: the seed fixes the initial weights and the batch order, the data
split is fixed, ``torch.use_deterministic_algorithms(True)`` is on and the number of threads
is fixed (results can differ between thread counts, never between runs with the same one).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from lrkit._validate import bad, check_int, check_number
from lrkit.errors import ConfigError
from lrkit.train.data import Digits, batches
from lrkit.train.model import TinyCNN

__all__ = [
    "OPTIMIZERS",
    "PRESETS",
    "RunConfig",
    "RunResult",
    "ScheduleChoice",
    "TaskConfig",
    "default_schedules",
    "make_optimizer",
    "resolve_schedules",
    "set_determinism",
    "train_run",
]

#: Optimizers of the comparison: name -> (default base rate, weight decay).
OPTIMIZERS: dict[str, tuple[float, float]] = {
    "sgd": (0.05, 5e-4),
    "adamw": (3e-3, 1e-2),
    "adam": (3e-3, 0.0),
}

#: Quantiles of the effective per-element rate drawn as the band (low, middle, high).
BAND_QUANTILES = (0.1, 0.5, 0.9)


@dataclasses.dataclass(frozen=True)
class ScheduleChoice:
    """One schedule of the comparison: a spec string, or Segmenter's scheduler class.

    ``kind`` is ``"spec"`` (``spec`` is parsed by :func:`lrkit.spec.parse`) or
    ``"segmenter"`` (:class:`lrkit.compat.segmenter.PolynomialLR`, stepped with
    ``step_update(num_updates)`` as in Segmenter's training loop; ``spec`` describes it).
    """

    name: str
    spec: str
    kind: str = "spec"


@dataclasses.dataclass(frozen=True)
class TaskConfig:
    """What every run shares: epochs, batch size, threads, the horizon in optimizer updates.

    ``batch_size`` is the batch of one optimizer update over all processes; ``accumulate``
    splits each process's share into that many micro-batches whose gradients add up before
    the update (gradient accumulation: the schedule still advances once per update).
    """

    epochs: int = 10
    batch_size: int = 64
    threads: int = 1
    steps_per_epoch: int = 1
    accumulate: int = 1

    def __post_init__(self) -> None:
        check_int("accumulate", self.accumulate, low=1)
        check_int("epochs", self.epochs, low=1)
        check_int("batch_size", self.batch_size, low=1)
        check_int("threads", self.threads, low=1)
        check_int("steps_per_epoch", self.steps_per_epoch, low=1)

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch


def _presets(total: int, per_epoch: int) -> dict[str, ScheduleChoice]:
    warm = max(1, round(0.1 * total))
    m1, m2 = round(0.5 * total), round(0.75 * total)
    specs = {
        "setr": f"poly(power=0.9, end=1e-4) over {total}",
        "poly-warmup": f"warmup({warm}) then poly(power=0.9) over {total}",
        "step": f"multistep(boundaries=[{m1}, {m2}], gamma=0.1)",
        "cosine-warmup": f"warmup({warm}) then cosine over {total}",
        "onecycle": f"onecycle over {total}",
        "plateau": f"plateau(factor=0.3, patience=0, every={per_epoch})",
        "constant": "constant",
    }
    out = {k: ScheduleChoice(k, v) for k, v in specs.items()}
    out["segmenter"] = ScheduleChoice(
        "segmenter",
        f"PolynomialLR(step_size=1, iter_warmup=0, iter_max={total}, power=0.9, min_lr=1e-5)",
        kind="segmenter",
    )
    order = ("setr", "segmenter", "poly-warmup", "step", "cosine-warmup", "onecycle")
    return {k: out[k] for k in (*order, "plateau", "constant")}


#: The names of the built-in schedules, in report order.
PRESETS: tuple[str, ...] = tuple(_presets(100, 10))


def default_schedules(task: TaskConfig) -> list[ScheduleChoice]:
    """The eight built-in schedules for ``task``'s horizon."""
    return list(_presets(task.total_steps, task.steps_per_epoch).values())


def resolve_schedules(
    names: Sequence[str] | None, specs: Sequence[str], task: TaskConfig
) -> list[ScheduleChoice]:
    """Built-in schedules by name plus custom ``[label=]spec`` strings (parsed to check them).

    With neither names nor specs, all built-in schedules. Raises :class:`ConfigError` for an
    unknown name, :class:`lrkit.errors.SpecError` for a bad spec, and for a repeated label.
    """
    presets = _presets(task.total_steps, task.steps_per_epoch)
    chosen: list[ScheduleChoice] = []
    for name in names or ([] if specs else list(presets)):
        if name not in presets:
            raise bad("schedule", name, "one of " + ", ".join(presets))
        chosen.append(presets[name])
    for i, text in enumerate(specs):
        label, sep, spec = text.partition("=")
        if not sep or "(" in label or " " in label.strip():
            label, spec = f"custom{i + 1}", text
        chosen.append(ScheduleChoice(label.strip(), spec.strip()))
    seen: set[str] = set()
    for c in chosen:
        if c.name in seen:
            raise ConfigError(f"schedule label {c.name!r} is used twice: give each a new label")
        seen.add(c.name)
        if c.kind == "spec":
            build_schedule(c, task)
    return chosen


def build_schedule(choice: ScheduleChoice, task: TaskConfig) -> Any:
    """The :class:`~lrkit.schedules.base.Schedule` of a spec choice (horizon = the task's)."""
    from lrkit.spec import parse

    return parse(choice.spec, total_steps=task.total_steps)


def make_optimizer(
    name: str, params: Any, lr: float | None = None, weight_decay: float | None = None
) -> torch.optim.Optimizer:
    """``sgd`` (momentum 0.9, Nesterov off), ``adamw`` or ``adam`` with the given base rate."""
    if name not in OPTIMIZERS:
        raise bad("optimizer", name, "one of " + ", ".join(OPTIMIZERS))
    default_lr, default_wd = OPTIMIZERS[name]
    lr = default_lr if lr is None else check_number("lr", lr, low=0, low_open=True)
    wd = default_wd if weight_decay is None else check_number("weight_decay", weight_decay, low=0)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=wd)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    return torch.optim.Adam(params, lr=lr, weight_decay=wd)


def set_determinism(threads: int) -> None:
    """Deterministic kernels and a fixed number of threads for every run."""
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(threads)


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """One run: which schedule, which optimizer (and base rate), which seed."""

    schedule: ScheduleChoice
    optimizer: str
    lr: float
    seed: int

    @property
    def label(self) -> str:
        return f"{self.schedule.name} / {self.optimizer} / seed {self.seed}"


@dataclasses.dataclass
class RunResult:
    """Everything a run measured: per step (rate, loss, band) and per epoch (validation)."""

    config: RunConfig
    lr: list[float] = dataclasses.field(default_factory=list)
    train_loss: list[float] = dataclasses.field(default_factory=list)
    band: dict[str, list[float]] | None = None
    epoch_train_loss: list[float] = dataclasses.field(default_factory=list)
    val_loss: list[float] = dataclasses.field(default_factory=list)
    val_acc: list[float] = dataclasses.field(default_factory=list)
    wall_time_s: float = 0.0
    diverged: bool = False

    @property
    def best_val_acc(self) -> float:
        return max(self.val_acc) if self.val_acc else math.nan

    @property
    def final_val_acc(self) -> float:
        return self.val_acc[-1] if self.val_acc else math.nan

    @property
    def final_train_loss(self) -> float:
        return self.epoch_train_loss[-1] if self.epoch_train_loss else math.nan

    def summary(self) -> dict[str, Any]:
        c = self.config
        return {
            "schedule": c.schedule.name,
            "optimizer": c.optimizer,
            "seed": c.seed,
            "base_lr": c.lr,
            "best_val_acc": self.best_val_acc,
            "final_val_acc": self.final_val_acc,
            "final_train_loss": self.final_train_loss,
            "final_val_loss": self.val_loss[-1] if self.val_loss else math.nan,
            "wall_time_s": self.wall_time_s,
            "diverged": self.diverged,
        }

    def to_dict(self) -> dict[str, Any]:
        c = self.config
        return {
            **self.summary(),
            "spec": c.schedule.spec,
            "schedule_kind": c.schedule.kind,
            "per_step": {"lr": self.lr, "train_loss": self.train_loss, "effective_lr": self.band},
            "per_epoch": {
                "train_loss": self.epoch_train_loss,
                "val_loss": self.val_loss,
                "val_acc": self.val_acc,
            },
        }


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


class _Trainer:
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


def train_run(
    cfg: RunConfig,
    task: TaskConfig,
    data: Digits,
    *,
    on_step: Callable[[], None] | None = None,
    band: bool | None = None,
    checkpoint: Any | None = None,
) -> RunResult:
    """Train one model; ``on_step`` is called after each update (progress bars).

    ``band`` records the effective-rate band (default: for Adam-type optimizers).
    A run whose loss becomes non-finite is stopped and marked ``diverged``.

    ``checkpoint`` (a :class:`lrkit.train.checkpoint.Checkpointing`) saves the whole run
    state (model, optimizer, scheduler, recorded numbers, band, RNG states, the position in
    the data order) every ``every`` updates and at the end, atomically; with ``resume`` a
    run continues from its file and ends bit for bit as an uninterrupted run (a finished
    run's file gives its result without training).

    Under an initialized ``torch.distributed`` group the model is wrapped in
    ``DistributedDataParallel`` and each process takes its share of every batch
    (``batch_size`` is the global batch): the number of updates, and so the schedule, do
    not depend on the number of processes. Only rank 0 writes checkpoints.
    """
    set_determinism(task.threads)
    if band is None:
        band = cfg.optimizer in ("adam", "adamw")
    trainer = _Trainer(cfg, task, band)
    if checkpoint is not None and checkpoint.resume and Path(checkpoint.path).exists():
        from lrkit.train.checkpoint import load_checkpoint

        trainer.load(load_checkpoint(checkpoint.path), str(checkpoint.path))
    return trainer.run(data, on_step, checkpoint)
