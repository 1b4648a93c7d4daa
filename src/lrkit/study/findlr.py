"""Learning-rate range test: raise the rate step by step and watch the loss.

:func:`range_test` works on a task (:mod:`lrkit.tasks`: a built-in name, an entry point's
result or your own task object) or on any model, optimizer and iterable of
``(inputs, targets)`` batches. The ramp is an lrkit schedule (geometric: an exponential
warmup; or linear), the loss is smoothed with a bias-corrected moving average, the test
stops when the smoothed loss diverges, and afterwards the model, the optimizer (state and
rates), an optional scheduler and torch's random state are restored bit for bit: the test
leaves no trace.

Suggestions (all read off the smoothed curve):

- ``steepest``: where the loss falls fastest against log(lr);
- ``min/10``: a tenth of the rate at the minimum loss (the classic rule of thumb);
- ``valley``: fastai's valley: two thirds down the longest stretch of falling loss.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lrkit._validate import check_choice, check_int, check_number
from lrkit.errors import ConfigError

__all__ = ["METHODS", "RangeTest", "plot_range_test", "range_test", "spec_for", "suggest"]

METHODS = ("valley", "steepest", "min/10")


@dataclasses.dataclass
class RangeTest:
    """The curve of a range test and the suggested rates (``method -> lr``)."""

    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    stopped_early: bool
    suggestions: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def plot(self, path: str | Path | None = None, *, ax: Any = None,
             size: tuple[int, int] = (800, 450)) -> Any:
        """Draw the curve (loss against rate, log axis) with the suggestions marked, on
        ``ax`` or a new figure; save it to ``path`` (.png/.svg) if given. Returns the axes."""
        return _draw(self, ax, size, None if path is None else Path(path))


def _ramp(start_lr: float, end_lr: float, num_steps: int, ramp: str) -> Any:
    from lrkit.schedules import Constant, Linear, Warmup

    n = num_steps - 1
    if ramp == "linear":
        return Linear(total_steps=n, start=start_lr, end=end_lr)
    return Warmup(Constant(end_lr), steps=n, start=start_lr, shape="exponential")


def _valley(smoothed: np.ndarray) -> int:
    """fastai's valley: the longest decreasing subsequence; 2/3 of the way along it."""
    n = len(smoothed)
    lds = np.ones(n, dtype=np.int64)
    max_start = max_end = 0
    for i in range(1, n):
        lower = smoothed[i] < smoothed[:i]
        if lower.any():
            lds[i] = max(lds[i], int(lds[:i][lower].max()) + 1)
        if lds[max_end] < lds[i]:
            max_end = i
            max_start = max_end - int(lds[max_end])
    sections = (max_end - max_start) / 3
    return max(0, min(n - 1, max_start + int(sections) + int(sections / 2)))


def suggest(lrs: Iterable[float], smoothed: Iterable[float]) -> dict[str, float]:
    """The suggested rates for a curve (see the module doc); empty if it is too short.

    Example:
        >>> lrs = np.geomspace(1e-4, 1, 50)
        >>> loss = 1 + np.tanh(-np.log10(lrs / 1e-2)) + (lrs > 0.3) * 5
        >>> s = suggest(lrs, loss)
        >>> 1e-3 < s["steepest"] < 1e-1, s["min/10"] < s["steepest"] * 10
        (True, True)
    """
    lr = np.asarray(list(lrs), dtype=np.float64)
    y = np.asarray(list(smoothed), dtype=np.float64)
    keep = np.isfinite(y)
    lr, y = lr[keep], y[keep]
    if len(y) < 5:
        return {}
    best = int(np.argmin(y))
    grad = np.gradient(y, np.log(lr))
    upto = max(best, 2)  # the steepest fall lies before the minimum
    steep = int(np.argmin(grad[: upto + 1]))
    return {
        "valley": float(lr[_valley(y)]),
        "steepest": float(lr[steep]),
        "min/10": float(lr[best] / 10),
    }


def _forever(batches: Iterable[tuple[Any, Any]]) -> Iterator[tuple[Any, Any]]:
    """Pass over ``batches`` again and again (a DataLoader reshuffles each pass)."""
    while True:
        empty = True
        for batch in batches:
            empty = False
            yield batch
        if empty:
            return


def range_test(
    model: Any,
    optimizer: torch.optim.Optimizer | str | None = None,
    batches: Iterable[Any] | None = None,
    loss_fn: Callable[[Any, Any], torch.Tensor] = torch.nn.functional.cross_entropy,
    *,
    start_lr: float = 1e-6,
    end_lr: float = 1.0,
    num_steps: int = 100,
    ramp: str = "exp",
    smoothing: float = 0.9,
    diverge: float = 4.0,
    scheduler: Any = None,
    on_step: Callable[[int, float, float], None] | None = None,
    seed: int = 0,
    threads: int = 1,
) -> RangeTest:
    """Run the range test and restore everything it touched.

    ``model`` may be a task (anything with ``build``: :mod:`lrkit.tasks.base`; or a
    built-in name / ``module:factory`` string): then a fresh run is built from ``seed``,
    ``optimizer`` is an optimizer name (default ``"adamw"``), batches come from the run's
    ``batch(step)`` and the loss from its ``loss(batch)``.

    Args:
        model, optimizer: trained ``num_steps`` updates at rising rates (every parameter
            group gets the same rate), then restored to their exact state before the test.
        batches: an iterable of ``(inputs, targets)`` (a DataLoader); it is cycled if shorter.
        loss_fn: ``loss_fn(model(inputs), targets)``.
        start_lr, end_lr: the ramp's first and last rate (``0 < start_lr < end_lr``).
        num_steps: updates in the ramp (>= 5).
        ramp: ``"exp"`` (geometric) or ``"linear"``.
        smoothing: ``β`` of the moving average ``m ← β m + (1-β) loss`` (``0 <= β < 1``).
        diverge: stop once the smoothed loss exceeds ``diverge`` x its minimum (> 1).
        scheduler: an LR scheduler whose ``state_dict`` is restored as well.
        on_step: called as ``on_step(i, lr, loss)`` after each update (progress).

    Raises:
        ConfigError: an argument is out of range.
    """
    start_lr = check_number("start_lr", start_lr, low=0, low_open=True)
    end_lr = check_number("end_lr", end_lr, low=start_lr, low_open=True)
    num_steps = check_int("num_steps", num_steps, low=5)
    check_choice("ramp", ramp, ("exp", "linear"))
    smoothing = check_number("smoothing", smoothing, low=0, high=1, high_open=True)
    diverge = check_number("diverge", diverge, low=1, low_open=True)
    schedule = _ramp(start_lr, end_lr, num_steps, ramp)
    step_loss: Callable[[Any], torch.Tensor]
    opt: torch.optim.Optimizer
    if isinstance(model, str) or hasattr(model, "build"):
        model, opt, stream, step_loss = _from_task(model, optimizer, seed, threads)
    else:
        if optimizer is None or isinstance(optimizer, str) or batches is None:
            raise ConfigError("range_test(model, optimizer, batches): give an optimizer "
                              "object and batches, or a task as the first argument")
        opt = optimizer
        stream = _forever(batches)

        def step_loss(batch: Any) -> torch.Tensor:
            inputs, targets = batch
            return loss_fn(model(inputs), targets)

    saved_model = copy.deepcopy(model.state_dict())
    saved_opt = copy.deepcopy(opt.state_dict())
    saved_sched = copy.deepcopy(scheduler.state_dict()) if scheduler is not None else None
    saved_rng = torch.get_rng_state()
    was_training = model.training

    lrs: list[float] = []
    losses: list[float] = []
    smoothed: list[float] = []
    stopped = False
    avg, best = 0.0, math.inf
    try:
        model.train()
        for i in range(num_steps):
            lr = float(schedule(i))
            for group in opt.param_groups:
                group["lr"] = lr
            batch = next(stream, None)
            if batch is None:  # a one-shot iterable ran out
                break
            loss = step_loss(batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
            value = loss.detach().item()
            lrs.append(lr)
            losses.append(value)
            if not math.isfinite(value):
                smoothed.append(math.inf)
                stopped = True
                break
            avg = smoothing * avg + (1 - smoothing) * value
            s = avg / (1 - smoothing ** (i + 1))
            smoothed.append(s)
            best = min(best, s)
            if on_step is not None:
                on_step(i, lr, value)
            if i > 0 and s > diverge * best:
                stopped = True
                break
    finally:
        model.load_state_dict(saved_model)
        opt.load_state_dict(saved_opt)
        if scheduler is not None and saved_sched is not None:
            scheduler.load_state_dict(saved_sched)
        torch.set_rng_state(saved_rng)
        model.train(was_training)
    return RangeTest(lrs, losses, smoothed, stopped, suggest(lrs, smoothed))


def _from_task(task: Any, optimizer: Any, seed: int, threads: int) -> tuple[Any, Any, Any, Any]:
    """(model, optimizer, batch stream, loss of a batch) of a fresh run of ``task``."""
    from lrkit.study.config import PARTNERS, base_rates, make_optimizer, set_determinism
    from lrkit.tasks.base import check_run, check_task, is_callback_run
    from lrkit.tasks.registry import load_task

    task = load_task(task) if isinstance(task, str) else check_task(task, type(task).__name__)
    name = "adamw" if optimizer is None else optimizer
    if not isinstance(name, str):
        raise ConfigError("range_test(task, optimizer): with a task, optimizer is a name "
                          "(sgd, adamw, adam)")
    if name in PARTNERS:
        raise ConfigError(f"optimizer={name!r} is invalid for a range test: it has two base "
                          f"rates ({name}'s and {PARTNERS[name]}'s) and the test sweeps one "
                          "rate for every group; expected an optimizer with one rate")
    lr, wd = base_rates(task, [name])[name]
    set_determinism(threads)
    torch.manual_seed(seed)
    run = check_run(task.build(seed), task.name)
    if is_callback_run(run):
        raise ConfigError(f"task {task.name!r} keeps its own loop (train(ctx)): the range "
                          "test needs batch(step) and loss(batch)")
    opt = make_optimizer(name, run.param_groups(), lr, wd)

    def stream() -> Iterator[Any]:
        step = 0
        while True:
            yield run.batch(step)
            step += 1

    return run.model, opt, stream(), run.loss


def spec_for(lr: float, kind: str, total_steps: int, warmup_steps: int | None = None) -> str:
    """A spec string whose peak is ``lr``: ``onecycle`` or ``poly`` (with linear warmup).

    Example:
        >>> spec_for(0.003, "poly", 1000)
        'warmup(100) then poly(power=0.9, peak=0.003) over 1000'
    """
    check_choice("kind", kind, ("onecycle", "poly"))
    total_steps = check_int("total_steps", total_steps, low=1)
    peak = f"{lr:.3g}"
    if kind == "onecycle":
        return f"onecycle(peak={peak}) over {total_steps}"
    w = max(1, round(0.1 * total_steps)) if warmup_steps is None else warmup_steps
    return f"warmup({w}) then poly(power=0.9, peak={peak}) over {total_steps}"


def plot_range_test(result: RangeTest, path: Path, *, size: tuple[int, int] = (800, 450)) -> None:
    """Save the plot of :meth:`RangeTest.plot` to ``path`` (.png or .svg)."""
    result.plot(path, size=size)


def _draw(result: RangeTest, ax: Any, size: tuple[int, int], path: Path | None) -> Any:
    dpi = 100
    if ax is None:
        if path is not None:  # a file only: no pyplot, no backend switch
            from matplotlib.figure import Figure

            ax = Figure(figsize=(size[0] / dpi, size[1] / dpi), dpi=dpi).subplots()
        else:  # interactive (a notebook): pyplot's current backend
            import matplotlib.pyplot as plt

            _, ax = plt.subplots(figsize=(size[0] / dpi, size[1] / dpi), dpi=dpi)
    ax.plot(result.lrs, result.losses, color="0.7", lw=0.8, label="loss")
    sm = np.asarray(result.smoothed)
    lr = np.asarray(result.lrs)
    ok = np.isfinite(sm)
    ax.plot(lr[ok], sm[ok], color="C0", lw=1.6, label="smoothed")
    for k, (name, value) in enumerate(result.suggestions.items()):
        y = float(np.interp(np.log(value), np.log(lr[ok]), sm[ok]))
        ax.axvline(value, color=f"C{k + 1}", ls=":", lw=1)
        ax.plot([value], [y], "o", color=f"C{k + 1}", label=f"{name}: {value:.3g}")
    ax.set_xscale("log")
    if ok.any():
        raw = np.asarray(result.losses)
        lo = min(float(sm[ok].min()), float(np.nanmin(np.where(np.isfinite(raw), raw, np.nan))))
        hi = float(sm[ok][0])
        ax.set_ylim(lo - 0.1 * (hi - lo + 1e-12), max(hi, lo) + 0.5 * (hi - lo + 1e-12))
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.set_title("learning-rate range test" + (" (stopped: diverged)" if result.stopped_early
                                              else ""))
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=9)
    if path is not None:
        f = ax.figure
        f.tight_layout()
        f.savefig(path, dpi=dpi, format=path.suffix.lower().lstrip(".") or "png")
    return ax
