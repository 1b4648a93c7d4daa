"""Executors give identical results: local worker processes against one after another."""

from __future__ import annotations

from typing import Any

from lrkit.study.api import execute_study, plan_runs, resolve_task
from lrkit.study.executors import InProcess, LocalWorkers


def _numbers(runs: list[Any]) -> list[dict[str, Any]]:
    out = []
    for r in runs:
        d = r.to_dict()
        d.pop("wall_time_s")
        out.append(d)
    return out


def test_local_workers_are_bit_identical_to_one_after_another() -> None:
    task, source, info = resolve_task("digits", {"epochs": 1})
    configs = plan_runs(task, schedules=["plateau", "onecycle"], optimizers=["adamw"],
                        seeds=[0, 1])
    events: list[tuple[int, int, int]] = []
    seq, stopped = execute_study(source, configs, info, executor=InProcess())
    assert not stopped
    par, stopped = execute_study(source, configs, info, executor=LocalWorkers(2),
                                 progress=_Recorder(events))
    assert not stopped
    assert [r.id for r in par] == [r.id for r in seq]  # config order, whatever finished first
    assert _numbers(par) == _numbers(seq)
    assert all(r.status == "finished" for r in par)
    # progress: every run reported its start (0 updates) and its last update
    assert {(i, 0) for i in range(4)} <= {(i, u) for i, u, _ in events}
    assert {(i, 23) for i in range(4)} <= {(i, u) for i, u, _ in events}


class _Recorder:
    def __init__(self, events: list[tuple[int, int, int]]) -> None:
        self.events = events

    def event(self, index: int, updates: int, steps: int) -> None:
        self.events.append((index, updates, steps))

    def end(self, index: int, result: Any) -> None:
        pass
