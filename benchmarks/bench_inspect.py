"""Overhead of lrkit.inspect (not a test): ratios measured in one run.

CPU, a 100M-parameter AdamW model (three large matrices):

* ``optimizer.step()`` alone;
* reading its optimizer state once (one reduction over ``exp_avg`` and ``exp_avg_sq``);
* one :class:`lrkit.inspect.Monitor` record at the default settings (``updates="derive"``,
  per-parameter sample of :data:`lrkit.inspect.DEFAULT_SAMPLE` elements), values read back;
* the same record reading every element (``sample=None``, the exact record).

Reported: record / state read (target <= 2) and record / (DEFAULT_EVERY steps), the overhead
at the default stride (target <= 1 %); the exact record / state read has no target (issue 14:
as small a multiple as eager torch allows; it reads the parameters in pieces of
:data:`lrkit.inspect.selection.CHUNK` elements on CPU, about 30 elementwise passes over them).
Each time is the minimum over repeats (the machine is shared; the minimum is the least
disturbed). ``--threads 1`` gives the steadiest figures on a loaded machine. GPU (skipped
without CUDA): summary time versus one read of Adam's state at memory bandwidth.

    python benchmarks/bench_inspect.py [--params 100000000] [--repeats 5] [--exact]
                                       [--threads N]
    python benchmarks/run.py --only inspect      # the rows of BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import torch

from lrkit.inspect import DEFAULT_EVERY, DEFAULT_SAMPLE, Monitor, summarize


def _model(n: int, device: str) -> list[torch.nn.Parameter]:
    rows = 1000
    sizes = [n // 2 // rows, n // 4 // rows, n // 4 // rows]  # a few large matrices
    ps = [torch.nn.Parameter(torch.randn(rows, s, device=device) * 0.02) for s in sizes]
    for p in ps:
        p.grad = torch.randn_like(p) * 1e-3
    return ps


def _best(f: Callable[[], object], repeats: int) -> tuple[float, float]:
    """(wall, CPU) seconds, each the minimum over repeats (CPU: all threads of the process)."""
    f()
    wall = cpu_t = float("inf")
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        f()
        wall = min(wall, time.perf_counter() - t0)
        cpu_t = min(cpu_t, time.process_time() - c0)
    return wall, cpu_t


def measure_cpu(n: int, repeats: int, exact: bool) -> dict[str, tuple[float, float]]:
    """(wall, CPU) seconds of: step, state read, default record (and every-element record)."""
    ps = _model(n, "cpu")
    opt = torch.optim.AdamW(ps, lr=1e-3)
    opt.step()
    states = [(opt.state[p]["exp_avg"], opt.state[p]["exp_avg_sq"]) for p in ps]

    def read() -> None:
        for m, v in states:
            m.sum()
            v.sum()

    def record(mon: Monitor) -> Callable[[], object]:
        def run() -> object:
            mon.record()
            return mon.history[-1].summary.mean  # read back what was recorded

        return run

    out = {
        "step": _best(opt.step, max(2, repeats // 2)),
        "read": _best(read, repeats),
        "record": _best(record(Monitor(opt)), repeats),
    }
    if exact:
        out["exact"] = _best(record(Monitor(opt, sample=None)), 2)
    return out


SECTION = "inspect: 100M-parameter AdamW on CPU (python benchmarks/bench_inspect.py)"


def measure(n: int = 100_000_000, repeats: int = 5) -> list[dict[str, Any]]:
    """Rows for benchmarks/run.py: the two overhead ratios, on wall and on CPU time."""
    t = measure_cpu(n, repeats, exact=True)
    rows: list[dict[str, Any]] = []
    for i, kind in enumerate(("wall", "CPU time")):
        step, read, rec, exact = t["step"][i], t["read"][i], t["record"][i], t["exact"][i]
        rows += [
            {"section": SECTION, "name": f"[{kind}] optimizer.step()", "value": step * 1e3,
             "unit": "ms"},
            {"section": SECTION, "name": f"[{kind}] state read once (exp_avg, exp_avg_sq)",
             "value": read * 1e3, "unit": "ms"},
            {"section": SECTION, "name": f"[{kind}] one record (sample {DEFAULT_SAMPLE}/param)",
             "value": rec * 1e3, "unit": "ms"},
            {"section": SECTION, "name": f"[{kind}] record / state read", "value": rec / read,
             "unit": "x", "note": "target <= 2", "ok": rec / read <= 2},
            {"section": SECTION, "name": f"[{kind}] overhead at default stride {DEFAULT_EVERY}",
             "value": 100 * rec / (DEFAULT_EVERY * step), "unit": "% of step",
             "note": "target <= 1 %", "ok": rec / (DEFAULT_EVERY * step) <= 0.01},
            {"section": SECTION, "name": f"[{kind}] one exact record (every element)",
             "value": exact * 1e3, "unit": "ms"},
            {"section": SECTION,
             "name": f"[{kind}] one exact record (every element) / state read",
             "value": exact / read, "unit": "x",
             "note": "no target (issue 14: 66-170x before reading in pieces)"},
        ]
    return rows


def cpu(n: int, repeats: int, exact: bool) -> None:
    t = measure_cpu(n, repeats, exact)
    print(f"CPU, {n / 1e6:.0f}M params AdamW, threads={torch.get_num_threads()}")
    for i, kind in enumerate(("wall", "CPU time")):
        s, r, m = t["step"][i], t["read"][i], t["record"][i]
        print(f"  [{kind}] optimizer.step() {s * 1e3:.0f} ms; state read once {r * 1e3:.0f} ms; "
              f"one record (default sample {DEFAULT_SAMPLE}/param) {m * 1e3:.1f} ms")
        print(f"    record / state read: {m / r:.2f}x (target <= 2); overhead at default "
              f"stride {DEFAULT_EVERY}: {m / (DEFAULT_EVERY * s):.3%} of the step (target <= 1 %)")
        if "exact" in t:
            e = t["exact"][i]
            print(f"    every element (sample=None): {e * 1e3:.0f} ms = {e / r:.1f}x state read, "
                  f"{e / (DEFAULT_EVERY * s):.2%} at the default stride")


def gpu(n: int) -> None:
    if not torch.cuda.is_available():
        print("GPU: skipped (no CUDA)")
        return
    ps = _model(n, "cuda")
    opt = torch.optim.Adam(ps, lr=1e-3)
    opt.step()
    torch.cuda.synchronize()
    v = [opt.state[p]["exp_avg_sq"] for p in ps]

    def read() -> None:
        for x in v:
            x.sum()
        torch.cuda.synchronize()

    def summ() -> None:
        _ = summarize(opt, sample=None)[0].mean

    r, s = _best(read, 5), _best(summ, 5)
    print(f"GPU {torch.cuda.get_device_name()}, {n / 1e6:.0f}M fp32: summary {s * 1e3:.2f} ms, "
          f"one state read {r * 1e3:.2f} ms, ratio {s / r:.1f}x")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--params", type=int, default=100_000_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--gpu-params", type=int, default=100_000_000)
    ap.add_argument("--exact", action="store_true", help="also time sample=None")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    a = ap.parse_args()
    if a.threads is not None:
        torch.set_num_threads(a.threads)
    cpu(a.params, a.repeats, a.exact)
    gpu(a.gpu_params)
