"""``from_timm``: the lrkit schedule of timm's ``create_scheduler_v2`` arguments."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lrkit._validate import bad, check_choice, check_int, check_number
from lrkit.schedules import (
    Constant,
    Cosine,
    CosineRestarts,
    Join,
    Linear,
    MultiStep,
    Plateau,
    Poly,
    Rel,
    Schedule,
    StepDecay,
    Tanh,
    TimeWarp,
    Warmup,
)
from lrkit.units import InEpochs

__all__ = ["TIMM_SCHEDS", "from_timm"]

TIMM_SCHEDS = ("cosine", "tanh", "step", "multistep", "plateau", "poly")


def from_timm(
    sched: str = "cosine",
    *,
    num_epochs: int = 300,
    decay_epochs: float = 90,
    decay_milestones: Sequence[float] = (90, 180, 270),
    cooldown_epochs: int = 0,
    patience_epochs: int = 10,
    decay_rate: float = 0.1,
    min_lr: float = 0.0,
    warmup_lr: float = 1e-5,
    warmup_epochs: int = 0,
    warmup_prefix: bool = False,
    noise: Any = None,
    cycle_mul: float = 1.0,
    cycle_decay: float = 0.1,
    cycle_limit: int = 1,
    k_decay: float = 1.0,
    plateau_mode: str = "max",
    step_on_epochs: bool = True,
    updates_per_epoch: int = 0,
    **ignored: Any,
) -> Schedule:
    r"""The lrkit schedule equal to ``timm.scheduler.create_scheduler_v2(opt, ...)``.

    Same arguments and defaults as timm. timm's semantics, followed exactly:

    - Warmup rises linearly from ``warmup_lr`` (absolute) to the base rate over
      ``warmup_epochs``; with ``warmup_prefix=False`` (timm's default) the schedule keeps
      its own clock (warmup *replaces* its first epochs and at the end of warmup the rate
      jumps to the schedule's value there); with ``warmup_prefix=True`` the schedule starts
      after warmup. Exception, as in timm: ``tanh`` without the prefix ramps to its own
      value at the end of warmup, not to the base rate.
    - ``step_on_epochs=True`` (``t_in_epochs``): the rate changes once per epoch. The
      result's steps are epochs, or, with ``updates_per_epoch=U``, optimizer updates with
      the value held for each epoch (:class:`~lrkit.units.InEpochs`, stepwise).
      ``step_on_epochs=False``: every length is multiplied by ``updates_per_epoch`` and the
      result's steps are updates.
    - ``cosine``: cycles of ``num_epochs`` growing by ``cycle_mul``, peaks decaying by
      ``cycle_decay``, ``cycle_limit`` cycles, then ``min_lr`` (with one cycle, timm's
      default, ``cycle_mul`` and ``cycle_decay`` have no effect). ``step``: times
      ``decay_rate`` every ``decay_epochs``. ``multistep``: times ``decay_rate`` from
      epoch ``m - 1`` on for each milestone ``m`` (timm's convention, one epoch earlier
      than torch's ``MultiStepLR``). ``poly``: power ``decay_rate`` down to ``min_lr``
      over ``num_epochs``. ``plateau``: :class:`~lrkit.Plateau` on the metric (``mode``
      ``plateau_mode``, factor ``decay_rate``, patience ``patience_epochs``).
    - ``cooldown_epochs`` only lengthens timm's returned epoch count: the rate there is
      the schedule's final value, as here.

    Raises:
        ConfigError: an unknown ``sched``, ``tanh`` with several cycles, ``noise`` (random
            perturbations have no closed form), ``k_decay != 1`` with several cycles,
            ``cycle_limit < 1`` (timm: ``lr_min`` throughout), cycles
            for ``poly``, a warmup for ``plateau``, ``step_on_epochs=False`` without
            ``updates_per_epoch`` or with ``plateau``, a bad value, or an unknown argument.

    Example:
        >>> s = from_timm("cosine", num_epochs=10, warmup_epochs=2, warmup_lr=0.0)
        >>> [round(s(e, base=1.0), 4) for e in range(4)]
        [0.0, 0.5, 0.9045, 0.7939]
    """
    for key, value in ignored.items():
        if key not in ("noise_pct", "noise_std", "noise_seed"):
            raise bad(key, value, "an argument of timm's create_scheduler_v2")
    check_choice("sched", sched, TIMM_SCHEDS)
    if noise is not None:
        raise bad("noise", noise, "None (lrkit schedules are exact functions of the step)")
    # create_scheduler_v2 passes k_decay to cosine and poly only, and cycle arguments to
    # cosine, tanh and poly only: the other schedulers ignore them, and so does lrkit
    cyclic = sched in ("cosine", "tanh", "poly")
    k = check_number("k_decay", k_decay, low=0, low_open=True) if sched in (
        "cosine", "poly") else 1.0
    limit = check_int("cycle_limit", cycle_limit, low=1) if cyclic else 1
    if k != 1 and limit != 1:
        raise bad("k_decay", k_decay, "1.0 when cycle_limit > 1 (k-decay within "
                  "restarting cycles is not supported)")
    upe = check_int("updates_per_epoch", updates_per_epoch, low=0)
    if not isinstance(step_on_epochs, bool):
        raise bad("step_on_epochs", step_on_epochs, "True or False")
    if not step_on_epochs and upe == 0:
        raise bad("updates_per_epoch", updates_per_epoch,
                  "the updates per epoch (> 0) with step_on_epochs=False")
    scale = 1 if step_on_epochs else upe
    t_initial = check_number("num_epochs", num_epochs, low=0, low_open=True) * scale
    warm = check_number("warmup_epochs", warmup_epochs, low=0.0) * scale
    start = check_number("warmup_lr", warmup_lr, low=0.0)
    lr_min = check_number("min_lr", min_lr, low=0.0)
    rate = check_number("decay_rate", decay_rate, low=0.0)

    inner: Schedule
    if sched == "cosine" and limit == 1:
        # one cycle: timm only ever evaluates cycle 0 (length t_initial, peak the base rate),
        # so cycle_mul and cycle_decay play no part and any value of them is accepted
        inner = Cosine(t_initial, end=lr_min)
        if k != 1:
            inner = TimeWarp(inner, t_initial, k)
    elif sched == "cosine":
        inner = CosineRestarts(t_initial, check_number("cycle_mul", cycle_mul, low=1.0),
                               end=lr_min, max_cycles=limit, peak_decay=check_number(
                                   "cycle_decay", cycle_decay, low=0.0, high=1.0))
    elif sched == "tanh":  # timm's defaults lb=-7, ub=3 (not arguments of create_scheduler_v2)
        if limit != 1:
            raise bad("cycle_limit", cycle_limit, "1 for sched='tanh' (one cycle)")
        # timm's cycle ends at lr_min exactly (the tanh curve stops short of it)
        inner = Join((Tanh(t_initial, end=lr_min), Constant(lr_min)), (t_initial,))
    elif sched == "poly":  # one cycle: cycle_mul and cycle_decay play no part (as cosine)
        if limit != 1:
            raise bad("cycle_limit", cycle_limit, "1 for sched='poly' (one cycle)")
        inner = Poly(t_initial, rate, end=lr_min)
        if k != 1:
            inner = TimeWarp(inner, t_initial, k)
    elif sched == "step":
        step = check_number("decay_epochs", decay_epochs, low=0, low_open=True) * scale
        inner = StepDecay(round(step) if step == round(step) else step, rate)
    elif sched == "multistep":
        ms = [check_number(f"decay_milestones[{i}]", m, low=0.0) * scale
              for i, m in enumerate(decay_milestones)]
        inner = MultiStep(tuple(max(m - 1, 0.0) for m in sorted(ms)), rate)
    else:  # plateau
        if not step_on_epochs:
            raise bad("step_on_epochs", step_on_epochs, "True for sched='plateau' (as timm)")
        if warm:
            raise bad("warmup_epochs", warmup_epochs, "0 for sched='plateau' (not supported)")
        mode = check_choice("plateau_mode", plateau_mode, ("min", "max"))
        inner = Plateau(Constant(), factor=rate, patience=check_int(
            "patience_epochs", patience_epochs, low=0), mode=mode, min_lr=lr_min)
    if not isinstance(warmup_prefix, bool):
        raise bad("warmup_prefix", warmup_prefix, "True or False")
    s: Schedule = inner
    if warm > 0 and sched == "tanh" and not warmup_prefix:
        # timm's TanhLRScheduler (unlike the others) ramps towards its own value at
        # warmup_t, not towards the base rate, when the warmup is not a prefix
        s = Warmup(inner, warm, start=start, mode="overlap")
    elif warm > 0:
        ramp = Linear(warm, start, Rel(1.0))
        s = Join((ramp, inner), (warm,), local=warmup_prefix)
    if step_on_epochs and upe:
        s = InEpochs(s, upe, stepwise=True)
    return s
