"""Run a study from Python: :func:`compare` on a built-in task, an entry point or a task
object; the CLI (``lrkit compare``) is built from the same pieces.

Example (a small study on the built-in digits task):

    >>> from lrkit.study import compare
    >>> s = compare("digits", task_args={"epochs": 1}, schedules=["onecycle", "constant"],
    ...             optimizers=["adamw"], seeds=[0, 1], workers=1)   # doctest: +SKIP
    >>> print(s.verdicts[0].sentence)                                 # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from lrkit._validate import check_int
from lrkit.errors import ConfigError
from lrkit.study.config import RunConfig, base_rates, partner_rates, resolve_schedules
from lrkit.study.executors import Job, TaskSource, make_executor
from lrkit.study.record import RunResult, run_id
from lrkit.study.runner import task_info
from lrkit.study.stats import OptimizerVerdict, summarize

__all__ = ["Study", "compare", "default_workers", "execute_study", "plan_runs",
           "resolve_task"]


def default_workers(n_runs: int) -> int:
    """Worker processes by default: the CPUs this process may use, at most one per run."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, n_runs))


def resolve_task(task: Any, task_args: Mapping[str, Any] | None = None
                 ) -> tuple[Any, TaskSource, dict[str, Any]]:
    """(task object, how workers get it, the run files' task record) for a name, an entry
    point (``module:factory``, ``file.py:factory``) or a task object."""
    from lrkit.tasks.base import check_task
    from lrkit.tasks.registry import load_task

    args = dict(task_args or {})
    if isinstance(task, str):
        obj = load_task(task, args)
        entry = task
        module, sep, attr = task.rpartition(":")
        if sep and module.endswith(".py"):  # workers may start elsewhere: absolute path
            entry = f"{Path(module).resolve()}:{attr}"
        source = TaskSource(entry=entry, args=tuple(sorted(args.items())), cwd=os.getcwd())
        return obj, source, task_info(obj, task, args)
    if args:
        raise ConfigError("task_args are for a task given by name or entry point; a task "
                          "object is used as it is")
    obj = check_task(task, type(task).__name__)
    return obj, TaskSource(obj=obj), task_info(obj)


def plan_runs(task: Any, *, schedules: Sequence[str] | None = None,
              specs: Sequence[str] = (), optimizers: Sequence[str] = ("sgd", "adamw"),
              lrs: Mapping[str, float] | None = None, seeds: Sequence[int] = (0, 1, 2),
              steps: int | None = None, accumulate: int = 1) -> list[RunConfig]:
    """Every (schedule, optimizer, seed) of a study, schedule-major."""
    if not optimizers:
        raise ConfigError("optimizers=[] is invalid: give at least one optimizer")
    if not seeds:
        raise ConfigError("seeds=[] is invalid: give at least one seed")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds={list(seeds)!r} is invalid: a seed is repeated")
    steps = check_int("steps", steps if steps is not None else task.steps, low=1)
    chosen = resolve_schedules(schedules, specs, task, steps)
    if not chosen:
        raise ConfigError("schedules=[] is invalid: give at least one schedule")
    rates = base_rates(task, optimizers, lrs)
    partners = partner_rates(task, optimizers, lrs)
    return [RunConfig(s, o, rates[o][0], int(seed), steps, rates[o][1], accumulate,
                      *partners.get(o, (None, None)))
            for s in chosen for o in optimizers for seed in seeds]


def execute_study(source: TaskSource, configs: Sequence[RunConfig], info: dict[str, Any], *,
                  executor: Any, threads: int = 1, checkpoint_dir: Path | None = None,
                  checkpoint_every: int | None = None, resume: bool = False,
                  progress: Any = None,
                  on_result: Callable[[RunResult], None] | None = None
                  ) -> tuple[list[RunResult], bool]:
    """Run every config through ``executor``; (results in config order, interrupted).

    A Ctrl-C (KeyboardInterrupt) stops the executor and returns what finished.
    """
    from lrkit.study.checkpoint import Checkpointing, run_file

    jobs = []
    for i, cfg in enumerate(configs):
        ckpt = None
        if checkpoint_dir is not None:
            ckpt = Checkpointing(run_file(checkpoint_dir, cfg.label).resolve(),
                                 checkpoint_every or 100, resume)
        jobs.append(Job(i, cfg, run_id(i, cfg), info, threads, ckpt))
    by_id = {j.run_id: j.index for j in jobs}
    done: dict[int, RunResult] = {}
    interrupted = False
    try:
        for result in executor.run(source, jobs, progress.event if progress else None):
            index = by_id[result.id]
            done[index] = result
            if progress is not None:
                progress.end(index, result)
            if on_result is not None:
                on_result(result)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        executor.close()
    return [done[i] for i in sorted(done)], interrupted


@dataclasses.dataclass
class Study:
    """The outcome of :func:`compare`: the runs (config order), the verdict per optimizer
    and, when an output folder was given, the report's path."""

    task: dict[str, Any]
    runs: list[RunResult]
    verdicts: list[OptimizerVerdict]
    report: Path | None = None

    @property
    def failed(self) -> list[RunResult]:
        return [r for r in self.runs if r.status == "failed"]


def compare(
    task: Any = "digits",
    *,
    task_args: Mapping[str, Any] | None = None,
    schedules: Sequence[str] | None = None,
    specs: Sequence[str] = (),
    optimizers: Sequence[str] = ("sgd", "adamw"),
    lrs: Mapping[str, float] | None = None,
    seeds: Sequence[int] = (0, 1, 2),
    steps: int | None = None,
    accumulate: int = 1,
    threads: int = 1,
    workers: int | None = None,
    backend: str = "local",
    ray_address: str | None = None,
    output: str | os.PathLike[str] | None = None,
    force: bool = False,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    checkpoint_every: int | None = None,
    resume: bool = False,
) -> Study:
    """Train ``task`` under every schedule x optimizer x seed and judge the schedules.

    Args:
        task: a built-in name (``"digits"``, ``"tinylm"``), an entry point
            (``"pkg.module:factory"``, ``"path/file.py:factory"``, called with
            ``task_args``) or a task object (:mod:`lrkit.tasks.base`; picklable when
            ``workers > 1`` or on Ray).
        schedules: preset names (default: the task's schedules or lrkit's eight presets);
            ``specs``: extra ``[label=]spec`` strings.
        optimizers, lrs: optimizer names and base rates (default: the task's, else lrkit's).
        seeds: one run per seed per configuration (paired across schedules).
        steps: optimizer updates per run (default ``task.steps``); ``accumulate``:
            micro-batches per update; ``threads``: torch threads per run.
        workers: parallel runs (default: the CPU count; 1 runs in this process);
            ``backend``: ``"local"`` or ``"ray"`` (``ray_address`` or a local instance).
        output: write the report folder here (must be new or empty, unless ``force``).
        checkpoint_dir, checkpoint_every, resume: crash-safe runs; with ``resume`` finished
            runs are read back, unfinished ones continue bit for bit.

    Raises:
        ConfigError: a bad argument, task or Ray address (nothing is written then).
    """
    obj, source, info = resolve_task(task, task_args)
    configs = plan_runs(obj, schedules=schedules, specs=specs, optimizers=optimizers,
                        lrs=lrs, seeds=seeds, steps=steps, accumulate=accumulate)
    out = Path(output) if output is not None else None
    if out is not None and out.exists() and any(out.iterdir()) and not force:
        raise ConfigError(f"output={str(out)!r} exists and is not empty: pass force=True")
    n = workers if workers is not None else default_workers(len(configs))
    check_int("workers", n, low=1)
    ckdir = Path(checkpoint_dir) if checkpoint_dir is not None else None
    if ckdir is not None:
        ckdir.mkdir(parents=True, exist_ok=True)
    executor = make_executor(backend, n, ray_address)
    runs, interrupted = execute_study(source, configs, info, executor=executor,
                                      threads=threads, checkpoint_dir=ckdir,
                                      checkpoint_every=checkpoint_every, resume=resume)
    if interrupted:
        raise KeyboardInterrupt
    verdicts = summarize(runs, info["metric"], info["higher_is_better"])
    report = None
    if out is not None:
        from lrkit.study.report import write_report

        if out.exists() and force:
            shutil.rmtree(out)
        out.mkdir(parents=True, exist_ok=True)
        report = write_report(out, runs, task=info, study=study_facts(
            configs, runs, n, executor.name, threads))
    return Study(info, runs, verdicts, report)


def study_facts(configs: Sequence[RunConfig], runs: Sequence[RunResult], workers: int,
                backend: str, threads: int, processes: int = 1) -> dict[str, Any]:
    """The facts at the top of a report (and in results.json's ``study``)."""
    first = configs[0]
    return {
        "runs": f"{len(runs)} of {len(configs)}",
        "seeds": list(dict.fromkeys(c.seed for c in configs)),
        "steps per run": first.steps, "accumulate": first.accumulate,
        "optimizers": list(dict.fromkeys(c.optimizer for c in configs)),
        "backend": backend, "workers": workers, "threads per run": threads,
        "processes per run": processes,
        "training time (sum over runs)": f"{sum(r.wall_time_s for r in runs):.1f} s",
    }
