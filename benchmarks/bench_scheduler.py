"""Host scheduler step overhead: lrkit's LRScheduler vs torch's LambdaLR and PolynomialLR.

An SGD optimizer with G = 1, 10, 200 parameter groups (one scalar parameter each, all
groups on the same schedule); the time of one ``scheduler.step()`` (no optimizer work), for

- torch ``LambdaLR`` with a warmup+poly multiplier written in Python;
- torch ``PolynomialLR(total_iters, power=0.9)`` (no warmup: it cannot express one);
- lrkit ``LRScheduler`` with ``Warmup(Poly(...))`` (float ``lr``: the host path, groups
  sharing a schedule evaluate it once);
- lrkit ``LRScheduler`` in tensor mode (``lr`` as 0-dim tensors updated in place).

Variants are timed in interleaved rounds (best round kept), so the ratios come from the same
run. Target: lrkit's 200-group step at most 1/4 of LambdaLR's.

Run alone: ``python benchmarks/bench_scheduler.py [--profile]``; ``--profile`` prints
cProfile's view of 2000 lrkit steps with 200 groups.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from collections.abc import Callable
from typing import Any

import torch

from lrkit import Poly, Schedule, Warmup

GROUPS = (1, 10, 200)
TOTAL = 1_000_000
WARMUP = 1_000
POWER = 0.9
BASE_LR = 0.1
STEPS_PER_ROUND = 400
ROUNDS = 7


def schedule() -> Schedule:
    return Warmup(Poly(total_steps=TOTAL - WARMUP, power=POWER), steps=WARMUP)


def factor(step: int) -> float:
    if step < WARMUP:
        return step / WARMUP
    return (1.0 - min(step - WARMUP, TOTAL - WARMUP) / (TOTAL - WARMUP)) ** POWER


def make_optimizer(groups: int, tensor_lr: bool = False) -> torch.optim.Optimizer:
    params = [
        {"params": [torch.zeros((), requires_grad=True)],
         "lr": torch.tensor(BASE_LR, dtype=torch.float64) if tensor_lr else BASE_LR}
        for _ in range(groups)
    ]
    return torch.optim.SGD(params, lr=BASE_LR)


def torch_lambdalr(groups: int) -> Any:
    opt = make_optimizer(groups)
    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def torch_polynomiallr(groups: int) -> Any:
    opt = make_optimizer(groups)
    return torch.optim.lr_scheduler.PolynomialLR(opt, total_iters=TOTAL, power=POWER)


def lrkit_host(groups: int) -> Any:
    from lrkit.torch import LRScheduler

    return LRScheduler(make_optimizer(groups), schedule())


def lrkit_tensor(groups: int) -> Any:
    from lrkit.torch import LRScheduler

    return LRScheduler(make_optimizer(groups, tensor_lr=True), schedule(), tensor=True)


VARIANTS: list[tuple[str, Callable[[int], Any]]] = [
    ("torch LambdaLR", torch_lambdalr),
    ("torch PolynomialLR", torch_polynomiallr),
    ("lrkit LRScheduler (float lr)", lrkit_host),
    ("lrkit LRScheduler (tensor mode)", lrkit_tensor),
]


def time_steps(sched: Any, n: int) -> float:
    step = sched.step
    start = time.perf_counter()
    for _ in range(n):
        step()
    return (time.perf_counter() - start) / n


def measure_groups(groups: int) -> tuple[dict[str, float], dict[str, str]]:
    """Best per-step seconds of each variant (interleaved rounds) and the ones that failed."""
    scheds: dict[str, Any] = {}
    failed: dict[str, str] = {}
    for name, make in VARIANTS:
        try:
            scheds[name] = make(groups)
            scheds[name].optimizer.step()  # no grads: a no-op; silences torch's order warning
            time_steps(scheds[name], 20)
        except Exception as exc:  # lrkit.torch (or its tensor mode) may not exist yet
            failed[name] = f"skipped: {type(exc).__name__}: {exc}"[:100]
            scheds.pop(name, None)
    best = dict.fromkeys(scheds, float("inf"))
    n = STEPS_PER_ROUND if groups > 10 else 4 * STEPS_PER_ROUND
    for _ in range(ROUNDS):
        for name, sched in scheds.items():
            best[name] = min(best[name], time_steps(sched, n))
    return best, failed


def measure() -> list[dict[str, Any]]:
    sec = "host scheduler.step() overhead (SGD, G groups on one schedule)"
    rows: list[dict[str, Any]] = []
    for groups in GROUPS:
        best, failed = measure_groups(groups)
        for name, _ in VARIANTS:
            if name in failed:
                rows.append({"section": sec, "name": f"{name}, {groups} groups", "value": None,
                             "note": failed[name]})
            else:
                rows.append({"section": sec, "name": f"{name}, {groups} groups",
                             "value": best[name] * 1e6, "unit": "us"})
        lam = best.get("torch LambdaLR")
        poly = best.get("torch PolynomialLR")
        for name in ("lrkit LRScheduler (float lr)", "lrkit LRScheduler (tensor mode)"):
            if name not in best or lam is None or poly is None:
                continue
            ratio = best[name] / lam
            target = {"note": "target <= 0.25", "ok": ratio <= 0.25} if groups == 200 else {}
            rows.append({"section": sec, "name": f"{name} / LambdaLR, {groups} groups",
                         "value": ratio, "unit": "x", **target})
            rows.append({"section": sec, "name": f"{name} / PolynomialLR, {groups} groups",
                         "value": best[name] / poly, "unit": "x"})
    return rows


def profile(groups: int = 200, steps: int = 2000, tensor: bool = False) -> None:
    sched = (lrkit_tensor if tensor else lrkit_host)(groups)
    sched.step()
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(steps):
        sched.step()
    prof.disable()
    print(f"cProfile: {steps} lrkit steps, {groups} groups, tensor={tensor}")
    pstats.Stats(prof, stream=sys.stdout).sort_stats("tottime").print_stats(15)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--tensor", action="store_true", help="profile tensor mode")
    args = parser.parse_args(argv)
    if args.profile:
        profile(tensor=args.tensor)
        return
    for row in measure():
        value = "-" if row["value"] is None else f"{row['value']:.4g} {row['unit']}"
        print(f"{row['name']:55s} {value:>14} {row.get('note', '')}")


if __name__ == "__main__":
    main()
