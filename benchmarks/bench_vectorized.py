"""Vectorized evaluation: a whole schedule at once vs stepping torch's scheduler.

Poly-with-warmup over 10^6 steps (10^4 linear warmup steps from 0, then ``power=0.9`` decay
to 0, base rate 0.1), computed four ways in one process:

- ``lrkit``: ``schedule(np.arange(n))``, the public vectorized call (validation included);
- ``hand``: the same schedule typed as one NumPy float64 expression (the limit to approach);
- ``lrkit tensor``: ``schedule.eval_tensor(torch.arange(n, dtype=float64))`` on the CPU;
- ``LambdaLR``: ``torch.optim.lr_scheduler.LambdaLR`` with the same multiplier, stepped ``n``
  times (one parameter group, no optimizer work between steps, ``get_last_lr`` not read).

Run alone: ``python benchmarks/bench_vectorized.py [--steps N] [--profile]``.
``--profile`` prints where lrkit's vectorized call spends its time (cProfile, tottime).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
import timeit
from collections.abc import Callable
from typing import Any

import numpy as np

from lrkit import Poly, Schedule, Warmup

BASE_LR = 0.1
WARMUP = 10_000
POWER = 0.9


def make_schedule(n: int) -> Schedule:
    """Poly-with-warmup over ``n`` steps: ``WARMUP`` linear steps, then poly to 0."""
    return Warmup(Poly(total_steps=n - WARMUP, power=POWER), steps=WARMUP).bind(BASE_LR)


def make_lambda(n: int) -> Callable[[int], float]:
    """The same schedule as a LambdaLR multiplier (scalar Python, as users write it)."""
    total = n - WARMUP

    def factor(step: int) -> float:
        if step < WARMUP:
            return step / WARMUP
        return (1.0 - min(step - WARMUP, total) / total) ** POWER

    return factor


def hand_numpy(t: np.ndarray, n: int) -> np.ndarray:
    """The schedule as one hand-written NumPy float64 expression."""
    total = float(n - WARMUP)
    decay = (1.0 - np.minimum(np.maximum(t - WARMUP, 0.0), total) / total) ** POWER
    return BASE_LR * np.where(t < WARMUP, t / WARMUP, decay)


def best(fn: Callable[[], Any], repeat: int = 7) -> float:
    """Best wall time of ``fn()`` in seconds over ``repeat`` runs (after one warm-up run)."""
    fn()
    return min(timeit.repeat(fn, number=1, repeat=repeat))


def time_lambdalr(n: int) -> float:
    import torch

    param = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([param], lr=BASE_LR)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, make_lambda(n))
    opt.step()  # no grads: a no-op that silences torch's call-order warning
    step = sched.step
    start = time.perf_counter()
    for _ in range(n - 1):
        step()
    return time.perf_counter() - start


def check_agreement(n: int) -> float:
    """Max |lrkit - LambdaLR| over the first 20 000 steps and |lrkit - hand| over all ``n``."""
    import torch

    sched = make_schedule(n)
    t = np.arange(n, dtype=np.float64)
    err = float(np.max(np.abs(sched(t) - hand_numpy(t, n))))
    param = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([param], lr=BASE_LR)
    lam = torch.optim.lr_scheduler.LambdaLR(opt, make_lambda(n))
    opt.step()
    m = min(n, 20_000)
    ref = np.empty(m)
    for i in range(m):
        ref[i] = opt.param_groups[0]["lr"]
        lam.step()
    return max(err, float(np.max(np.abs(sched(t[:m]) - ref))))


def measure(n: int = 1_000_000) -> list[dict[str, Any]]:
    """Rows for the table: timings in ms and the ratios measured in this run."""
    import torch

    sched = make_schedule(n)
    t = np.arange(n, dtype=np.float64)
    tt = torch.arange(n, dtype=torch.float64)
    lrkit_s = best(lambda: sched(t))
    hand_s = best(lambda: hand_numpy(t, n))
    tensor_s = best(lambda: sched.eval_tensor(tt))
    lambda_s = time_lambdalr(n)
    err = check_agreement(n)
    sec = f"vectorized, {n:.0e} steps of poly-with-warmup"
    return [
        {"section": sec, "name": "lrkit s(np.arange(n))", "value": lrkit_s * 1e3, "unit": "ms"},
        {"section": sec, "name": "hand-written NumPy expression", "value": hand_s * 1e3,
         "unit": "ms"},
        {"section": sec, "name": "lrkit s.eval_tensor(cpu float64)", "value": tensor_s * 1e3,
         "unit": "ms"},
        {"section": sec, "name": f"torch LambdaLR, {n:.0e} x step()", "value": lambda_s * 1e3,
         "unit": "ms"},
        {"section": sec, "name": "speedup lrkit vs LambdaLR", "value": lambda_s / lrkit_s,
         "unit": "x", "note": "target >= 300x", "ok": lambda_s / lrkit_s >= 300},
        {"section": sec, "name": "speedup hand NumPy vs LambdaLR (limit)",
         "value": lambda_s / hand_s, "unit": "x"},
        {"section": sec, "name": "lrkit / hand NumPy", "value": lrkit_s / hand_s, "unit": "x"},
        {"section": sec, "name": "max |lrkit - reference|", "value": err, "unit": "",
         "note": "vs hand (all steps) and LambdaLR (first 2e4)", "ok": err < 1e-12},
    ]


def profile(n: int = 1_000_000, calls: int = 20) -> None:
    """Print where lrkit's vectorized call spends its time."""
    sched = make_schedule(n)
    t = np.arange(n, dtype=np.float64)
    sched(t)
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(calls):
        sched(t)
    prof.disable()
    print(f"cProfile of {calls} calls of s(np.arange({n})) (tottime, per call = /{calls}):")
    pstats.Stats(prof, stream=sys.stdout).sort_stats("tottime").print_stats(12)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    if args.profile:
        profile(args.steps)
        return
    for row in measure(args.steps):
        print(f"{row['name']:45s} {row['value']:12.4g} {row['unit']:3s} {row.get('note', '')}")


if __name__ == "__main__":
    main()
