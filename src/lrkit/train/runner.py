"""Train the tiny CNN once per (schedule, optimizer, seed) and record every number.

A run is deterministic: the seed fixes the initial weights and the batch order, the data
split is fixed, ``torch.use_deterministic_algorithms(True)`` is on and the number of threads
is fixed (results can differ between thread counts, never between runs with the same one).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from lrkit._validate import bad, check_int, check_number
from lrkit.errors import ConfigError
from lrkit.train.data import Digits

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
        f"segmenter({total}, power=0.9, end=1e-05)",
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
    """The :class:`~lrkit.schedules.base.Schedule` of a spec choice.

    A spec with its own horizon (``onecycle over 100``, ``cosine(500)``) is taken as given;
    one without (``warmup(50) then cosine``) gets the whole run, ``task.total_steps``.
    """
    from lrkit.errors import SpecError
    from lrkit.spec import parse

    try:
        return parse(choice.spec)
    except SpecError:  # no horizon of its own: the run's (a bad spec fails here again)
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
    from lrkit.train.loop import Trainer

    set_determinism(task.threads)
    if band is None:
        band = cfg.optimizer in ("adam", "adamw")
    trainer = Trainer(cfg, task, band)
    if checkpoint is not None and checkpoint.resume and Path(checkpoint.path).exists():
        from lrkit.train.checkpoint import load_checkpoint

        trainer.load(load_checkpoint(checkpoint.path), str(checkpoint.path))
    return trainer.run(data, on_step, checkpoint)
