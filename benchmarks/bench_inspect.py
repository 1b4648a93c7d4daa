"""Overhead of lrkit.inspect (not a test).

CPU: a 10M-parameter model with Adam; time of optimizer.step() alone versus step + monitor
at stride 1 and at the default stride. GPU (skipped without CUDA): summary time for 100M fp32
parameters versus the time to read Adam's state once at memory bandwidth.

    python benchmarks/bench_inspect.py [--params 10000000] [--steps 40]
"""

from __future__ import annotations

import argparse
import time

import torch

from lrkit.inspect import DEFAULT_EVERY, Monitor, summarize


def _model(n: int, device: str) -> list[torch.nn.Parameter]:
    rows = 1000
    sizes = [n // 2 // rows, n // 4 // rows, n // 4 // rows]  # a few large matrices
    ps = [torch.nn.Parameter(torch.randn(rows, s, device=device) * 0.02) for s in sizes]
    for p in ps:
        p.grad = torch.randn_like(p) * 1e-3
    return ps


def _time_steps(opt: torch.optim.Optimizer, mon: Monitor | None, steps: int) -> float:
    t0 = time.perf_counter()
    for _ in range(steps):
        opt.step()
        if mon is not None:
            mon.step()
    if mon is not None and mon.history:
        _ = mon.history[-1].summary.mean  # read back what was recorded
    return (time.perf_counter() - t0) / steps


def cpu(n: int, steps: int) -> None:
    ps = _model(n, "cpu")
    opt = torch.optim.Adam(ps, lr=1e-3)
    opt.step()
    base = _time_steps(opt, None, steps)
    print(f"CPU, {sum(p.numel() for p in ps) / 1e6:.1f}M params, threads={torch.get_num_threads()}")
    print(f"  optimizer.step(): {base * 1e3:.1f} ms")
    for updates in ("derive", None):
        mon = Monitor(opt, every=1, updates=updates)
        t0 = time.perf_counter()
        for _ in range(steps):
            mon.record()
            _ = mon.history[-1].summary.mean  # read back what was recorded
        rec = (time.perf_counter() - t0) / steps
        print(f"  one record (updates={updates!s:<6}): {rec * 1e3:.1f} ms; overhead ratio "
              f"stride 1: {rec / base:.2f}, default stride {DEFAULT_EVERY}: "
              f"{rec / base / DEFAULT_EVERY:.3f}")
    mon = Monitor(opt)  # measured loop at the default stride (first step always recorded)
    n = 2 * DEFAULT_EVERY
    mon.steps = 1  # start past the step-1 record, so the loop holds n / stride records
    total = _time_steps(opt, mon, n)
    print(f"  loop of {n} steps, default stride, updates=derive: overhead "
          f"{(total - base) / base:.1%} of the step")


def gpu(n: int) -> None:
    if not torch.cuda.is_available():
        print("GPU: skipped (no CUDA)")
        return
    ps = _model(n, "cuda")
    opt = torch.optim.Adam(ps, lr=1e-3)
    opt.step()
    torch.cuda.synchronize()
    # one read of exp_avg_sq (the only state the rates need) + writing nothing: a clone reads
    # and writes, so half its time is one read
    v = [opt.state[p]["exp_avg_sq"] for p in ps]
    for _ in range(2):
        [x.clone() for x in v]
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(5):
        [x.clone() for x in v]
    torch.cuda.synchronize()
    read = (time.perf_counter() - t0) / 5 / 2
    for _ in range(2):
        _ = summarize(opt)[0].mean
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(5):
        _ = summarize(opt)[0].mean
    summ = (time.perf_counter() - t0) / 5
    print(f"GPU {torch.cuda.get_device_name()}, {n / 1e6:.0f}M fp32: summary {summ * 1e3:.2f} ms, "
          f"one state read {read * 1e3:.2f} ms, ratio {summ / read:.1f}x")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--params", type=int, default=10_000_000)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--gpu-params", type=int, default=100_000_000)
    a = ap.parse_args()
    cpu(a.params, a.steps)
    gpu(a.gpu_params)
