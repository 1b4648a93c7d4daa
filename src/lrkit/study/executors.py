"""Where a study's runs execute: in this process, in local worker processes, or on Ray.

Every executor runs the same function (:func:`execute`) on the same jobs and yields the
same :class:`~lrkit.study.record.RunResult` objects (bit for bit: each run seeds everything
it uses and fixes its thread count), in the order they finish. Progress comes back as
``(index, updates, steps)`` events through ``on_event``, at most a few per second per run.

- :class:`InProcess`: one run after another (torchrun, debugging).
- :class:`LocalWorkers`: ``n`` fresh Python processes (``spawn``: no forked torch threads);
  a worker whose parent process dies stops at its next update.
- :class:`RayExecutor`: Ray tasks on the cluster at ``address`` or a local Ray instance
  (``pip install lrkit[ray]``). The task is re-created in each worker from its entry point.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from lrkit.errors import ConfigError
from lrkit.study.config import RunConfig
from lrkit.study.record import RunResult

__all__ = ["Executor", "InProcess", "Job", "LocalWorkers", "RayExecutor", "TaskSource",
           "execute", "make_executor"]

OnEvent = Callable[[int, int, int], None]
_THROTTLE_S = 0.25


@dataclasses.dataclass(frozen=True)
class TaskSource:
    """How a worker gets the task: by entry point and arguments (re-created there, with the
    study's folder first on ``sys.path``), or as a picklable object."""

    entry: str | None = None
    args: tuple[tuple[str, Any], ...] = ()
    cwd: str = ""
    obj: Any = None

    def load(self) -> Any:
        if self.obj is not None:
            return self.obj
        from lrkit.tasks.registry import load_task

        if self.cwd and self.cwd not in sys.path:
            sys.path.insert(0, self.cwd)
        assert self.entry is not None
        return load_task(self.entry, dict(self.args))


@dataclasses.dataclass(frozen=True)
class Job:
    """One run to execute: its place in the study, config, id, checkpointing, threads."""

    index: int
    config: RunConfig
    run_id: str
    info: dict[str, Any]
    threads: int = 1
    checkpoint: Any = None


_TASKS: dict[Any, Any] = {}


def execute(source: TaskSource, job: Job, report: OnEvent | None = None) -> RunResult:
    """Run one job (in whatever process this is); ``report(index, updates, steps)``."""
    from lrkit.study.runner import run_one

    key = (source.entry, source.args, source.cwd, id(source.obj))
    try:
        if key not in _TASKS:
            _TASKS[key] = source.load()
        task = _TASKS[key]
    except Exception as exc:  # the entry point worked in the parent; say what broke here
        out = RunResult(job.config, job.info, status="failed", id=job.run_id)
        out.error = f"loading the task failed: {type(exc).__name__}: {exc}".splitlines()[0]
        return out
    on_step = None
    if report is not None:
        last = [0.0]

        def on_step(updates: int, steps: int) -> None:
            now = time.monotonic()
            if now - last[0] >= _THROTTLE_S or updates >= steps:
                last[0] = now
                report(job.index, updates, steps)

    return run_one(task, job.config, threads=job.threads, checkpoint=job.checkpoint,
                   on_step=on_step, info=job.info, run_id=job.run_id)


class Executor(Protocol):
    """Runs jobs; yields their results as they finish (``close`` stops what still runs)."""

    name: str

    def run(self, source: TaskSource, jobs: Sequence[Job],
            on_event: OnEvent | None = None) -> Iterator[RunResult]: ...

    def close(self) -> None: ...


class InProcess:
    """One job after another in this process."""

    name = "in-process"

    def run(self, source: TaskSource, jobs: Sequence[Job],
            on_event: OnEvent | None = None) -> Iterator[RunResult]:
        for job in jobs:
            if on_event is not None:
                on_event(job.index, 0, job.config.steps)
            yield execute(source, job, on_event)

    def close(self) -> None:
        pass


# -- local worker processes ------------------------------------------------------------------
_QUEUE: Any = None
_PARENT = 0


def _watch_parent(parent: int) -> None:
    while True:
        if os.getppid() != parent:  # the study was killed: stop instead of writing on
            os._exit(3)
        time.sleep(0.05)


def _init_worker(queue: Any, parent: int) -> None:
    import threading

    global _QUEUE, _PARENT
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides what Ctrl-C stops
    _QUEUE, _PARENT = queue, parent
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()


def _report_to_parent(index: int, updates: int, steps: int) -> None:
    _QUEUE.put((index, updates, steps))


def _execute_in_worker(source: TaskSource, job: Job) -> RunResult:
    _report_to_parent(job.index, 0, job.config.steps)
    return execute(source, job, _report_to_parent)


class LocalWorkers:
    """``workers`` fresh processes of this Python (``spawn``), one run each at a time."""

    name = "local"

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.pool: Any = None

    def run(self, source: TaskSource, jobs: Sequence[Job],
            on_event: OnEvent | None = None) -> Iterator[RunResult]:
        import multiprocessing as mp
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
        from concurrent.futures.process import BrokenProcessPool

        ctx = mp.get_context("spawn")
        queue = ctx.Queue()
        self.pool = ProcessPoolExecutor(max_workers=max(1, min(self.workers, len(jobs))),
                                        mp_context=ctx, initializer=_init_worker,
                                        initargs=(queue, os.getpid()))
        futures = {self.pool.submit(_execute_in_worker, source, job): job for job in jobs}
        pending = set(futures)

        def drain() -> None:
            while True:
                try:
                    ev = queue.get_nowait()
                except Exception:  # queue.Empty (or a closed queue at shutdown)
                    return
                if on_event is not None:
                    on_event(*ev)

        while pending:
            done, pending = wait(pending, timeout=0.1, return_when=FIRST_COMPLETED)
            drain()
            for fut in done:
                try:
                    yield fut.result()
                except BrokenProcessPool as exc:  # a worker died (killed, out of memory)
                    job = futures[fut]
                    out = RunResult(job.config, job.info, status="failed", id=job.run_id)
                    out.error = f"the worker process died: {exc}".splitlines()[0][:300]
                    yield out
        drain()
        self.close()

    def close(self) -> None:
        if self.pool is None:
            return
        pool, self.pool = self.pool, None
        procs = list(getattr(pool, "_processes", {}).values())  # no public terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            if p.is_alive():
                p.terminate()
        for p in procs:
            p.join(timeout=5)


# -- Ray ---------------------------------------------------------------------------------------
def check_ray_address(address: str) -> None:
    """Raise :class:`ConfigError` unless ``host:port`` (or ``ray://host:port``) accepts a TCP
    connection within 5 s (``auto`` is left to Ray)."""
    if address == "auto":
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"ray-address={address!r} is invalid: expected HOST:PORT, "
                          "ray://HOST:PORT or auto")
    try:
        with socket.create_connection((host, int(port)), timeout=5):
            pass
    except OSError as exc:
        raise ConfigError(f"ray-address={address!r} cannot be reached: "
                          f"{exc.strerror or exc}") from None


class RayExecutor:
    """Ray tasks, one CPU (``threads``) each: on the cluster at ``address``, else on a local
    Ray instance with ``workers`` CPUs that lives as long as the study."""

    name = "ray"

    def __init__(self, workers: int, address: str | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise ConfigError("backend='ray' needs Ray: pip install 'lrkit[ray]'") from None
        self.ray = ray
        self.started = False
        if address:
            check_ray_address(address)
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                      "configure_logging": False}
            if address:
                kwargs["address"] = address
            else:
                kwargs["num_cpus"] = workers
            try:
                ray.init(**kwargs)
            except Exception as exc:
                raise ConfigError(f"ray-address={address!r}: Ray did not start: "
                                  f"{type(exc).__name__}: {exc}".splitlines()[0]) from None
            self.started = True
        self.queue: Any = None
        self.pending: list[Any] = []

    def run(self, source: TaskSource, jobs: Sequence[Job],
            on_event: OnEvent | None = None) -> Iterator[RunResult]:
        ray = self.ray
        from ray.util.queue import Queue

        self.queue = queue = Queue()

        def remote_execute(source: TaskSource, job: Job) -> RunResult:
            def report(index: int, updates: int, steps: int) -> None:
                queue.put_nowait((index, updates, steps))

            report(job.index, 0, job.config.steps)
            return execute(source, job, report)

        fn = ray.remote(num_cpus=1)(remote_execute)
        pending = [fn.options(num_cpus=job.threads).remote(source, job) for job in jobs]
        self.pending = pending

        def drain() -> None:
            n = queue.qsize()
            if n and on_event is not None:
                for ev in queue.get_nowait_batch(n):
                    on_event(*ev)

        while pending:
            done, pending = ray.wait(pending, num_returns=1, timeout=0.2)
            self.pending = pending
            drain()
            for ref in done:
                yield ray.get(ref)
        drain()

    def close(self) -> None:
        for ref in self.pending:
            with contextlib.suppress(Exception):  # already finished or gone
                self.ray.cancel(ref, force=True)
        self.pending = []
        if self.queue is not None:
            with contextlib.suppress(Exception):  # the actor may be gone with the cluster
                self.queue.shutdown()
            self.queue = None
        if self.started:
            self.ray.shutdown()
            self.started = False


def make_executor(backend: str, workers: int, ray_address: str | None = None) -> Any:
    """``"local"`` (``workers`` processes; 1 means in this process) or ``"ray"``."""
    if backend == "ray":
        return RayExecutor(workers, ray_address)
    if backend != "local":
        raise ConfigError(f"backend={backend!r} is invalid: expected 'local' or 'ray'")
    return InProcess() if workers <= 1 else LocalWorkers(workers)
