"""The task contract: what a training run of the user's model must provide to a study.

A *task* is the user's code: the model, the data, the loss and an evaluation. lrkit's study
runner (:mod:`lrkit.study`) owns the loop: optimizer, schedule, gradient accumulation,
checkpoints, the effective-rate monitor and the records. A task is found by an entry point
``module:factory`` (imported, never evaluated) called with keyword arguments, and is any object
with these attributes (duck typing, checked by :func:`check_task`)::

    class MyTask:
        name = "my-task"            # short name (report, file names)
        metric = "val_loss"         # what the study ranks on (a key of evaluate())
        higher_is_better = False
        steps = 500                 # optimizer updates of one run (the schedule's horizon)
        eval_every = 50             # evaluate every N updates (and after the last)

        def describe(self) -> dict: ...          # JSON-able provenance
        def build(self, seed: int) -> MyRun: ... # a fresh run, all randomness from seed

    class MyRun:
        model: torch.nn.Module
        def param_groups(self): ...              # what the optimizer gets
        def batch(self, step: int): ...          # the batch of update `step` (random access)
        def loss(self, batch) -> torch.Tensor: ...   # mean loss over the batch
        def evaluate(self) -> dict[str, float]: ...  # held-out metrics, includes `metric`

A run that must keep its own loop defines ``train(ctx)`` instead of ``batch``/``loss``
(:class:`CallbackRun`): it steps ``ctx.optimizer`` and calls ``ctx.step(loss)`` after each
update; lrkit still steps the rate, records it and evaluates.

Optional task attributes: ``lrs`` and ``weight_decay`` (per optimizer name), ``schedules``
(name -> spec string: the task's default schedules) and ``muon_exclude`` (parameter names,
``fnmatch`` patterns, that the ``muon`` optimizer keeps on AdamW besides the embeddings; it
replaces the output-head guess of :mod:`lrkit.study.muon`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

from lrkit.errors import ConfigError

__all__ = ["CallbackRun", "Task", "TaskRun", "TrainContext", "check_run", "check_task",
           "is_callback_run"]


@runtime_checkable
class TaskRun(Protocol):
    """One training run of a task (see the module doc)."""

    model: Any

    def param_groups(self) -> Iterable[Any]: ...

    def batch(self, step: int) -> Any: ...

    def loss(self, batch: Any) -> Any: ...

    def evaluate(self) -> dict[str, float]: ...


class TrainContext(Protocol):
    """What a :class:`CallbackRun`'s ``train`` gets from the runner."""

    optimizer: Any
    steps: int

    def step(self, loss: Any) -> bool: ...

    def log(self, **metrics: float) -> None: ...


@runtime_checkable
class CallbackRun(Protocol):
    """A run that keeps its own loop: ``train(ctx)`` calls ``ctx.step(loss)`` per update."""

    model: Any

    def param_groups(self) -> Iterable[Any]: ...

    def train(self, ctx: Any) -> None: ...

    def evaluate(self) -> dict[str, float]: ...


class Task(Protocol):
    """A task: what ``factory(**task_args)`` returns (see the module doc)."""

    name: str
    metric: str
    higher_is_better: bool
    steps: int
    eval_every: int

    def describe(self) -> dict[str, Any]: ...

    def build(self, seed: int) -> Any: ...


def _fail(where: str, what: str) -> ConfigError:
    return ConfigError(f"task={where!r} is invalid: {what}")


def check_task(task: Any, where: str = "task") -> Any:
    """Check that ``task`` has the :class:`Task` attributes with usable values; return it.

    Raises:
        ConfigError: naming the entry point (``where``) and the first missing or bad attribute.

    Example:
        >>> check_task(object(), "mymod:make")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        lrkit.errors.ConfigError: task='mymod:make' is invalid: it returned object, which ...
    """
    missing = [a for a in ("name", "metric", "higher_is_better", "steps", "eval_every",
                           "describe", "build") if not hasattr(task, a)]
    if missing:
        raise _fail(where, f"it returned {type(task).__name__}, which is not a task (no "
                    + ", ".join(missing) + "; see lrkit.tasks.base)")
    for attr in ("steps", "eval_every"):
        v = getattr(task, attr)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise _fail(where, f"{attr}={v!r}: expected an integer >= 1")
    if not isinstance(task.name, str) or not task.name:
        raise _fail(where, f"name={task.name!r}: expected a non-empty string")
    if not isinstance(task.metric, str) or not task.metric:
        raise _fail(where, f"metric={task.metric!r}: expected a non-empty string")
    for attr in ("describe", "build"):
        if not callable(getattr(task, attr)):
            raise _fail(where, f"{attr} is not callable")
    for attr in ("lrs", "weight_decay"):
        v = getattr(task, attr, None)
        if v is not None and not isinstance(v, Mapping):
            raise _fail(where, f"{attr}={v!r}: expected a mapping optimizer name -> number")
    v = getattr(task, "muon_exclude", None)
    if v is not None and (isinstance(v, str) or not isinstance(v, (list, tuple)) or not all(
            isinstance(n, str) for n in v)):
        raise _fail(where, f"muon_exclude={v!r}: expected a list of parameter names "
                    "(fnmatch patterns) or None")
    v = getattr(task, "schedules", None)
    if v is not None and not (isinstance(v, Mapping) and all(
            isinstance(k, str) and isinstance(s, str) for k, s in v.items())):
        raise _fail(where, f"schedules={v!r}: expected a mapping name -> spec string")
    return task


def is_callback_run(run: Any) -> bool:
    """Whether a built run keeps its own loop (has ``train`` and no ``batch``)."""
    return callable(getattr(run, "train", None)) and not callable(getattr(run, "batch", None))


def check_run(run: Any, task_name: str) -> Any:
    """Check what ``task.build(seed)`` returned: a :class:`TaskRun` or :class:`CallbackRun`."""
    need: tuple[str, ...] = ("model", "param_groups", "evaluate")
    need += ("train",) if is_callback_run(run) else ("batch", "loss")
    missing = [a for a in need if not hasattr(run, a)]
    if missing:
        raise ConfigError(f"task {task_name!r}: build() returned {type(run).__name__}, which "
                          "lacks " + ", ".join(missing) + " (see lrkit.tasks.base)")
    return run
