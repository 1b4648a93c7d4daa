"""``from_mmengine``: the lrkit schedule of an mmengine-style ``param_scheduler`` list."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

from lrkit._validate import bad, check_int, check_number
from lrkit.convert._torch import one_cycle_phases
from lrkit.schedules import (
    Constant,
    Cosine,
    Exponential,
    Hold,
    Join,
    Linear,
    MultiStep,
    OneCycle,
    Poly,
    Product,
    Rel,
    Repeat,
    Schedule,
    StepDecay,
    Warmup,
)
from lrkit.units import InEpochs

__all__ = ["MMENGINE_TYPES", "from_mmengine"]

MMENGINE_TYPES = ("LinearLR", "ConstantLR", "CosineAnnealingLR", "PolyLR", "ExponentialLR",
                  "StepLR", "MultiStepLR", "OneCycleLR", "CosineRestartLR")
_COMMON = ("type", "begin", "end", "by_epoch", "convert_to_iter_based")
_ARGS = {
    "LinearLR": ("start_factor", "end_factor"),
    "ConstantLR": ("factor",),
    "CosineAnnealingLR": ("T_max", "eta_min", "eta_min_ratio"),
    "PolyLR": ("eta_min", "power"),
    "ExponentialLR": ("gamma",),
    "StepLR": ("step_size", "gamma"),
    "MultiStepLR": ("milestones", "gamma"),
    "OneCycleLR": ("eta_max", "total_steps", "pct_start", "anneal_strategy", "div_factor",
                   "final_div_factor", "three_phase"),
    "CosineRestartLR": ("periods", "restart_weights", "eta_min", "eta_min_ratio"),
}
Piece = tuple[int, float, Schedule, bool, str]  # begin, end, schedule, pure factor, label


def from_mmengine(
    param_scheduler: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    *,
    epoch_length: int | None = None,
) -> Schedule:
    r"""The lrkit schedule of an mmengine ``param_scheduler`` config (one dict or a list).

    mmengine's semantics (its closed forms, as its docs state them): each scheduler acts on
    ``begin <= step < end`` with its own local step ``t = step - begin``; ``LinearLR``,
    ``ConstantLR`` and ``PolyLR`` reach their end at ``t = end - begin - 1``;
    ``CosineAnnealingLR`` uses ``T_max`` (default ``end - begin``) and ``eta_min`` or
    ``eta_min_ratio``, and with ``T_max`` shorter than its range climbs back up after
    ``T_max`` (period ``2 T_max``, as torch); ``MultiStepLR`` milestones count local steps;
    a ``ConstantLR`` one step long keeps its factor (mmengine never undoes it). Outside
    every range the rate holds (the base rate before the first). ``by_epoch=True`` entries
    with ``convert_to_iter_based=True`` are converted as mmengine does (``begin``, ``end``,
    ``T_max``, ``step_size``, ``milestones``, ``total_steps`` times ``epoch_length``). A list of
    ``by_epoch=True`` entries without conversion gives a schedule in epochs, or with
    ``epoch_length`` one in updates that changes once per epoch.

    Overlapping ranges, or a scheduler that follows one not ending at the base rate, chain
    as in mmengine: each scheduler multiplies the rate by its factor, so the rate is the base
    times the product of the factors (each 1 before its range, held after it). This is
    exact for the schedulers whose chainable form is a pure factor (all but OneCycleLR,
    PolyLR / CosineAnnealingLR with a nonzero ``eta_min``, and a CosineAnnealingLR whose
    range runs past ``T_max + 1``). A list that mixes
    ``by_epoch=True`` and ``by_epoch=False`` entries (mmdet's iteration warmup with an
    epoch ``MultiStepLR``) needs ``epoch_length``; the epoch entries then change the rate at
    epoch boundaries.

    Raises:
        ConfigError: an unknown type or argument, chained schedulers that are not pure
            factors, a ``param_name`` other than ``lr``, or a missing ``epoch_length``.

    Example:
        >>> s = from_mmengine([
        ...     dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=5),
        ...     dict(type="CosineAnnealingLR", by_epoch=False, begin=5, end=15),
        ... ])
        >>> [round(s(k), 3) for k in (0, 4, 5, 10, 15)]
        [0.1, 1.0, 1.0, 0.5, 0.024]
    """
    items = [param_scheduler] if isinstance(param_scheduler, Mapping) else list(param_scheduler)
    if not items:
        raise bad("param_scheduler", param_scheduler, "at least one scheduler dict")
    if epoch_length is not None:
        epoch_length = check_int("epoch_length", epoch_length, low=1)
    pieces: list[Piece] = []
    units: set[str] = set()
    for i, raw in enumerate(items):
        path = f"param_scheduler[{i}]"
        begin, end, sched, unit, mult = _one(raw, path, epoch_length)
        units.add(unit)
        pieces.append((begin, end, sched, mult, f"{path} ({raw.get('type')})"))
    if len(units) > 1:
        if epoch_length is None:
            raise bad("epoch_length", None, "the iterations per epoch (the list mixes "
                      "by_epoch=True and by_epoch=False schedulers)")
        pieces = [_to_iters(p, epoch_length) if u == "epoch" else p
                  for p, u in zip(pieces, _units(items), strict=True)]
        units = {"iter"}
    pieces.sort(key=lambda p: p[0])
    out = _product(pieces) if _chained(pieces) else _sequence(pieces)
    if units == {"epoch"} and epoch_length is not None:
        out = InEpochs(out, epoch_length, stepwise=True)
    return out


def _units(items: list[Mapping[str, Any]]) -> list[str]:
    return ["epoch" if r.get("by_epoch", True) and not r.get("convert_to_iter_based", False)
            else "iter" for r in items]


def _to_iters(piece: Piece, length: int) -> Piece:
    """An epoch-based scheduler in a list of iteration-based ones: it changes at epoch
    boundaries, its local epoch being ``floor(iteration / length) - begin``."""
    begin, end, s, mult, label = piece
    return begin * length, end * length, InEpochs(s, length, stepwise=True), mult, label


def _chained(pieces: list[Piece]) -> bool:
    """Whether a scheduler starts before the previous one ends, or after one that does not
    end at the base rate: then mmengine's chained factors multiply."""
    for (b0, e0, s0, *_), (b1, *_) in itertools.pairwise(pieces):
        if b1 < e0 or not math.isclose(float(s0(max(e0 - b0 - 1, 0))), 1.0, rel_tol=1e-12):
            return True
    return False


def _product(pieces: list[Piece]) -> Schedule:
    """Overlapping (chained) schedulers: each multiplies the rate by its factor, 1 before it
    begins and its last factor after it ends; the rate is the base times the product."""
    factors: list[Schedule] = [Constant()]  # the base rate
    for begin, _, s, mult, label in pieces:
        if not mult:
            raise bad("param_scheduler", label,
                      "schedulers that only multiply the rate (LinearLR, ConstantLR, StepLR, "
                      "MultiStepLR, ExponentialLR, PolyLR and CosineAnnealingLR with "
                      "eta_min=0) where ranges overlap or a factor is carried over: make the "
                      "ranges follow one another, each scheduler starting where the one "
                      "before it ends at the base rate")
        factor = s.bind(1.0)
        factors.append(factor if begin == 0 else Join((Constant(1.0), factor), (float(begin),)))
    return Product(tuple(factors))


def _sequence(pieces: list[Piece]) -> Schedule:
    """Schedulers one after another, each starting from the base rate."""
    scheds: list[Schedule] = []
    bounds: list[float] = []
    if pieces[0][0] > 0:
        scheds.append(Constant())
    for begin, _, s, *_ in pieces:
        if begin > 0 or scheds:
            bounds.append(float(begin))
        scheds.append(s)
    return scheds[0] if len(scheds) == 1 else Join(tuple(scheds), tuple(bounds))


def _num(raw: Mapping[str, Any], key: str, path: str, default: Any, **kw: Any) -> float:
    return check_number(f"{path}.{key}", raw.get(key, default), **kw)


def _one(
    raw: Mapping[str, Any], path: str, epoch_length: int | None
) -> tuple[int, float, Schedule, str, bool]:
    if not isinstance(raw, Mapping):
        raise bad(path, raw, "a dict with a 'type'")
    kind = raw.get("type")
    if kind not in _ARGS:
        raise bad(f"{path}.type", kind, "one of " + ", ".join(MMENGINE_TYPES))
    for key in raw:
        if key == "param_name" and raw[key] == "lr":
            continue
        if key not in _COMMON + _ARGS[kind]:
            raise bad(f"{path}.{key}", raw[key], f"an argument of mmengine's {kind}")
    by_epoch = raw.get("by_epoch", True)
    convert = raw.get("convert_to_iter_based", False)
    mult = 1
    unit = "epoch" if by_epoch else "iter"
    if by_epoch and convert:
        if epoch_length is None:
            raise bad("epoch_length", None, f"the iterations per epoch ({path} converts "
                      "epochs to iterations)")
        mult, unit = epoch_length, "iter"
    begin = check_int(f"{path}.begin", raw.get("begin", 0), low=0)
    end_raw = raw.get("end", math.inf)
    end = math.inf if end_raw == math.inf else float(
        check_int(f"{path}.end", end_raw, low=begin + 1))
    begin *= mult
    end = end * mult if math.isfinite(end) else end
    span = end - begin  # inf for an open range

    def need_end(what: str) -> float:
        if not math.isfinite(span):
            raise bad(f"{path}.end", end_raw, f"a finite end ({kind} needs it for {what})")
        return span

    s: Schedule
    if kind == "LinearLR":
        a = _num(raw, "start_factor", path, 1.0 / 3, low=0.0, high=1.0)
        b = _num(raw, "end_factor", path, 1.0, low=0.0, high=1.0)
        s = Linear(need_end("its length") - 1, Rel(a), Rel(b)) if span > 1 else Constant(Rel(a))
    elif kind == "ConstantLR":
        f = _num(raw, "factor", path, 1.0 / 3, low=0.0, high=1.0)
        n = need_end("its length") - 1
        # mmengine restores the rate at local step n, except when n = 0: its first step
        # applies the factor and there is no later step in range, so the factor stays
        s = Warmup(Constant(), n, start=Rel(f), shape="constant") if n else Constant(Rel(f))
    elif kind == "CosineAnnealingLR":
        t_max = raw.get("T_max")
        t_max = need_end("T_max") if t_max is None else check_number(
            f"{path}.T_max", t_max, low=0, low_open=True) * mult
        eta, ratio = raw.get("eta_min"), raw.get("eta_min_ratio")
        if eta is not None and ratio is not None:
            raise bad(f"{path}.eta_min_ratio", ratio, "None when eta_min is given")
        floor = Rel(_num(raw, "eta_min_ratio", path, 0.0, low=0.0)) if ratio is not None \
            else _num(raw, "eta_min", path, 0.0, low=0.0)
        s = Cosine(t_max, end=floor)
        if t_max < span - 1:  # mmengine's cosine climbs back after T_max (period 2 T_max)
            rise = Cosine(t_max, peak=floor, end=Rel(1.0))
            s = Repeat(Join((s, rise), (t_max,)), period=2 * t_max)
    elif kind == "PolyLR":
        n = need_end("its length") - 1
        power = _num(raw, "power", path, 1.0, low=0, low_open=True)
        eta_min = _num(raw, "eta_min", path, 0.0, low=0.0)
        # a one-step range (n = 0) only runs mmengine's first step, which keeps the rate
        s = Poly(n, power, end=eta_min) if n else Constant()
    elif kind == "ExponentialLR":
        s = Exponential(_num(raw, "gamma", path, None, low=0.0, high=1.0))
    elif kind == "StepLR":
        size = check_int(f"{path}.step_size", raw.get("step_size"), low=1) * mult
        s = StepDecay(size, _num(raw, "gamma", path, 0.1, low=0.0))
    elif kind == "MultiStepLR":
        ms = raw.get("milestones")
        if not isinstance(ms, (list, tuple)) or not ms:
            raise bad(f"{path}.milestones", ms, "a non-empty list of steps")
        s = MultiStep(tuple(sorted(check_int(f"{path}.milestones[{i}]", m, low=0) * mult
                                   for i, m in enumerate(ms))),
                      _num(raw, "gamma", path, 0.1, low=0.0))
    elif kind == "CosineRestartLR":
        s = _cosine_restart(raw, path, mult)
    else:  # OneCycleLR
        total = raw.get("total_steps")
        total = need_end("total_steps") if total is None else check_int(
            f"{path}.total_steps", total, low=2) * mult  # epochs to iterations, as begin
        pct = _num(raw, "pct_start", path, 0.3, low=0.0, high=1.0)
        anneal = raw.get("anneal_strategy", "cos")
        if anneal not in ("cos", "linear"):
            raise bad(f"{path}.anneal_strategy", anneal, "'cos' or 'linear'")
        peak = _num(raw, "eta_max", path, None, low=0, low_open=True)
        div = _num(raw, "div_factor", path, 25.0, low=0, low_open=True)
        final_div = _num(raw, "final_div_factor", path, 1e4, low=0, low_open=True)
        three = bool(raw.get("three_phase", False))
        # mmengine's phase ends and values (as torch's OneCycleLR)
        ends = [float(pct * total) - 1, float(2 * pct * total) - 2, total - 1.0] if three \
            else [float(pct * total) - 1, total - 1.0]
        if ends[0] == 0:
            raise bad(f"{path}.pct_start", pct, "pct_start * total_steps != 1 (the rise would "
                      "end at step 0, where mmengine divides by zero)")
        if ends[0] > 0 and all(a < b for a, b in itertools.pairwise(ends)):
            s = OneCycle(total, peak, pct, div, final_div, anneal, three)
        else:  # no rise, or an empty phase after it: the phases as mmengine runs them
            first = peak / div
            values = [first, peak, first, first / final_div] if three else \
                [first, peak, first / final_div]
            s = one_cycle_phases(ends, values, anneal)
    # past T_max + 1 mmengine's chainable cosine adds a step of the base rate: no factor
    mult_form = _multiplicative(kind, raw) and not isinstance(s, Repeat)
    if math.isfinite(span) and kind not in ("LinearLR", "ConstantLR", "PolyLR"):
        s = Hold(s, after=span - 1)  # the last step the scheduler applies
    return begin, end, s, unit, mult_form


def _cosine_restart(raw: Mapping[str, Any], path: str, mult: int) -> Schedule:
    """mmengine's CosineRestartLR: period ``i`` restarts at ``base * restart_weights[i]`` and
    anneals towards ``eta_min`` (reached one step after the period); after the last period
    the rate holds (mmengine returns the group's current value)."""
    periods, weights = raw.get("periods"), raw.get("restart_weights", (1,))
    if not isinstance(periods, (list, tuple)) or not periods:
        raise bad(f"{path}.periods", periods, "a non-empty list of period lengths")
    if not isinstance(weights, (list, tuple)) or len(weights) != len(periods):
        raise bad(f"{path}.restart_weights", weights,
                  f"a list of {len(periods)} weights, one per period")
    lengths = [check_int(f"{path}.periods[{i}]", p, low=1) * mult for i, p in enumerate(periods)]
    ws = [check_number(f"{path}.restart_weights[{i}]", w, low=0.0) for i, w in enumerate(weights)]
    eta, ratio = raw.get("eta_min"), raw.get("eta_min_ratio")
    if (eta is None) == (ratio is None):
        raise bad(f"{path}.eta_min", eta, "exactly one of eta_min and eta_min_ratio")
    floor = Rel(_num(raw, "eta_min_ratio", path, 0.0, low=0.0)) if ratio is not None \
        else _num(raw, "eta_min", path, 0.0, low=0.0)
    cycles = tuple(Cosine(n, peak=Rel(w), end=floor) for n, w in zip(lengths, ws, strict=True))
    bounds = tuple(float(b) for b in itertools.accumulate(lengths[:-1]))
    return Hold(Join(cycles, bounds) if bounds else cycles[0], after=sum(lengths) - 1)


def _multiplicative(kind: str, raw: Mapping[str, Any]) -> bool:
    """Whether mmengine's chainable form only multiplies the current rate by a factor."""
    if kind in ("LinearLR", "ConstantLR", "StepLR", "MultiStepLR", "ExponentialLR"):
        return True
    if kind in ("PolyLR", "CosineAnnealingLR"):
        return not raw.get("eta_min") and not raw.get("eta_min_ratio")
    return False
