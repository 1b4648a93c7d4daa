"""One run of a task under one schedule and optimizer: the loop that knows no model.

:func:`run_one` builds the task's run from its seed, the optimizer on its parameter groups and
lrkit's scheduler (or Segmenter's class), and steps them: gradient accumulation, torchrun
(DistributedDataParallel), the effective-rate band, evaluation every ``eval_every`` updates,
crash-safe checkpoints and resume. A run is deterministic: the seed fixes the task's
randomness, ``torch.use_deterministic_algorithms(True)`` is on and the number of threads is
fixed (results can differ between thread counts, never between runs with the same one).
An exception in the task's code ends that run as ``failed`` with its message; the numbers
recorded so far are kept.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from lrkit.study.config import RunConfig, build_schedule, make_optimizer, set_determinism
from lrkit.study.layers import LayerRecorder, layer_stride
from lrkit.study.record import RunResult
from lrkit.tasks.base import check_run, is_callback_run

__all__ = ["BAND_QUANTILES", "run_one", "task_info"]

#: Quantiles of the effective per-element rate drawn as the band (low, middle, high).
BAND_QUANTILES = (0.1, 0.5, 0.9)

OnStep = Callable[[int, int], None]


def task_info(task: Any, entry: str | None = None,
              args: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``task`` object of a run file: name, entry point, arguments, metric, describe()."""
    return {"name": task.name, "entry": entry or type(task).__qualname__,
            "args": dict(args or {}), "metric": task.metric,
            "higher_is_better": bool(task.higher_is_better),
            "eval_every": int(task.eval_every), "describe": task.describe()}


class _Stepper:
    """Drives the rate: lrkit's LRScheduler, or Segmenter's class with ``step_update``."""

    def __init__(self, cfg: RunConfig, opt: torch.optim.Optimizer) -> None:
        self.kind = cfg.schedule.kind
        if self.kind == "segmenter":
            from lrkit.compat.segmenter import PolynomialLR

            self.impl: Any = PolynomialLR(opt, step_size=1, iter_warmup=0,
                                          iter_max=cfg.steps, power=0.9, min_lr=1e-5)
        else:
            import warnings

            from lrkit.inspect.advice import ScheduleAdviceWarning
            from lrkit.torch import LRScheduler

            with warnings.catch_warnings():  # the report shows the advice under the verdict
                warnings.simplefilter("ignore", ScheduleAdviceWarning)
                self.impl = LRScheduler(opt, build_schedule(cfg.schedule, cfg.steps))

    def after_update(self, updates: int, metric: float | None) -> None:
        """Called once after each ``optimizer.step()``; ``metric`` at evaluation steps."""
        if self.kind == "segmenter":
            self.impl.step_update(num_updates=updates)
        elif metric is None:
            self.impl.step()
        else:
            self.impl.step(metric=metric)


class _Band:
    """The effective per-element rate band of group 0 (:class:`lrkit.inspect.Monitor`)."""

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

    def state(self) -> dict[str, Any]:
        return {"steps": self.monitor.steps, "rows": {k: list(v) for k, v in self.data.items()}}

    def load(self, state: dict[str, Any]) -> None:
        self.monitor.steps = int(state["steps"])
        self.data = {k: [float(x) for x in state["rows"][k]] for k in self.data}


def _world() -> tuple[int, int]:
    """(rank, number of processes) of the initialized torch.distributed group, else (0, 1)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _batch_size(batch: Any) -> int | None:
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.dim() else None
    items = batch.values() if isinstance(batch, dict) else batch
    if isinstance(items, (list, tuple)) or isinstance(batch, dict):
        for b in items:
            n = _batch_size(b)
            if n is not None:
                return n
    return None


def _take(batch: Any, idx: torch.Tensor) -> Any:
    """Rows ``idx`` of every tensor in ``batch`` (tensor, tuple/list, dict); others as is."""
    if isinstance(batch, torch.Tensor):
        return batch[idx] if batch.dim() else batch
    if isinstance(batch, dict):
        return {k: _take(v, idx) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_take(v, idx) for v in batch)
    return batch


class _Loop:
    """The state of one run and its checkpoint."""

    def __init__(self, task: Any, cfg: RunConfig, band: bool, info: dict[str, Any],
                 run_id: str, layers: bool = True) -> None:
        self.task, self.cfg = task, cfg
        self.rank, self.world = _world()
        torch.manual_seed(cfg.seed)
        self.run = check_run(task.build(cfg.seed), task.name)
        self.model: torch.nn.Module = self.run.model
        self.opt = make_optimizer(cfg.optimizer, self.run.param_groups(), cfg.lr,
                                  cfg.weight_decay, model=self.model,
                                  partner_lr=cfg.partner_lr,
                                  partner_weight_decay=cfg.partner_weight_decay,
                                  muon_exclude=getattr(task, "muon_exclude", None))
        self.params = [p for g in self.opt.param_groups for p in g["params"]]
        if self.world > 1:  # every rank starts from rank 0's weights
            import torch.distributed as dist

            for t in self.model.state_dict().values():
                dist.broadcast(t, 0)
        self.stepper = _Stepper(cfg, self.opt)
        self.recorder = _Band(self.opt) if band else None
        self.layers = LayerRecorder(self.opt, self.model, layer_stride(cfg.steps)) \
            if layers else None
        self.schedule_free = callable(getattr(self.opt, "eval", None))
        self.out = RunResult(cfg, info, id=run_id)
        self.updates = 0
        self.since_eval: list[float] = []
        self.done = False
        self.elapsed = 0.0
        self.key = {"run": cfg.key(), "task": {k: info.get(k) for k in ("name", "entry",
                                                                         "args")}}

    # -- checkpoints -------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        from lrkit.study.checkpoint import FORMAT, VERSION

        o = self.out
        return {
            "format": FORMAT, "version": VERSION, "config": self.key,
            "updates": self.updates, "since_eval": list(self.since_eval), "done": self.done,
            "elapsed": self.elapsed, "model": self.model.state_dict(),
            "optimizer": self.opt.state_dict(), "scheduler": self.stepper.impl.state_dict(),
            "rng": {"torch": torch.get_rng_state()},
            "monitor": None if self.recorder is None else self.recorder.state(),
            "layers": None if self.layers is None else self.layers.state(),
            "result": {"lr": o.lr, "train_loss": o.train_loss, "evals": o.evals,
                       "logs": o.logs, "status": o.status, "error": o.error},
        }

    def load(self, state: dict[str, Any], where: str) -> None:
        from lrkit.errors import StateError

        if state.get("config") != self.key:
            raise StateError(f"checkpoint {where!r} is from another run: saved "
                             f"{state.get('config')!r}, now {self.key!r} (remove it or start "
                             "without --resume)")
        try:
            self.model.load_state_dict(state["model"])
            self.opt.load_state_dict(state["optimizer"])
            self.stepper.impl.load_state_dict(state["scheduler"])
            torch.set_rng_state(state["rng"]["torch"])
            if self.recorder is not None:
                self.recorder.load(state["monitor"])
            if self.layers is not None and state.get("layers") is not None:
                self.layers.load(state["layers"])
            r = state["result"]
            o = self.out
            o.lr, o.train_loss = list(r["lr"]), list(r["train_loss"])
            o.evals = {k: list(v) for k, v in r["evals"].items()}
            o.logs = {k: list(v) for k, v in r["logs"].items()}
            o.status, o.error = str(r["status"]), r["error"]
            self.updates = int(state["updates"])
            self.since_eval = [float(v) for v in state["since_eval"]]
            self.done, self.elapsed = bool(state["done"]), float(state["elapsed"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise StateError(f"checkpoint {where!r} is invalid: {type(exc).__name__}: "
                             f"{exc}") from None

    # -- training ----------------------------------------------------------------------
    def _update(self, batch: Any) -> float:
        """One optimizer update on the global batch (this rank's share, in ``accumulate``
        micro-batches); returns the batch's mean loss (all ranks)."""
        run, k = self.run, self.cfg.accumulate
        if self.world == 1 and k == 1:  # the plain loop
            loss = run.loss(batch)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            return float(loss.detach().item())
        parts: list[tuple[Any, float]]
        own_split = getattr(run, "split", None)
        n = _batch_size(batch)
        if callable(own_split) or n is None:
            if not callable(own_split):
                raise TypeError("the batch holds no tensor to split for --accumulate/torchrun:"
                                " define split(batch, parts) on the run")
            pieces = list(own_split(batch, k * self.world))[self.rank::self.world]
            parts = [(p, 1.0 / (k * self.world)) for p in pieces]
        else:
            mine = torch.arange(self.rank, n, self.world)
            parts = [(_take(batch, idx), len(idx) / n) for idx in mine.tensor_split(k)]
        self.opt.zero_grad(set_to_none=True)
        total = torch.zeros((), dtype=torch.float64)
        for part, weight in parts:  # weights over all ranks' parts sum to 1
            loss = run.loss(part)
            (loss * weight).backward()
            total += loss.detach().double() * weight
        if self.world > 1:
            self._all_reduce_grads()
            import torch.distributed as dist

            dist.all_reduce(total)
        self.opt.step()
        return float(total)

    def _all_reduce_grads(self) -> None:
        """Sum the gradients over ranks (one collective; what DDP does, for any model)."""
        import torch.distributed as dist

        params = [p for p in self.params if p.requires_grad]
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        flat = torch.cat([p.grad.reshape(-1) for p in params if p.grad is not None])
        dist.all_reduce(flat)
        i = 0
        for p in params:
            assert p.grad is not None
            m = p.grad.numel()
            p.grad.copy_(flat[i:i + m].view_as(p.grad))
            i += m

    def _evaluate(self) -> dict[str, float]:
        self.model.eval()
        if self.schedule_free:  # evaluate the averaged weights (x), not the y sequence
            self.opt.eval()  # type: ignore[attr-defined]
        try:
            with torch.no_grad():
                metrics = self.run.evaluate()
        finally:
            self.model.train()
            if self.schedule_free:
                self.opt.train()  # type: ignore[attr-defined]
        return {str(k): float(v) for k, v in metrics.items()}

    def after_update(self, value: float) -> bool:
        """Record update ``self.updates`` (its rate and loss), evaluate when due, step the
        rate; False when the run must stop (horizon reached, loss not finite)."""
        out, cfg = self.out, self.cfg
        out.lr.append(float(self.opt.param_groups[0]["lr"]))
        out.train_loss.append(value)
        self.since_eval.append(value)
        if self.recorder is not None:
            self.recorder.record()
        if self.layers is not None:
            self.layers.record()
        self.updates += 1
        metric = None
        if self.updates % self.task.eval_every == 0 or self.updates == cfg.steps:
            metric = self._record_eval()
        self.stepper.after_update(self.updates, metric if math.isfinite(value) else None)
        if not math.isfinite(value):
            out.status = "diverged"
            return False
        return self.updates < cfg.steps

    def _record_eval(self) -> float | None:
        metrics = self._evaluate()
        ev = self.out.evals
        ev.setdefault("step", []).append(float(self.updates))
        mean = sum(self.since_eval) / len(self.since_eval) if self.since_eval else math.nan
        metrics.setdefault("mean_train_loss", mean)
        for k, v in metrics.items():
            ev.setdefault(k, []).append(v)
        self.since_eval = []
        m = metrics.get(self.task.metric)
        return m if m is not None and math.isfinite(m) else None

    def train(self, on_step: OnStep | None, ckpt: Any | None) -> None:
        from lrkit.study.checkpoint import save_atomic

        save = ckpt is not None and self.rank == 0
        t0 = time.perf_counter()

        def checkpoint() -> None:
            nonlocal t0
            if save and ckpt is not None:
                now = time.perf_counter()
                self.elapsed += now - t0
                t0 = now
                save_atomic(self.state(), ckpt.path)

        if is_callback_run(self.run):
            self._train_callback(on_step)
        else:
            go = self.updates < self.cfg.steps
            while go:
                value = self._update(self.run.batch(self.updates))
                go = self.after_update(value)
                if on_step is not None:
                    on_step(self.updates, self.cfg.steps)
                if go and ckpt is not None and self.updates % ckpt.every == 0:
                    checkpoint()
        self.done = True
        checkpoint()
        if not save:
            self.elapsed += time.perf_counter() - t0

    def _train_callback(self, on_step: OnStep | None) -> None:
        loop = self

        class Context:
            optimizer = loop.opt
            steps = loop.cfg.steps

            @staticmethod
            def step(loss: Any) -> bool:
                if loop.updates >= loop.cfg.steps or loop.out.status != "finished":
                    return False
                value = float(loss.detach().item() if isinstance(loss, torch.Tensor)
                              else loss)
                go = loop.after_update(value)
                if on_step is not None:
                    on_step(loop.updates, loop.cfg.steps)
                return go

            @staticmethod
            def log(**metrics: float) -> None:
                logs = loop.out.logs
                logs.setdefault("step", []).append(float(loop.updates))
                for k, v in metrics.items():
                    logs.setdefault(k, []).append(float(v))

        self.model.train()
        self.run.train(Context())
        ev = self.out.evals.get("step", [])
        if self.updates and (not ev or ev[-1] != self.updates) and \
                self.out.status == "finished":
            self._record_eval()


class _CallerError(Exception):
    """An exception of the caller's ``on_step`` (not the task's): re-raised as it is."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(str(original))
        self.original = original


def _guard(on_step: OnStep | None) -> OnStep | None:
    if on_step is None:
        return None
    step = on_step

    def guarded(updates: int, steps: int) -> None:
        try:
            step(updates, steps)
        except Exception as exc:
            raise _CallerError(exc) from exc

    return guarded


def run_one(
    task: Any,
    cfg: RunConfig,
    *,
    threads: int = 1,
    band: bool | None = None,
    layers: bool = True,
    checkpoint: Any | None = None,
    on_step: OnStep | None = None,
    info: dict[str, Any] | None = None,
    run_id: str = "",
) -> RunResult:
    """Train ``task`` once under ``cfg``; ``on_step(updates, steps)`` after each update.

    ``band`` records the effective-rate band (default: for Adam-type optimizers); ``layers``
    the per-layer fields every :func:`lrkit.study.layers.layer_stride` updates (the run
    file's ``layers``). A schedule-free optimizer is put in eval mode around each evaluation
    and in train mode for training. A run whose
    loss becomes non-finite stops and is marked ``diverged``; one whose task raises is marked
    ``failed`` with the error (the numbers recorded so far are kept).

    ``checkpoint`` (a :class:`lrkit.study.checkpoint.Checkpointing`) saves the whole run
    state every ``every`` updates and at the end, atomically; with ``resume`` a run continues
    from its file and ends bit for bit as an uninterrupted run (a finished run's file gives
    its result without training). Under an initialized ``torch.distributed`` group each process
    takes its share of every batch and the gradients are summed over processes before each
    update (data parallel for any model; the task's code needs no DDP wrapper).
    """
    set_determinism(threads)
    if band is None:
        band = cfg.optimizer in ("adam", "adamw")
    info = info if info is not None else task_info(task)
    start = time.perf_counter()
    loop: _Loop | None = None
    try:
        loop = _Loop(task, cfg, band, info, run_id, layers)
        if checkpoint is not None and checkpoint.resume and Path(checkpoint.path).exists():
            from lrkit.study.checkpoint import load_checkpoint

            loop.load(load_checkpoint(checkpoint.path), str(checkpoint.path))
        if not loop.done:
            loop.train(_guard(on_step), checkpoint)
        out = loop.out
        out.wall_time_s = loop.elapsed
    except (KeyboardInterrupt, SystemExit):
        raise
    except _CallerError as exc:
        raise exc.original from None
    except Exception as exc:
        from lrkit.errors import StateError

        if isinstance(exc, StateError):
            raise
        out = loop.out if loop is not None else RunResult(cfg, info, id=run_id)
        out.status = "failed"
        out.error = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        out.wall_time_s = time.perf_counter() - start
    if loop is not None and loop.recorder is not None:
        out.band = {k: list(v) for k, v in loop.recorder.data.items()}
    if loop is not None and loop.layers is not None:
        out.layers = loop.layers.data()
        if loop.layers.tracking is not None:
            loop.layers.tracking.remove()
    return out
