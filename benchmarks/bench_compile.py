"""torch.compile: recompiles and time to the 40th compiled optimizer step, lrkit vs torch.

``torch.compile(opt.step)`` (inductor, CPU) of Adam on a small MLP's parameters, then 40
steps of (compiled optimizer step, scheduler step) under four schedulers:

- torch ``LambdaLR`` warmup+poly with float ``lr`` (the usual setup);
- torch ``OneCycleLR`` with ``cycle_momentum`` (float ``lr`` and float ``beta1``);
- lrkit ``LRScheduler`` in tensor mode, the same warmup+poly;
- lrkit ``LRScheduler`` in tensor mode, a one-cycle with ``beta1`` cycling.

Recompiles are the graphs dynamo compiled after the first compiled call (so graph breaks
in the first call do not count); time to the 40th step includes compilation (inductor's
on-disk FX graph cache is switched off so each variant compiles cold). A throw-away
compile runs first so that inductor's one-time start-up is charged to no one.

Run alone: ``python benchmarks/bench_compile.py``.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Callable
from typing import Any
from unittest import mock

import torch

from lrkit import OneCycle, Poly, Schedule, Warmup

STEPS = 40
WARMUP = 10
BASE_LR = 1e-3


def warmup_poly() -> Schedule:
    return Warmup(Poly(total_steps=STEPS - WARMUP, power=0.9), steps=WARMUP)


def warmup_poly_factor(step: int) -> float:
    """The same schedule as a LambdaLR multiplier."""
    if step < WARMUP:
        return step / WARMUP
    total = STEPS - WARMUP
    return (1.0 - min(step - WARMUP, total) / total) ** 0.9


def one_cycle() -> tuple[Schedule, Schedule]:
    """(lr, beta1) of torch's default one-cycle over ``STEPS`` (beta1 0.95 -> 0.85 -> 0.95)."""
    lr = OneCycle(total_steps=STEPS, peak=BASE_LR)
    return lr, lr.momentum(low=0.85, high=0.95)


def make_params() -> list[torch.nn.Parameter]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10)
    )
    params = list(model.parameters())
    for p in params:
        p.grad = torch.randn_like(p) * 1e-2
    return params


def unique_graphs() -> int:
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


def run_compiled(
    make: Callable[[list[torch.nn.Parameter]], tuple[torch.optim.Optimizer, Any]],
    steps: int = STEPS,
    backend: str = "inductor",
) -> dict[str, float]:
    """Compile ``opt.step``, run ``steps`` (step, scheduler.step); recompiles and timings."""
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    params = make_params()
    opt, sched = make(params)
    compiled = torch.compile(opt.step, backend=backend)
    start = time.perf_counter()
    first_graphs = 0
    first_s = 0.0
    for i in range(steps):
        compiled()
        sched.step()
        if i == 0:
            first_graphs = unique_graphs()
            first_s = time.perf_counter() - start
    total = time.perf_counter() - start
    return {
        "recompiles": unique_graphs() - first_graphs,
        "first_s": first_s,
        "total_s": total,
    }


def torch_lambdalr(params: list[torch.nn.Parameter]) -> tuple[torch.optim.Optimizer, Any]:
    opt = torch.optim.Adam(params, lr=BASE_LR)
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, warmup_poly_factor)


def torch_onecycle(params: list[torch.nn.Parameter]) -> tuple[torch.optim.Optimizer, Any]:
    opt = torch.optim.Adam(params, lr=BASE_LR)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=BASE_LR, total_steps=STEPS, cycle_momentum=True,
        base_momentum=0.85, max_momentum=0.95,
    )
    return opt, sched


def lrkit_warmup_poly(params: list[torch.nn.Parameter]) -> tuple[torch.optim.Optimizer, Any]:
    from lrkit.torch import LRScheduler

    opt = torch.optim.Adam(params, lr=torch.tensor(BASE_LR))
    return opt, LRScheduler(opt, warmup_poly(), tensor=True)


def lrkit_onecycle(params: list[torch.nn.Parameter]) -> tuple[torch.optim.Optimizer, Any]:
    from lrkit.torch import LRScheduler

    lr, beta1 = one_cycle()
    opt = torch.optim.Adam(
        params, lr=torch.tensor(BASE_LR), betas=(torch.tensor(0.9), torch.tensor(0.999))
    )
    return opt, LRScheduler(opt, lr, beta1=beta1, tensor=True)


VARIANTS: list[tuple[str, Callable[..., Any]]] = [
    ("torch LambdaLR warmup+poly (float lr)", torch_lambdalr),
    ("lrkit tensor mode warmup+poly", lrkit_warmup_poly),
    ("torch OneCycleLR, cycle_momentum (float lr, beta1)", torch_onecycle),
    ("lrkit tensor mode one-cycle + beta1", lrkit_onecycle),
]


def _warm_inductor() -> None:
    """Compile something unrelated once: inductor's start-up cost is then charged to no one."""
    x = torch.randn(8)
    torch.compile(lambda v: (v * 2).sin(), backend="inductor")(x)
    torch._dynamo.reset()


def measure() -> list[dict[str, Any]]:
    import torch._inductor.config as inductor_config

    sec = f"torch.compile(opt.step), Adam, {STEPS} steps, inductor on CPU, cold caches"
    rows: list[dict[str, Any]] = []
    results: dict[str, dict[str, float]] = {}
    # cold: no FX graph cache, and a fresh directory for inductor's compiled kernels
    with (
        tempfile.TemporaryDirectory(prefix="lrkit-bench-inductor-") as cache,
        mock.patch.dict(os.environ, {"TORCHINDUCTOR_CACHE_DIR": cache}),
        inductor_config.patch(fx_graph_cache=False),
    ):
        _warm_inductor()
        torch._logging.set_logs(dynamo=logging.ERROR)  # torch's recompile-limit warning
        for name, make in VARIANTS:
            try:
                results[name] = r = run_compiled(make)
            except Exception as exc:  # lrkit.torch or the one-cycle may not exist yet
                rows.append({"section": sec, "name": name, "value": None,
                             "note": f"skipped: {type(exc).__name__}: {exc}"[:100]})
                continue
            is_lrkit = name.startswith("lrkit")
            rows.append({"section": sec, "name": f"{name}: recompiles",
                         "value": int(r["recompiles"]), "unit": "",
                         **({"note": "target 0", "ok": r["recompiles"] == 0} if is_lrkit
                            else {})})
            rows.append({"section": sec, "name": f"{name}: time to step {STEPS}",
                         "value": r["total_s"], "unit": "s",
                         "note": f"first call {r['first_s']:.2f} s"})
    pairs = [
        ("lrkit tensor mode warmup+poly", "torch LambdaLR warmup+poly (float lr)"),
        ("lrkit tensor mode one-cycle + beta1",
         "torch OneCycleLR, cycle_momentum (float lr, beta1)"),
    ]
    for mine, theirs in pairs:
        if mine in results and theirs in results:
            rows.append({"section": sec, "name": f"time to step {STEPS}: {mine} / torch",
                         "value": results[mine]["total_s"] / results[theirs]["total_s"],
                         "unit": "x"})
    return rows


if __name__ == "__main__":
    for row in measure():
        print(row)
