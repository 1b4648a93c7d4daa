"""Predicted against measured: a fitted law checked on runs it was not fitted to."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from lrkit.laws.fit import TAIL, LawFit, LawWarning
from lrkit.laws.predict import predict
from lrkit.laws.run import Run

__all__ = ["held_out", "held_out_table"]

def _tail(steps: np.ndarray, values: np.ndarray, end: int) -> float:
    k = max(1, round(TAIL * end))
    sel = steps > end - k
    return float(np.mean(values[sel])) if sel.any() else float(values[-1])


def held_out(law: LawFit, runs: Sequence[Run]) -> list[dict[str, Any]]:
    """For each run: the law's prediction from its rates against its measured losses.

    Final losses are means over the last 5 % of updates (law and measurement alike); the
    curve error is the mean relative error over the logged steps after warmup; R² is of
    the log loss; ``in_band`` says whether the measured final loss lies in the band
    (:func:`lrkit.laws.predict`). Warnings the prediction raises are listed per run.
    """
    rows = []
    for run in runs:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", LawWarning)
            p = predict(law, run.rates, run.n, label=run.label, at=run.steps)
        ok = np.isfinite(p.loss)
        steps, pred, meas = run.steps[ok], p.loss[ok], run.losses[ok]
        if steps.size == 0:
            continue
        pf, mf = _tail(steps, pred, run.n), _tail(steps, meas, run.n)
        lo = _tail(steps, p.low[ok], run.n) if p.low is not None else pf
        hi = _tail(steps, p.high[ok], run.n) if p.high is not None else pf
        ly = np.log(meas)
        ss_tot = float(np.sum((ly - ly.mean()) ** 2))
        r2 = 1 - float(np.sum((ly - np.log(pred)) ** 2)) / ss_tot if ss_tot > 0 else 0.0
        rows.append({"label": run.label, "updates": run.n, "predicted_final": pf,
                     "measured_final": mf, "final_error": pf / mf - 1,
                     "curve_error": float(np.mean(np.abs(pred / meas - 1))), "r2": r2,
                     "band": [lo, hi], "in_band": bool(lo <= mf <= hi),
                     "warnings": p.warnings})
    return rows


def held_out_table(rows: Sequence[dict[str, Any]]) -> str:
    """The rows of :func:`held_out` as a plain-text table."""
    lines = [f"{'run':<28}{'updates':>8}{'predicted':>11}{'measured':>10}{'error %':>9}"
             f"{'curve %':>9}{'R2':>8}  in band"]
    for r in rows:
        lines.append(f"{str(r['label'])[:27]:<28}{r['updates']:>8}{r['predicted_final']:>11.4f}"
                     f"{r['measured_final']:>10.4f}{100 * r['final_error']:>+9.2f}"
                     f"{100 * r['curve_error']:>9.2f}{r['r2']:>8.3f}  "
                     f"{'yes' if r['in_band'] else 'no'}")
    if rows:
        errs = [abs(r["final_error"]) for r in rows]
        lines.append(f"mean |error| {100 * np.mean(errs):.2f} %, worst {100 * max(errs):.2f} %,"
                     f" band covers {sum(r['in_band'] for r in rows)} of {len(rows)}")
    return "\n".join(lines)
