"""Where runs come from (CSV, TensorBoard, lrkit run files) and law.json (save / load).

**CSV** with a header naming ``step``, ``lr`` and ``loss`` (other columns ignored): one row
per update or per logged step. The row for step ``s`` holds the rate update ``s`` used
and the training loss of update ``s``'s batch, computed before that update (after ``s``
completed updates), as a training loop logs them. A ``loss`` cell may be empty (a row that
only records the rate); ``lr`` cells may be empty or the column absent when a schedule spec
is given for the run (its rates are then the spec's, and given ``lr`` values must agree
with it). Without a spec, rates between logged steps are interpolated linearly.

**law.json**: plain data, ``{"format": "lrkit.law", "version": 1, "law": ..., "params":
{...}, "unit": ..., "runs": [...], ...}``, validated field by field on load.
"""

from __future__ import annotations

import csv
import json
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from lrkit.laws.fit import LawFit, LawWarning
from lrkit.laws.models import LAWS
from lrkit.laws.run import LawError, Run

__all__ = ["average_seeds", "load_law", "read_csv", "read_run_file", "read_tensorboard",
           "run_from_dict", "save_law"]

F64 = npt.NDArray[np.float64]

FORMAT = "lrkit.law"
VERSION = 1
#: relative disagreement between a logged rate and the spec's that is an error
RATE_TOLERANCE = 1e-3


def _build(name: str, lr_steps: F64, lr: F64, loss_steps: F64, loss: F64,
           spec: Any, base: float, seed: int | None = None) -> Run:
    """A Run from logged (step, lr) and (step, loss) pairs, and optionally a spec."""
    from lrkit.laws.predict import rates_of

    last = int(max(lr_steps.max() if lr_steps.size else 0, loss_steps.max()))
    n = last + 1
    if spec is not None:
        rates = rates_of(spec, n, base)
        if lr_steps.size:
            want = rates[lr_steps.astype(np.int64)]
            bad = np.abs(lr - want) > RATE_TOLERANCE * max(float(rates.max()), 1e-300)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise LawError(
                    f"{name}: the lr column disagrees with the spec at step "
                    f"{int(lr_steps[i])}: lr={float(lr[i])!r}, the spec gives {float(want[i])!r} "
                    f"(base lr {base:g}; check --base-lr or the spec)")
    else:
        if lr_steps.size == 0:
            raise LawError(f"{name}: no lr values and no schedule spec: give one of them")
        if lr_steps.size < n:
            warnings.warn(f"{name}: rates logged at {lr_steps.size} of {n} updates; the others "
                          "are interpolated linearly (give the schedule spec to be exact)",
                          LawWarning, stacklevel=3)
        rates = np.interp(np.arange(n, dtype=np.float64), lr_steps, lr)
    keep = loss_steps >= 1  # the loss before any update says nothing about the rates
    return Run(rates, loss_steps[keep].astype(np.int64), loss[keep], label=name, seed=seed)


def _number(text: str, what: str, where: str) -> float | None:
    text = text.strip()
    if text == "":
        return None
    try:
        return float(text)
    except ValueError:
        raise LawError(f"{where}: {what}={text!r} is not a number") from None


def read_csv(path: str | Path, spec: Any = None, base: float = 1.0,
             label: str | None = None) -> Run:
    """Read a run from a ``step,lr,loss`` CSV (see the module notes).

    Raises:
        LawError: a missing column, a row without a step, steps not strictly increasing,
            NaN / negative / constant losses, an lr column that disagrees with ``spec``.
    """
    path = Path(path)
    name = label or path.stem
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        try:
            header = [h.strip().lower() for h in next(reader)]
        except StopIteration:
            raise LawError(f"{path}: empty file (expected a header step,lr,loss)") from None
        for need in ("step", "loss"):
            if need not in header:
                raise LawError(f"{path}: no {need!r} column in the header {header} "
                               "(expected step,lr,loss)")
        if "lr" not in header and spec is None:
            raise LawError(f"{path}: no 'lr' column and no schedule spec: give one of them")
        cs, cl = header.index("step"), header.index("loss")
        cr = header.index("lr") if "lr" in header else None
        ls, lv, ps, pv = [], [], [], []
        prev = -1.0
        for k, row in enumerate(reader, start=2):
            if not row or all(not c.strip() for c in row):
                continue
            where = f"{path}:{k}"
            if len(row) < len(header):
                raise LawError(f"{where}: {len(row)} cells, expected {len(header)}")
            step = _number(row[cs], "step", where)
            if step is None:
                raise LawError(f"{where}: missing step")
            if step < 0 or step != math.floor(step):
                raise LawError(f"{where}: step={row[cs].strip()!r} is not a whole number >= 0")
            if step <= prev:
                raise LawError(f"{where}: steps are not increasing: {step:g} after {prev:g}")
            prev = step
            rate = _number(row[cr], "lr", where) if cr is not None else None
            if rate is not None:
                if not math.isfinite(rate) or rate < 0:
                    raise LawError(f"{where}: lr={rate!r} is invalid: expected a finite "
                                   "number >= 0")
                ls.append(step)
                lv.append(rate)
            loss = _number(row[cl], "loss", where)
            if loss is not None:
                if not math.isfinite(loss) or loss <= 0:
                    raise LawError(f"{where}: loss={row[cl].strip()!r} is invalid: expected "
                                   "a finite number > 0")
                ps.append(step)
                pv.append(loss)
    if not pv:
        raise LawError(f"{path}: no losses")
    return _build(name, np.array(ls), np.array(lv), np.array(ps), np.array(pv), spec, base)


def read_tensorboard(folder: str | Path, loss_tag: str, lr_tag: str | None = None,
                     spec: Any = None, base: float = 1.0, label: str | None = None) -> Run:
    """Read a run from a TensorBoard event folder: the scalars ``loss_tag`` and ``lr_tag``.

    Steps are TensorBoard's global steps, read as in the CSV (the loss at step ``s`` after
    ``s`` updates; the rate of update ``s``).
    """
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    folder = Path(folder)
    if not folder.is_dir():
        raise LawError(f"{folder}: not a folder of TensorBoard event files")
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    acc.Reload()
    tags = acc.Tags().get("scalars", [])

    def series(tag: str) -> tuple[F64, F64]:
        if tag not in tags:
            raise LawError(f"{folder}: no scalar {tag!r} (scalars there: "
                           f"{', '.join(tags) or 'none'})")
        ev = acc.Scalars(tag)
        steps = np.array([e.step for e in ev], dtype=np.float64)
        vals = np.array([e.value for e in ev], dtype=np.float64)
        order = np.argsort(steps, kind="stable")
        steps, vals = steps[order], vals[order]
        last = np.append(steps[1:] != steps[:-1], True)  # a re-logged step: keep the last
        return steps[last], vals[last]

    ps, pv = series(loss_tag)
    if lr_tag is None and spec is None:
        raise LawError(f"{folder}: give the rate's scalar tag or the schedule spec")
    ls, lv = series(lr_tag) if lr_tag is not None else (np.zeros(0), np.zeros(0))
    return _build(label or folder.name, ls, lv, ps, pv, spec, base)


def read_run_file(path: str | Path, metric: str = "train_loss") -> list[Run]:
    """Runs from an ``lrkit compare`` run file or its ``results.json`` (RUN_FORMAT v1).

    ``metric`` is ``"train_loss"`` (every update) or an evaluation metric (``"val_loss"``).
    Diverged and failed runs are refused.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise LawError(f"{path}: not a readable JSON run file: {e}") from None
    items = data.get("runs") if isinstance(data, dict) and "runs" in data else [data]
    if not isinstance(items, list):
        raise LawError(f"{path}: 'runs' is not a list")
    return [run_from_dict(d, f"{path} (run {i})", metric) for i, d in enumerate(items)]


def run_from_dict(d: Any, where: str, metric: str = "train_loss") -> Run:
    """One run file's object (RUN_FORMAT v1) as a :class:`Run`; ``where`` names it in errors."""
    if not isinstance(d, dict) or d.get("format") != "lrkit.run":
        raise LawError(f"{where}: not an lrkit run (expected \"format\": \"lrkit.run\")")
    if d.get("version") != 1:
        raise LawError(f"{where}: run file version {d.get('version')!r} is not supported "
                       "(this lrkit reads version 1)")
    if d.get("status") != "finished":
        raise LawError(f"{where}: run {d.get('id')!r} is {d.get('status')!r}, "
                       "not finished")
    upd = d.get("updates") or {}
    lr = np.asarray(upd.get("lr", []), dtype=np.float64)
    label = str(d.get("id", where))
    if metric == "train_loss":
        loss = np.asarray(upd.get("train_loss", []), dtype=np.float64)
        steps = np.arange(loss.size, dtype=np.float64)
    else:
        ev = d.get("evals") or {}
        if metric not in ev:
            raise LawError(f"{where}: no evaluation metric {metric!r} "
                           f"(has {', '.join(k for k in ev if k != 'step')})")
        steps = np.asarray(ev["step"], dtype=np.float64)
        loss = np.asarray(ev[metric], dtype=np.float64)
    if steps.size != loss.size:
        raise LawError(f"{where}: {steps.size} steps but {loss.size} values of {metric}")
    keep = (steps >= 1) & (steps <= lr.size)  # losses that follow updates with known rates
    seed = d.get("seed")
    return Run(lr, steps[keep].astype(np.int64), loss[keep], label=label,
               seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None)


def average_seeds(runs: Sequence[Run]) -> list[Run]:
    """Runs with one rate sequence (seeds) averaged: mean log-loss at their common steps."""
    groups: list[list[Run]] = []
    for r in runs:
        for g in groups:
            if g[0].n == r.n and np.allclose(g[0].rates, r.rates, rtol=1e-9, atol=0):
                g.append(r)
                break
        else:
            groups.append([r])
    out = []
    for g in groups:
        common = g[0].steps
        for r in g[1:]:
            common = np.intersect1d(common, r.steps)
        logs = [np.log(r.losses[np.searchsorted(r.steps, common)]) for r in g]
        label = g[0].label if len(g) == 1 else f"{g[0].label} (mean of {len(g)})"
        out.append(Run(g[0].rates, common, np.exp(np.mean(logs, 0)), label=label))
    return out


def save_law(fit: LawFit, path: str | Path) -> None:
    """Write ``fit`` as law.json (plain JSON)."""
    data = {"format": FORMAT, "version": VERSION, **fit_to_dict(fit)}
    Path(path).write_text(json.dumps(data, indent=1) + "\n")


def fit_to_dict(fit: LawFit) -> dict[str, Any]:
    return {
        "law": fit.law, "params": fit.params, "unit": fit.unit, "warmup": fit.warmup,
        "stderr": fit.stderr, "identified": fit.identified,
        "unidentified": fit.unidentified, "runs": fit.runs, "samples": fit.samples,
        "run_samples": fit.run_samples, "run_errors": fit.run_errors,
        "options": fit.options, "noise": fit.noise, "cost": fit.cost, "starts": fit.starts,
    }


def _num(where: str, v: Any, low: float | None = None, open_low: bool = False) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise LawError(f"{where}={v!r} is invalid: expected a finite number")
    if low is not None and (v < low or (open_low and v == low)):
        raise LawError(f"{where}={v!r} is invalid: expected a number "
                       f"{'>' if open_low else '>='} {low:g}")
    return float(v)


def load_law(path: str | Path) -> LawFit:
    """Read and validate a law.json written by :func:`save_law` (or ``lrkit fit``).

    Raises:
        LawError: not JSON, another format or version, an unknown law, missing, extra or
            non-finite parameters, a bad unit, runs or samples.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise LawError(f"{path}: not valid JSON ({e}): expected a law.json") from None
    except UnicodeDecodeError:
        raise LawError(f"{path}: not a text file: expected a law.json") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise LawError(f"{path}: not a law.json (expected \"format\": \"{FORMAT}\")")
    if data.get("version") != VERSION:
        raise LawError(f"{path}: law.json version {data.get('version')!r} is not supported "
                       f"(this lrkit reads version {VERSION})")
    law = data.get("law")
    if law not in LAWS:
        raise LawError(f"{path}: law={law!r} is invalid: expected one of {', '.join(LAWS)}")
    names = LAWS[law].params
    params = data.get("params")
    if not isinstance(params, dict) or set(params) != set(names):
        raise LawError(f"{path}: params must have exactly {', '.join(names)}")
    p = {k: _num(f"{path}: params.{k}", params[k]) for k in names}
    unit = _num(f"{path}: unit", data.get("unit"), 0.0, True)
    warmup = data.get("warmup")
    if not isinstance(warmup, int) or isinstance(warmup, bool) or warmup < 0:
        raise LawError(f"{path}: warmup={warmup!r} is invalid: expected an integer >= 0")
    runs = data.get("runs")
    if not isinstance(runs, list) or not runs or not all(
            isinstance(r, dict) and isinstance(r.get("updates"), int) and r["updates"] > 0
            and isinstance(r.get("final_rate"), (int, float)) for r in runs):
        raise LawError(f"{path}: runs must be a non-empty list of run summaries")
    samples, run_samples = data.get("samples", []), data.get("run_samples", [])
    for key, sets in (("samples", samples), ("run_samples", run_samples)):
        if not isinstance(sets, list) or not all(
                isinstance(s, list) and len(s) == len(names)
                and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                        and math.isfinite(v) for v in s)
                for s in sets):
            raise LawError(f"{path}: {key} must be lists of {len(names)} finite numbers")
    run_errors = data.get("run_errors", [0.0] * len(run_samples))
    if not isinstance(run_errors, list) or len(run_errors) != len(run_samples) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            and v >= 0 for v in run_errors):
        raise LawError(f"{path}: run_errors must be {len(run_samples)} finite numbers >= 0, "
                       "one per run_samples entry")
    stderr = data.get("stderr", {})
    options = data.get("options", {})
    if not isinstance(options, dict) or not isinstance(stderr, dict):
        raise LawError(f"{path}: options and stderr must be objects")
    if law == "annealing":
        decay = _num(f"{path}: options.decay", options.get("decay", 0.999), 0.0, True)
        if decay >= 1:
            raise LawError(f"{path}: options.decay={decay!r} is invalid: expected < 1")
    start = options.get("start", 0)
    if not isinstance(start, int) or isinstance(start, bool) or start < 0:
        raise LawError(f"{path}: options.start={start!r} is invalid: expected a step >= 0")
    scores = options.get("start_scores", [])
    if not isinstance(scores, list) or not all(
            isinstance(sc, list) and len(sc) == 2 and isinstance(sc[0], int)
            and not isinstance(sc[0], bool) and sc[0] >= 0
            and isinstance(sc[1], (int, float)) and not isinstance(sc[1], bool)
            and math.isfinite(sc[1]) and sc[1] >= 0 for sc in scores):
        raise LawError(f"{path}: options.start_scores must be [step >= 0, error >= 0] pairs")
    if law == "multi-power":
        near = options.get("near", 3)
        if not isinstance(near, int) or isinstance(near, bool) or not 2 <= near <= 64:
            raise LawError(f"{path}: options.near={near!r} is invalid: expected 2..64")
    return LawFit(
        law=law, params=p, unit=unit, warmup=warmup,
        stderr={k: float(stderr.get(k, math.nan)) for k in names},
        identified=bool(data.get("identified", False)),
        unidentified=[str(u) for u in data.get("unidentified", [])],
        runs=runs, samples=samples, run_samples=run_samples,
        run_errors=[float(v) for v in run_errors], options=options,
        noise=float(data.get("noise", math.nan)), cost=float(data.get("cost", math.nan)),
        starts=list(data.get("starts", [])))
