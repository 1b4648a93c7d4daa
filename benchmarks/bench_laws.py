"""Speed and synthetic accuracy of lrkit.laws (issue 12 targets).

- fitting the multi-power law to 3 runs of 10^4 steps (loss at every step, 0.5 % noise):
  target <= 10 s on 2 cores;
- predicting the full curve of a 10^6-step schedule: target <= 2 s;
- the compressed loss-drop sum against the exact quadratic one on a 2x10^4-step cosine:
  the measured error and the bound the evaluation reports;
- optimizing a 10^4-step schedule (WSD search + free-form): target <= 60 s;
- held-out synthetic schedules (the law's own curves + noise): prediction errors.

Run alone: ``PYTHONPATH=src python benchmarks/bench_laws.py``; or through
``python benchmarks/run.py --only laws``.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np

TRUE = {"L0": 3.0, "A": 0.5, "alpha": 0.5, "B": 400.0, "C": 2.0, "beta": 0.6, "gamma": 0.6}
PEAK = 3e-4


CPU: dict[str, float] = {}


def _timed(fn: Any, key: str = "") -> tuple[float, Any]:
    """Wall time (and CPU time of this process, kept in CPU[key]) of one call."""
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    CPU[key] = time.process_time() - c0
    return time.perf_counter() - t0, out


def measure() -> list[dict[str, Any]]:
    from lrkit.laws import LawWarning, fit, predict, synthetic_run
    from lrkit.laws._curve import Curve, DropTable, exact_loss_drop
    from lrkit.laws.optimize import optimize

    rows: list[dict[str, Any]] = []
    sec = "laws (multi-power law)"
    n = 10_000
    specs = [f"warmup({n // 20}) then const", f"warmup({n // 20}) then cos",
             f"wsd({n}, warmup_steps={n // 20}, decay_fraction=0.2)"]
    runs = [synthetic_run("multi-power", TRUE, s, n, peak=PEAK, noise=0.005, seed=i)
            for i, s in enumerate(specs)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LawWarning)
        fit(runs[:2], "annealing", bootstrap=0)  # imports and caches warm
        t_fit, law = _timed(lambda: fit(runs, "multi-power"), "fit")
    rows.append({"section": sec, "name": "fit 3 runs x 1e4 steps (4 starts, 12 bootstrap "
                 "refits)", "value": t_fit, "unit": "s",
                 "note": f"target <= 10 s; CPU {CPU['fit']:.1f} s",
                 "ok": t_fit <= 10})
    big = 1_000_000
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LawWarning)
        t_pred, _ = _timed(lambda: predict(law, f"warmup(1000) then cos over {big}", big,
                                           base=PEAK), "predict")
    rows.append({"section": sec, "name": "predict every step of a 1e6-step cosine (with band)",
                 "value": t_pred, "unit": "s",
                 "note": f"target <= 2 s; CPU {CPU['predict']:.1f} s", "ok": t_pred <= 2})
    m = 20_000
    rates = np.asarray(__import__("lrkit").parse(f"warmup(500) then cos over {m}")(
        np.arange(m, dtype=np.float64)))
    curve = Curve.from_rates(rates, 1.0)
    th = law.theta
    t = np.arange(0, curve.n - curve.warmup + 1, 7)
    t_exact, exact = _timed(lambda: exact_loss_drop(curve, t, th[4], th[5], th[6]))
    fast, bound = DropTable(curve).loss_drop(t, th[4], th[5], th[6], bound=True)
    err = float(np.max(np.abs(fast - exact)))
    rows.append({"section": sec, "name": "compressed vs exact loss drop, 2e4-step cosine: max "
                 "error / max LD", "value": err / float(np.max(exact)), "unit": "",
                 "note": f"reported bound {float(np.max(bound)):.2e} (absolute); exact sum "
                 f"took {t_exact:.1f} s at {t.size} steps", "ok": bool(np.all(
                     np.abs(fast - exact) <= bound + 1e-12))})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LawWarning)
        t_opt, o = _timed(lambda: optimize(law, n), "optimize")
    rows.append({"section": sec, "name": "optimize a 1e4-step schedule", "value": t_opt,
                 "unit": "s", "note": f"target <= 60 s; predicted gain vs cosine "
                 f"{100 * o.gain_vs_cosine / o.cosine.loss:.2f} %", "ok": t_opt <= 60})
    for spec, steps in [("warmup(500) then linear", n),
                        ("warmup(500) then multistep([5000, 7500], 0.3)", n),
                        ("warmup(500) then cos", 2 * n), (f"wsd({3 * n}, warmup_steps=500, "
                                                          "decay_fraction=0.2)", 3 * n)]:
        truth = synthetic_run("multi-power", TRUE, spec, steps, peak=PEAK, every=steps // 10)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", LawWarning)
            pr = predict(law, spec, steps, base=PEAK, at=truth.steps)
        rel = np.abs(pr.loss / truth.losses - 1)
        rows.append({"section": sec, "name": f"held-out synthetic {spec} @ {steps}: final / "
                     "worst error", "value": 100 * rel[-1], "unit": "%",
                     "note": f"worst over the curve {100 * rel.max():.3f} %"})
    return rows


if __name__ == "__main__":
    for r in measure():
        ok = "" if r.get("ok") is None else (" met" if r["ok"] else " MISSED")
        print(f"{r['name']}: {r['value']:.4g} {r['unit']}{ok}  {r.get('note', '')}")
