"""Tensor mode: a compiled optimizer step never recompiles across a whole schedule.

``torch.compile(opt.step)`` of Adam on a few small tensors, run over a full schedule (warmup,
decay and past the horizon) while the scheduler steps between calls. Dynamo's graph count
after the first compiled call must not grow. The same harness with torch's own schedulers
(float ``lr`` / float ``beta1``) does recompile, so the harness can tell the difference; and
the compiled run's parameters must equal an eager run's, so the rate that the compiled step
uses really is the scheduled one (not a value baked in at the first compile).

The dynamo backend is ``"eager"`` by default: recompiles are decided by dynamo's guards,
which do not depend on the backend, and it keeps the test fast on a 2-core CI machine. One
slow test repeats the warmup+poly case with inductor, the real compiled optimizer step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch._dynamo.utils import counters

from lrkit import OneCycle, Poly, Schedule, Warmup

STEPS = 48  # covers warmup, decay and 8 steps past the horizon
WARMUP = 8
TOTAL = 40  # warmup + decay
BASE_LR = 1e-2

Make = Callable[[list[torch.nn.Parameter]], tuple[torch.optim.Optimizer, Any]]


def _warmup_poly() -> Schedule:
    return Warmup(Poly(total_steps=TOTAL - WARMUP, power=0.9), steps=WARMUP)


def _warmup_poly_factor(step: int) -> float:
    """The same schedule as a LambdaLR multiplier, typed independently."""
    if step < WARMUP:
        return step / WARMUP
    return (1.0 - min(step - WARMUP, TOTAL - WARMUP) / (TOTAL - WARMUP)) ** 0.9


def _params() -> list[torch.nn.Parameter]:
    gen = torch.Generator().manual_seed(0)
    params = [
        torch.nn.Parameter(torch.randn(shape, generator=gen)) for shape in ((4, 3), (3,), (2, 4))
    ]
    for p in params:
        p.grad = torch.randn(p.shape, generator=gen)
    return params


def _tensor_adam(params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
    return torch.optim.Adam(
        params, lr=torch.tensor(BASE_LR), betas=(torch.tensor(0.9), torch.tensor(0.999)),
        foreach=False,
    )


def _lrkit_warmup_poly(params: list[torch.nn.Parameter]) -> tuple[torch.optim.Optimizer, Any]:
    from lrkit.torch import LRScheduler

    opt = _tensor_adam(params)
    return opt, LRScheduler(opt, _warmup_poly(), tensor=True)


def _lrkit_onecycle(params: list[torch.nn.Parameter]) -> tuple[torch.optim.Optimizer, Any]:
    from lrkit.torch import LRScheduler

    opt = _tensor_adam(params)
    lr = OneCycle(total_steps=TOTAL, peak=BASE_LR)
    return opt, LRScheduler(opt, lr, beta1=lr.momentum(low=0.85, high=0.95), tensor=True)


def _lrkit_onecycle_float_optimizer(
    params: list[torch.nn.Parameter],
) -> tuple[torch.optim.Optimizer, Any]:
    """An optimizer built with floats: ``tensor=True`` turns lr and beta1 into tensors."""
    from lrkit.torch import LRScheduler

    opt = torch.optim.Adam(params, lr=BASE_LR, foreach=False)
    lr = OneCycle(total_steps=TOTAL, peak=BASE_LR)
    return opt, LRScheduler(opt, lr, beta1=lr.momentum(low=0.85, high=0.95), tensor=True)


def _torch_lambdalr(params: list[torch.nn.Parameter]) -> tuple[torch.optim.Optimizer, Any]:
    opt = torch.optim.Adam(params, lr=BASE_LR, foreach=False)
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, _warmup_poly_factor)


def _torch_onecycle(params: list[torch.nn.Parameter]) -> tuple[torch.optim.Optimizer, Any]:
    opt = torch.optim.Adam(params, lr=BASE_LR, foreach=False)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=BASE_LR, total_steps=STEPS, base_momentum=0.85, max_momentum=0.95
    )
    return opt, sched


def _as_float(x: Any) -> float:
    return float(x.item()) if isinstance(x, torch.Tensor) else float(x)


def _run(make: Make, *, compiled: bool, backend: str = "eager") -> dict[str, Any]:
    """Run ``STEPS`` (optimizer step, scheduler step); count the graphs compiled after the
    first call, and record the rates the optimizer used and the final parameters."""
    torch._dynamo.reset()
    counters.clear()
    params = _params()
    opt, sched = make(params)
    step = torch.compile(opt.step, backend=backend) if compiled else opt.step
    lrs, beta1s = [], []
    first = 0
    for i in range(STEPS):
        group = opt.param_groups[0]
        lrs.append(_as_float(group["lr"]))
        beta1s.append(_as_float(group["betas"][0]))
        step()
        sched.step()
        if i == 0:
            first = counters["stats"]["unique_graphs"]
    return {
        "first_graphs": first,
        "recompiles": counters["stats"]["unique_graphs"] - first,
        "lrs": lrs,
        "beta1s": beta1s,
        "params": [p.detach().clone() for p in params],
    }


def test_torch_float_lr_recompiles() -> None:
    """The control: torch's LambdaLR with a float lr makes dynamo compile again."""
    out = _run(_torch_lambdalr, compiled=True)
    assert out["first_graphs"] >= 1
    assert out["recompiles"] >= 1


def test_torch_float_beta1_recompiles() -> None:
    """The control: torch's OneCycleLR cycling a float beta1 recompiles (often, until
    dynamo's recompile limit)."""
    out = _run(_torch_onecycle, compiled=True)
    assert out["recompiles"] >= 1


@pytest.mark.parametrize(
    ("make", "cycles_beta1"),
    [(_lrkit_warmup_poly, False), (_lrkit_onecycle, True),
     (_lrkit_onecycle_float_optimizer, True)],
    ids=["warmup_poly", "onecycle_beta1", "onecycle_beta1_tensor_flag"],
)
def test_lrkit_tensor_mode_never_recompiles(make: Make, cycles_beta1: bool) -> None:
    compiled = _run(make, compiled=True)
    eager = _run(make, compiled=False)
    assert compiled["first_graphs"] >= 1  # the step really was compiled
    assert compiled["recompiles"] == 0
    # the rates really moved over the schedule, and the compiled step used each of them
    assert len(set(compiled["lrs"])) > STEPS // 2
    assert (len(set(compiled["beta1s"])) > STEPS // 2) == cycles_beta1
    assert compiled["lrs"] == eager["lrs"]
    assert compiled["beta1s"] == eager["beta1s"]
    # (dynamo traces Adam's compiled branch, which rounds differently by an ulp or so)
    for got, want in zip(compiled["params"], eager["params"], strict=True):
        torch.testing.assert_close(got, want)


def test_lrkit_rates_are_the_schedule() -> None:
    """The rate used at step k is the warmup+poly value typed above (float32 tensor lr)."""
    out = _run(_lrkit_warmup_poly, compiled=True)
    want = [float(torch.tensor(BASE_LR * _warmup_poly_factor(k))) for k in range(STEPS)]
    assert out["lrs"] == pytest.approx(want, rel=1e-6, abs=1e-12)


@pytest.mark.slow
def test_lrkit_tensor_mode_never_recompiles_inductor() -> None:
    """The real compiled optimizer step (inductor): no recompiles, same result as eager."""
    compiled = _run(_lrkit_warmup_poly, compiled=True, backend="inductor")
    eager = _run(_lrkit_warmup_poly, compiled=False)
    assert compiled["recompiles"] == 0
    for got, want in zip(compiled["params"], eager["params"], strict=True):
        torch.testing.assert_close(got, want)
