"""Study throughput: the default ``lrkit compare``, 1 vs 2 local workers, Ray's overhead.

- the README's ``lrkit compare`` with every default (digits, eight schedules, sgd and adamw,
  three seeds, workers from the CPU count), as a user runs it (a fresh process, report
  written), against the issue's target of 180 s on 2 cores;
- one study (digits 10 epochs, 4 schedules, 2 optimizers, 2 seeds = 16 runs of 230 updates)
  on 1 worker (in this process) and on 2 local worker processes: the speed-up, in one run,
  with and without the start of the worker processes (measured apart: 2 one-update runs);
- the same study on a local Ray instance with 2 CPUs (Ray's start excluded, reported
  apart): Ray's overhead per run over local workers.

    python benchmarks/bench_study.py            # all rows (about 3-5 minutes on 2 cores)
    python benchmarks/bench_study.py --quick    # without the default compare
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SECTION = "lrkit compare: a study's wall time (2 cores)"


def _default_compare() -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as d:
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        t = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "lrkit", "compare", "-o", "rep", "-q"],
                           cwd=d, env=env, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - t
    if r.returncode != 0:
        return [{"section": SECTION, "name": "default lrkit compare failed", "value": None,
                 "note": r.stderr.strip().splitlines()[-1][:120] if r.stderr else ""}]
    return [{"section": SECTION, "name": "default `lrkit compare` (48 runs x 230 updates, "
             "report included)", "value": wall, "unit": "s", "ok": wall <= 180,
             "note": "target <= 180 s"}]


def _study(executor: Any, start_only: bool = False) -> tuple[float, int]:
    from lrkit.study.api import execute_study, plan_runs, resolve_task

    task, source, info = resolve_task("digits", {"epochs": 10})
    configs = plan_runs(task, schedules=["setr", "step", "cosine-warmup", "constant"],
                        optimizers=["sgd", "adamw"], seeds=[0, 1])
    if start_only:
        configs = plan_runs(task, schedules=["constant"], optimizers=["sgd"], seeds=[0, 1],
                            steps=1)
    t = time.perf_counter()
    runs, _ = execute_study(source, configs, info, executor=executor)
    wall = time.perf_counter() - t
    assert all(r.status == "finished" for r in runs)
    return wall, len(runs)


def measure(quick: bool = False) -> list[dict[str, Any]]:
    from lrkit.study.executors import InProcess, LocalWorkers

    rows = [] if quick else _default_compare()
    one, n = _study(InProcess())
    two, _ = _study(LocalWorkers(2))
    start, _ = _study(LocalWorkers(2), start_only=True)
    rows += [
        {"section": SECTION, "name": f"{n} runs x 230 updates, 1 worker (in process)",
         "value": one, "unit": "s"},
        {"section": SECTION, "name": f"{n} runs x 230 updates, 2 local worker processes",
         "value": two, "unit": "s", "note": "includes starting the 2 processes"},
        {"section": SECTION, "name": "starting 2 worker processes (2 one-update runs)",
         "value": start, "unit": "s", "note": "spawn + import torch, lrkit, the task"},
        {"section": SECTION, "name": "speed-up, 2 workers over 1", "value": one / two,
         "unit": "x"},
        {"section": SECTION, "name": "speed-up, 2 workers over 1, start excluded",
         "value": one / max(two - start, 1e-9), "unit": "x"},
    ]
    try:
        import ray
    except ImportError:
        return [*rows, {"section": SECTION, "name": "Ray", "value": "not installed"}]
    from lrkit.study.executors import RayExecutor

    t = time.perf_counter()
    executor = RayExecutor(2)
    start = time.perf_counter() - t
    with_ray, _ = _study(executor)
    ray.shutdown()
    rows += [
        {"section": SECTION, "name": "Ray: starting a local instance (2 CPUs)", "value": start,
         "unit": "s"},
        {"section": SECTION, "name": f"{n} runs on Ray (2 CPUs)", "value": with_ray,
         "unit": "s"},
        {"section": SECTION, "name": "Ray overhead per run over 2 local workers",
         "value": (with_ray - two) / n, "unit": "s"},
    ]
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="skip the default lrkit compare")
    args = p.parse_args()
    for r in measure(args.quick):
        v = r["value"]
        text = f"{v:.3g} {r.get('unit', '')}" if isinstance(v, float) else str(v)
        print(f"{r['name']:<60} {text:>12}  {r.get('note', '')}")


if __name__ == "__main__":
    main()
