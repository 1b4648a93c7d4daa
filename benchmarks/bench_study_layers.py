"""Cost of the per-layer record in a study run: ``run_one`` with and without ``layers``.

The digits task (default 10 epochs, 230 updates, a record every 11 updates), SGD and
AdamW, seed 0, one thread; the variants alternate and the median of ``repeats`` training
times (the run's ``wall_time_s``) is kept. Prints the ratio with / without per optimizer.

Run alone: ``python benchmarks/bench_study_layers.py``.
"""

from __future__ import annotations

import statistics

from lrkit.study import run_one
from lrkit.study.api import plan_runs
from lrkit.tasks.digits import Digits


def main(repeats: int = 5) -> None:
    task = Digits()
    for opt in ("sgd", "adamw"):
        cfg = plan_runs(task, schedules=["cosine-warmup"], optimizers=[opt], seeds=[0])[0]
        times: dict[bool, list[float]] = {True: [], False: []}
        run_one(task, cfg, layers=False)  # warm-up: data, first-call overheads
        for _ in range(repeats):
            for layers in (False, True):
                times[layers].append(run_one(task, cfg, layers=layers).wall_time_s)
        off, on = (statistics.median(times[k]) for k in (False, True))
        print(f"{opt:6s} {cfg.steps} updates: without layers {off:.3f} s, with {on:.3f} s, "
              f"ratio {on / off:.3f}")


if __name__ == "__main__":
    main()
