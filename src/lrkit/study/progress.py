"""Progress of a study on stderr: every active run (its step, ETA) and the whole study.

On a terminal: rich bars, one per running run (step m/n, elapsed, remaining) under one for
the study (all updates of all runs). Elsewhere (logs, CI): one line per finished run with the
study's ETA. Nothing when quiet.
"""

from __future__ import annotations

import sys
import time
from typing import Any

__all__ = ["Progress"]


def _hms(s: float) -> str:
    s = max(0, round(s))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else \
        f"{s // 60}:{s % 60:02d}"


class Progress:
    """Feeds on executor events ``event(index, updates, steps)`` and finished results."""

    def __init__(self, quiet: bool, labels: dict[int, str], steps: dict[int, int],
                 metric: str, done_before: int = 0) -> None:
        self.labels, self.steps, self.metric = labels, steps, metric
        self.total_runs = len(labels) + done_before
        self.finished = done_before
        self.seen: dict[int, int] = {}
        self.ended: set[int] = set()
        self.bars: dict[int, Any] = {}
        self.bar: Any = None
        self.lines = False
        self.t0 = time.monotonic()
        if quiet:
            return
        from rich.console import Console

        console = Console(stderr=True)
        if not console.is_terminal:
            self.lines = True
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as Bars

        self.bar = Bars(TextColumn("{task.description:<40}"), BarColumn(),
                        MofNCompleteColumn(), TextColumn("steps"), TimeElapsedColumn(),
                        TimeRemainingColumn(), console=console)
        total = sum(steps.values())
        self.overall = self.bar.add_task(f"study: {len(labels)} runs", total=total)

    def __enter__(self) -> Progress:
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def event(self, index: int, updates: int, steps: int) -> None:
        if index in self.ended:  # a late event of a finished run (queues are not ordered)
            return
        before = self.seen.get(index, 0)
        self.seen[index] = max(before, updates)
        if self.bar is None:
            return
        if index not in self.bars:
            self.bars[index] = self.bar.add_task(self.labels.get(index, str(index)),
                                                 total=steps)
        self.bar.update(self.bars[index], completed=updates)
        self.bar.advance(self.overall, max(0, updates - before))

    def eta(self) -> float:
        done = sum(self.seen.values())
        total = sum(self.steps.values())
        elapsed = time.monotonic() - self.t0
        return elapsed * (total - done) / done if done else float("nan")

    def end(self, index: int, result: Any) -> None:
        self.ended.add(index)
        self.finished += 1
        steps = self.steps.get(index, 0)
        before = self.seen.get(index, 0)
        self.seen[index] = steps
        if self.bar is not None:
            self.bar.advance(self.overall, max(0, steps - before))
            if index in self.bars:
                self.bar.remove_task(self.bars.pop(index))
        if self.lines:
            if result.status == "finished":
                what = f"{self.metric} {result.final.get(self.metric, float('nan')):.4f}"
            else:
                what = result.status + (f": {result.error}" if result.error else "")
            eta = self.eta()
            tail = f"; study ETA {_hms(eta)}" if eta == eta and self.finished < \
                self.total_runs else ""
            print(f"[{self.finished}/{self.total_runs}] {result.config.label}: {what} "
                  f"({result.wall_time_s:.1f} s, {len(result.lr)}/{steps} steps){tail}",
                  file=sys.stderr, flush=True)
