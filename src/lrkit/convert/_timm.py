"""``from_timm``: the lrkit schedule of timm's ``create_scheduler_v2`` arguments."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, overload

from lrkit._validate import bad, check_choice, check_int, check_number
from lrkit.schedules import (
    WSD,
    Clamp,
    Constant,
    Cosine,
    CosineRestarts,
    ExpDecay,
    InverseSqrt,
    Join,
    Lerp,
    Linear,
    MultiStep,
    Plateau,
    Poly,
    Product,
    Rel,
    Scale,
    Schedule,
    SqrtDecay,
    StepDecay,
    Tanh,
    TimeWarp,
    Warmup,
)
from lrkit.units import InEpochs

__all__ = ["TIMM_SCHEDS", "from_timm"]

TIMM_SCHEDS = ("cosine", "tanh", "step", "multistep", "plateau", "poly", "wsd", "rsqrt",
               "constant", "none")
# timm's decay_fn -> lrkit's shape ('power' with create_scheduler_v2's decay_power=0.5 is
# 1 - sqrt; 'exp' with its decay_ratio=0.1 is ExpDecay(ratio=0.1))
_WSD_DECAYS = {"linear": "linear", "cosine": "cosine", "1-sqrt": "1-sqrt", "power": "1-sqrt",
               "exp": "exp"}
_TIMM_DECAY_RATIO = 0.1


@overload
def from_timm(sched: str = ..., *, optimizer: None = None, **kwargs: Any) -> Schedule: ...


@overload
def from_timm(sched: str = ..., *, optimizer: Any, **kwargs: Any) -> list[Schedule]: ...


def from_timm(
    sched: str = "cosine",
    *,
    num_epochs: int = 300,
    decay_epochs: float | None = None,
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
    decay_fn: str | None = None,
    stable_timescale: float | None = None,
    plateau_mode: str = "max",
    step_on_epochs: bool = True,
    updates_per_epoch: int = 0,
    optimizer: Any = None,
    **ignored: Any,
) -> Schedule | list[Schedule]:
    r"""The lrkit schedule equal to ``timm.scheduler.create_scheduler_v2(opt, ...)``.

    Same arguments and defaults as timm (1.0.x). Step :math:`k` of the result is the rate of
    update (or epoch) :math:`k` in timm's own training loop (``train.py``): the rate set at
    construction for the first one, then ``step_update(num_updates)`` after every update
    and ``step(epoch + 1, metric)`` after every epoch. timm's semantics, followed exactly:

    - Update 0 (epoch 0) uses the rate timm sets at construction: the base rate, or
      ``warmup_lr`` with a warmup. (timm's formula is never evaluated there: for ``tanh``
      or a ``multistep`` milestone at 1 it would give another value.)
    - Warmup rises linearly from ``warmup_lr`` (absolute) to the base rate over
      ``warmup_epochs``; with ``warmup_prefix=False`` (timm's default) the schedule keeps
      its own clock (warmup *replaces* its first epochs and at the end of warmup the rate
      jumps to the schedule's value there); with ``warmup_prefix=True`` the schedule starts
      after warmup. Exception, as in timm: ``tanh`` without the prefix ramps to its own
      value at the end of warmup, not to the base rate. ``wsd`` and ``rsqrt`` always put
      the warmup first (without the prefix their stable and decay phases fit in
      ``num_epochs``).
    - ``step_on_epochs=True`` (``t_in_epochs``): the rate changes once per epoch. The
      result's steps are epochs, or, with ``updates_per_epoch=U``, optimizer updates with
      the value held for each epoch (:class:`~lrkit.units.InEpochs`, stepwise).
      ``step_on_epochs=False``: every length is multiplied by ``updates_per_epoch`` and the
      result's steps are updates.
    - ``cosine``: cycles of ``num_epochs`` growing by ``cycle_mul``, peaks decaying by
      ``cycle_decay``, ``cycle_limit`` cycles, then ``min_lr`` (with one cycle, timm's
      default, ``cycle_mul`` and ``cycle_decay`` have no effect). ``step``: times
      ``decay_rate`` every ``decay_epochs`` (default 90). ``multistep``: times
      ``decay_rate`` from epoch ``m - 1`` on for each milestone ``m`` (timm's convention,
      one epoch earlier than torch's ``MultiStepLR``). ``poly``: power ``decay_rate`` down
      to ``min_lr`` over ``num_epochs``. ``constant``: the base rate after the warmup.
      ``none``: timm returns no scheduler, the optimizer's rate stays (``Constant()``).
    - ``wsd``: stable at the base rate, then ``decay_fn`` (default ``1-sqrt``; ``linear``,
      ``cosine``, ``power``, ``exp``: :class:`~lrkit.ExpDecay` with timm's ratio 0.1) to
      ``min_lr`` over the last ``decay_epochs`` (default 0.2: a value in ``(0, 1)`` is a
      fraction) of the stable + decay length. ``rsqrt``: the
      stable phase is ``base / sqrt(1 + t / stable_timescale)`` (default timescale: the
      warmup length), decayed (default ``linear``) towards ``min_lr``. As timm, after the
      warmup the stable value is floored at ``min_lr`` (:class:`~lrkit.Clamp`; for
      ``wsd`` this matters in a group whose base rate is below ``min_lr``: it runs at
      ``min_lr``), and the decay pulls it to ``min_lr`` (:class:`~lrkit.Lerp`).
    - ``plateau``: :class:`~lrkit.Plateau` on the metric (``mode`` ``plateau_mode``, factor
      ``decay_rate``, patience ``patience_epochs``). With ``updates_per_epoch=U`` it
      decides every ``U`` updates (``every=U``): call ``scheduler.step()`` after each
      update and ``scheduler.step(metric)`` after the last update of each epoch.
    - ``cooldown_epochs`` only lengthens timm's returned epoch count: the rate there is
      the schedule's final value, as here.
    - ``optimizer``: timm multiplies every rate it writes to a group by the group's
      ``lr_scale`` (layer-wise decay, as timm's optimizer factory sets it), the warmup and
      ``min_lr`` included. Pass the optimizer to get one schedule per param group (a list
      that :class:`lrkit.torch.LRScheduler` takes as is), each scaled by its group's
      ``lr_scale``; for ``plateau`` the floor ``min_lr`` is not scaled (torch's
      ``ReduceLROnPlateau`` applies it to the scaled rate). Without ``optimizer`` the
      result is the schedule of a group without ``lr_scale``.

    Raises:
        ConfigError: an unknown ``sched``, ``tanh`` with several cycles, ``noise`` (random
            perturbations have no closed form), ``k_decay != 1`` with several cycles,
            ``cycle_limit < 1`` (timm: ``lr_min`` throughout), cycles
            for ``poly``, a warmup for ``plateau``, ``step_on_epochs=False`` without
            ``updates_per_epoch`` or with ``plateau``, a callable ``decay_fn``, a bad
            value, or an unknown argument.

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
    scales = _lr_scales(optimizer)
    if sched == "none":  # timm returns no scheduler: the optimizer keeps its rates
        return Constant() if scales is None else [Constant() for _ in scales]
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
    if not isinstance(warmup_prefix, bool):
        raise bad("warmup_prefix", warmup_prefix, "True or False")
    if not step_on_epochs and upe == 0:
        raise bad("updates_per_epoch", updates_per_epoch,
                  "the updates per epoch (> 0) with step_on_epochs=False")
    scale = 1 if step_on_epochs else upe
    t_initial = check_number("num_epochs", num_epochs, low=0, low_open=True) * scale
    warm = check_number("warmup_epochs", warmup_epochs, low=0.0) * scale
    start = check_number("warmup_lr", warmup_lr, low=0.0)
    lr_min = check_number("min_lr", min_lr, low=0.0)
    rate = check_number("decay_rate", decay_rate, low=0.0)
    if decay_fn is not None and sched not in ("wsd", "rsqrt"):
        decay_fn = None  # create_scheduler_v2 passes it to wsd / rsqrt only

    if sched == "plateau":
        if not step_on_epochs:
            raise bad("step_on_epochs", step_on_epochs, "True for sched='plateau' (as timm)")
        if warm:
            raise bad("warmup_epochs", warmup_epochs, "0 for sched='plateau' (not supported)")
        mode = check_choice("plateau_mode", plateau_mode, ("min", "max"))
        patience = check_int("patience_epochs", patience_epochs, low=0)

        def plateau(f: float) -> Schedule:
            return Plateau(Constant(Rel(f)), factor=rate, patience=patience, mode=mode,
                           min_lr=lr_min, every=max(upe, 1))

        return plateau(1.0) if scales is None else [plateau(f) for f in scales]

    inner: Schedule
    if sched in ("wsd", "rsqrt"):
        s = _wsd(sched, t_initial, warm, start, lr_min, warmup_prefix, decay_epochs, scale,
                 decay_fn, stable_timescale)
    else:
        if sched == "cosine" and limit == 1:
            # one cycle: timm only ever evaluates cycle 0 (length t_initial, peak the base
            # rate), so cycle_mul and cycle_decay play no part and any value is accepted
            inner = Cosine(t_initial, end=lr_min)
            if k != 1:
                inner = TimeWarp(inner, t_initial, k)
        elif sched == "cosine":
            inner = CosineRestarts(t_initial, check_number("cycle_mul", cycle_mul, low=1.0),
                                   end=lr_min, max_cycles=limit, peak_decay=check_number(
                                       "cycle_decay", cycle_decay, low=0.0, high=1.0))
        elif sched == "tanh":  # timm's defaults lb=-7, ub=3 (not create_scheduler_v2 arguments)
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
            epochs = 90 if decay_epochs is None else decay_epochs
            step = check_number("decay_epochs", epochs, low=0, low_open=True) * scale
            inner = StepDecay(round(step) if step == round(step) else step, rate)
        elif sched == "constant":  # timm: a StepLRScheduler with decay_rate=1
            inner = Constant()
        else:  # multistep
            ms = [check_number(f"decay_milestones[{i}]", m, low=0.0) * scale
                  for i, m in enumerate(decay_milestones)]
            inner = MultiStep(tuple(max(m - 1, 0.0) for m in sorted(ms)), rate)
        s = inner
        if warm > 0 and sched == "tanh" and not warmup_prefix:
            # timm's TanhLRScheduler (unlike the others) ramps towards its own value at
            # warmup_t, not towards the base rate, when the warmup is not a prefix
            s = Warmup(inner, warm, start=start, mode="overlap")
        elif warm > 0:
            ramp = Linear(warm, start, Rel(1.0))
            s = Join((ramp, inner), (warm,), local=warmup_prefix)
    if warm == 0:
        # the first update uses the rate set at construction, the base rate: timm's
        # formula is first evaluated by the step after it
        s = Join((Constant(), s), (1.0,), local=False)
    if step_on_epochs and upe:
        s = InEpochs(s, upe, stepwise=True)
    if scales is None:
        return s
    return [s if f == 1.0 else Scale(s, f) for f in scales]


def _lr_scales(optimizer: Any) -> list[float] | None:
    """Each param group's ``lr_scale`` (1 where a group has none), or None without an
    optimizer."""
    if optimizer is None:
        return None
    groups = getattr(optimizer, "param_groups", None)
    if not isinstance(groups, list) or not groups:
        raise bad("optimizer", optimizer, "a torch optimizer (with param_groups) or None")
    return [check_number(f"param_groups[{i}]['lr_scale']", g.get("lr_scale", 1.0), low=0.0)
            for i, g in enumerate(groups)]


def _wsd(
    sched: str, t_initial: float, warm: float, start: float, lr_min: float, prefix: bool,
    decay_epochs: float | None, scale: int, decay_fn: str | None, timescale: float | None,
) -> Schedule:
    """timm's ``WSDLRScheduler`` as create_scheduler_v2 builds it for 'wsd' / 'rsqrt'."""
    t_sched = t_initial if prefix else t_initial - warm
    epochs = 0.2 if decay_epochs is None else check_number(
        "decay_epochs", decay_epochs, low=0, low_open=True)
    decay = round(epochs * t_sched if epochs < 1 else epochs * scale)
    if not 0 < decay <= t_sched:
        raise bad("decay_epochs", decay_epochs, f"a decay of 1 to {t_sched:g} "
                  f"{'epochs' if scale == 1 else 'updates'} (timm: 0 < decay <= epochs"
                  f"{'' if prefix else ' - warmup_epochs'}; it rounds to {decay})")
    fn = decay_fn or ("linear" if sched == "rsqrt" else "1-sqrt")
    if fn not in _WSD_DECAYS:
        allowed = "'linear', '1-sqrt', 'cosine', 'power' or 'exp'"
        if callable(fn):
            allowed += (" (a callable decay has no lrkit form: build the whole schedule in "
                        "lrkit, e.g. WSD(..., decay_shape='cosine'))")
        raise bad("decay_fn", decay_fn, allowed)
    shape = _WSD_DECAYS[fn]
    # timm: lr = lr_min + (max(base * stable(t), lr_min) - lr_min) * decay(frac), after the
    # warmup (which is not floored): the stable value is floored at lr_min, and the decay
    # pulls it towards lr_min
    body: Schedule
    if sched == "wsd" and shape != "exp" and not lr_min:
        return WSD(warm + t_sched, warm, decay_steps=decay, end=lr_min, decay_shape=shape,
                   start=start)
    if sched == "wsd":  # the floor matters where lr_min is above a group's base rate
        if shape == "exp":
            body = Join((Constant(), ExpDecay(decay, _TIMM_DECAY_RATIO, end=lr_min)),
                        (t_sched - decay,))
        else:
            body = WSD(t_sched, 0.0, decay_steps=decay, end=lr_min, decay_shape=shape)
        if lr_min:
            body = Clamp(body, low=lr_min)
    else:
        tau = warm if timescale is None else check_number(
            "stable_timescale", timescale, low=0, low_open=True) * scale
        if not tau > 0:
            raise bad("stable_timescale", timescale, "a timescale > 0 (timm: it defaults to "
                      "the warmup, so give it when warmup_epochs=0)")
        ends: dict[str, Schedule] = {"linear": Linear(decay, 1.0, 0.0),
                                     "cosine": Cosine(decay, peak=1.0, end=0.0),
                                     "1-sqrt": SqrtDecay(decay, peak=1.0, end=0.0),
                                     "exp": ExpDecay(decay, _TIMM_DECAY_RATIO, peak=1.0)}
        factor = Join((Constant(1.0), ends[shape]), (t_sched - decay,))
        stable: Schedule = InverseSqrt(tau)
        body = Product((stable, factor)) if not lr_min else Lerp(
            Constant(lr_min), Clamp(stable, low=lr_min), factor)
    if warm > 0:
        body = Join((Linear(warm, start, Rel(1.0)), body), (warm,))
    return body
