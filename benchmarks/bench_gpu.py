"""GPU: a CUDA-graph-captured training step with lrkit's device schedule inside the graph.

An 8-layer MLP (width 2048, batch 512, float32) trained with
``AdamW(capturable=True, foreach=True)`` and a tensor ``lr`` on the GPU, timed three ways
in the same process:

- ``graph, constant lr``: forward + backward + optimizer step captured in one
  ``torch.cuda.CUDAGraph`` and replayed; the ``lr`` tensor is never touched;
- ``graph, device schedule``: the same graph with ``LRScheduler(opt, schedule,
  device=True).step()`` inside it (a device step counter incremented, warmup+poly evaluated
  with torch ops, ``lr`` written in place), so one replay = one training step at the right
  rate with no host work;
- ``eager, torch LambdaLR``: the same step run eagerly (float ``lr``, foreach AdamW) followed
  by ``LambdaLR.step()`` on the host.

Target: the device-schedule graph within 5% of the constant-rate graph.
Without CUDA every row reads 'no GPU'. Run alone: ``python benchmarks/bench_gpu.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from lrkit import Poly, Schedule, Warmup
from lrkit.torch import LRScheduler

DEPTH = 8
WIDTH = 2048
BATCH = 512
BASE_LR = 1e-3
TOTAL = 10_000
WARMUP = 500
REPLAYS = 200


def schedule() -> Schedule:
    return Warmup(Poly(total_steps=TOTAL - WARMUP, power=0.9), steps=WARMUP).bind(BASE_LR)


def factor(step: int) -> float:
    if step < WARMUP:
        return step / WARMUP
    return (1.0 - min(step - WARMUP, TOTAL - WARMUP) / (TOTAL - WARMUP)) ** 0.9


def make_model(device: torch.device) -> torch.nn.Module:
    torch.manual_seed(0)
    layers: list[torch.nn.Module] = []
    for i in range(DEPTH):
        layers.append(torch.nn.Linear(WIDTH, WIDTH))
        if i < DEPTH - 1:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers).to(device)


def capture(
    step_fn: Callable[[], Any], zero_grad: Callable[[], Any], warmup_iters: int = 3
) -> torch.cuda.CUDAGraph:
    """Warm ``step_fn`` up on a side stream, then capture one call of it in a CUDA graph.

    Gradients are set to ``None`` before the capture so that backward allocates them from
    the graph's private memory pool (each replay then rewrites them in place).
    """
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(warmup_iters):
            zero_grad()
            step_fn()
    torch.cuda.current_stream().wait_stream(side)
    zero_grad()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step_fn()
    return graph


def time_per_call(fn: Callable[[], Any], n: int = REPLAYS, rounds: int = 5) -> float:
    """Best over ``rounds`` of the mean seconds per call of ``fn`` over ``n`` calls."""
    for _ in range(10):
        fn()
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(rounds):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(n):
            fn()
        end.record()
        end.synchronize()
        best = min(best, start.elapsed_time(end) / 1e3 / n)
    return best


def graphed_step(device: torch.device, with_schedule: bool) -> Callable[[], None]:
    model = make_model(device)
    x = torch.randn(BATCH, WIDTH, device=device)
    y = torch.randn(BATCH, WIDTH, device=device)
    opt = torch.optim.AdamW(
        model.parameters(), lr=torch.tensor(BASE_LR, device=device), capturable=True,
        foreach=True,
    )
    dev_sched = LRScheduler(opt, schedule(), device=True) if with_schedule else None

    def train_step() -> None:
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        if dev_sched is not None:
            dev_sched.step()

    graph = capture(train_step, lambda: opt.zero_grad(set_to_none=True))
    return graph.replay


def eager_step(device: torch.device) -> Callable[[], None]:
    model = make_model(device)
    x = torch.randn(BATCH, WIDTH, device=device)
    y = torch.randn(BATCH, WIDTH, device=device)
    opt = torch.optim.AdamW(model.parameters(), lr=BASE_LR, foreach=True)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)

    def train_step() -> None:
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        sched.step()

    return train_step


def measure() -> list[dict[str, Any]]:
    sec = (f"GPU: CUDA-graph training step, {DEPTH}-layer MLP {WIDTH}x{WIDTH}, batch {BATCH}, "
           "AdamW(capturable)")
    if not torch.cuda.is_available():
        return [{"section": "GPU", "name": "CUDA graph benchmarks", "value": "no GPU"}]
    device = torch.device("cuda")
    const_s = time_per_call(graphed_step(device, with_schedule=False))
    sched_s = time_per_call(graphed_step(device, with_schedule=True))
    eager_s = time_per_call(eager_step(device))
    const_s = min(const_s, time_per_call(graphed_step(device, with_schedule=False)))
    ratio = sched_s / const_s
    return [
        {"section": sec, "name": "graph, constant lr", "value": const_s * 1e3, "unit": "ms"},
        {"section": sec, "name": "graph, device schedule inside", "value": sched_s * 1e3,
         "unit": "ms"},
        {"section": sec, "name": "eager, torch LambdaLR", "value": eager_s * 1e3, "unit": "ms"},
        {"section": sec, "name": "device schedule graph / constant-lr graph", "value": ratio,
         "unit": "x", "note": "target <= 1.05", "ok": ratio <= 1.05},
        {"section": sec, "name": "eager LambdaLR / device schedule graph",
         "value": eager_s / sched_s, "unit": "x"},
    ]


if __name__ == "__main__":
    for row in measure():
        print(row)
