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

A second section times the three shapes that many groups take in practice, each against
torch ``LambdaLR`` with the same multipliers (200 groups, ``warmup(1500) then poly(power=0.9)
over 160000``):

- equal bases (one schedule, one base: one evaluation serves all groups);
- different bases ``0.01 * 0.97**i`` (layer-wise decay, timm's ``lr_scale``): one relative
  schedule, a different bound schedule per group;
- different schedules: warmup length ``1000 + 5 i`` per group (and the same bases).

lrkit evaluates the distinct schedules of a field together over blocks of up to
``MAX_BLOCK`` steps; each timed round is a multiple of that length, so every round pays the
same number of block evaluations (no round escapes them).

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
from lrkit.spec import parse

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


MANY = 200
SPEC_TOTAL = 160_000
SPEC_WARMUP = 1_500
MANY_ROUND = 2048  # a multiple of lrkit.torch._host.MAX_BLOCK
MANY_ROUNDS = 5


def many_spec(warmup: int = SPEC_WARMUP) -> Schedule:
    return parse(f"warmup({warmup}) then poly(power=0.9) over {SPEC_TOTAL}")


def many_factor(warmup: int) -> Callable[[int], float]:
    """The same multiplier as :func:`many_spec`, for LambdaLR."""
    decay = SPEC_TOTAL - warmup

    def f(step: int) -> float:
        if step < warmup:
            return step / warmup
        return (1.0 - min(step - warmup, decay) / decay) ** POWER

    return f


def many_optimizer(equal: bool) -> torch.optim.Optimizer:
    return torch.optim.SGD([{"params": [torch.zeros((), requires_grad=True)],
                             "lr": 0.01 if equal else 0.01 * 0.97**i} for i in range(MANY)],
                           lr=0.01)


MANY_CASES: list[tuple[str, bool, bool]] = [  # (name, equal bases, distinct schedules)
    ("equal bases", True, False),
    ("different bases", False, False),
    ("different schedules", False, True),
]


def _warmups(distinct: bool) -> list[int]:
    return [1000 + 5 * i if distinct else SPEC_WARMUP for i in range(MANY)]


def many_torch(equal: bool, distinct: bool) -> Any:
    lambdas = [many_factor(w) for w in _warmups(distinct)]
    lam: Any = lambdas if distinct else lambdas[0]
    return torch.optim.lr_scheduler.LambdaLR(many_optimizer(equal), lam)


def many_lrkit(equal: bool, distinct: bool) -> Any:
    from lrkit.torch import LRScheduler

    scheds: Any = [many_spec(w) for w in _warmups(distinct)] if distinct else many_spec()
    return LRScheduler(many_optimizer(equal), scheds)


def measure_many() -> list[dict[str, Any]]:
    """The three shapes of many groups, each lrkit vs LambdaLR, interleaved in one run."""
    sec = (f"host scheduler.step() with {MANY} groups: equal bases, different bases, different "
           f"schedules (warmup({SPEC_WARMUP}) then poly(power=0.9) over {SPEC_TOTAL})")
    scheds: dict[tuple[str, str], Any] = {}
    for case, equal, distinct in MANY_CASES:
        for lib, make in (("torch LambdaLR", many_torch), ("lrkit LRScheduler", many_lrkit)):
            scheds[(case, lib)] = make(equal, distinct)
            scheds[(case, lib)].optimizer.step()
            time_steps(scheds[(case, lib)], 20)
    best = dict.fromkeys(scheds, float("inf"))
    for _ in range(MANY_ROUNDS):
        for key, sched in scheds.items():
            best[key] = min(best[key], time_steps(sched, MANY_ROUND))
    rows: list[dict[str, Any]] = []
    for case, _, _ in MANY_CASES:
        for lib in ("torch LambdaLR", "lrkit LRScheduler"):
            rows.append({"section": sec, "name": f"{lib}, {case}",
                         "value": best[(case, lib)] * 1e6, "unit": "us"})
        ratio = best[(case, "lrkit LRScheduler")] / best[(case, "torch LambdaLR")]
        rows.append({"section": sec, "name": f"lrkit / LambdaLR, {case}", "value": ratio,
                     "unit": "x", "note": "target <= 0.25", "ok": ratio <= 0.25})
    return rows


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
    return rows + measure_many()


def profile(groups: int = 200, steps: int = 2048, tensor: bool = False,
            case: str | None = None) -> None:
    if case is not None:
        _, equal, distinct = next(c for c in MANY_CASES if c[0] == case)
        sched = many_lrkit(equal, distinct)
    else:
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
    parser.add_argument("--case", choices=[c[0] for c in MANY_CASES],
                        help="profile one of the many-groups cases")
    parser.add_argument("--many", action="store_true", help="only the many-groups section")
    args = parser.parse_args(argv)
    if args.profile:
        profile(tensor=args.tensor, case=args.case)
        return
    if args.many:
        for row in measure_many():
            print(f"{row['name']:55s} {row['value']:.4g} {row['unit']} {row.get('note', '')}")
        return
    for row in measure():
        value = "-" if row["value"] is None else f"{row['value']:.4g} {row['unit']}"
        print(f"{row['name']:55s} {value:>14} {row.get('note', '')}")


if __name__ == "__main__":
    main()
