"""``from_hf``: the lrkit schedule of a Hugging Face ``get_scheduler`` name and arguments."""

from __future__ import annotations

from typing import Any

from lrkit._validate import bad, check_choice, check_int, check_number
from lrkit.schedules import (
    WSD,
    Constant,
    Cosine,
    CosineRestarts,
    Hold,
    InverseSqrt,
    Join,
    Linear,
    Plateau,
    Poly,
    Rel,
    Repeat,
    Schedule,
    Shift,
    Value,
    Warmup,
)

__all__ = ["HF_NAMES", "from_hf"]

HF_NAMES = (
    "linear", "cosine", "cosine_with_restarts", "polynomial", "constant",
    "constant_with_warmup", "inverse_sqrt", "reduce_lr_on_plateau", "cosine_with_min_lr",
    "cosine_warmup_with_min_lr", "warmup_stable_decay",
)
_PLATEAU_ARGS = ("mode", "factor", "patience", "threshold", "threshold_mode", "cooldown",
                 "min_lr", "eps")


def _unexpected(name: str, kwargs: dict[str, Any], allowed: tuple[str, ...]) -> None:
    for key in kwargs:
        if key not in allowed:
            raise bad(key, kwargs[key], f"one of the {name!r} arguments "
                      f"({', '.join(allowed) or 'none'}) or an lrkit schedule")


def _half_cosine(num_cycles: Any) -> None:
    if num_cycles != 0.5:
        raise bad("num_cycles", num_cycles, "0.5 for warmup_stable_decay's cosine decay")


def _cosine_waves(length: float, num_cycles: Any, floor: Value) -> Schedule:
    """HF's ``0.5 (1 + cos(2 pi c p))`` over ``p = t / length`` in ``[0, 1]``, from the base
    rate down to ``floor`` and back: half-cosines of ``length / (2c)`` steps, alternately
    falling and rising, held from ``length`` on."""
    c = check_number("num_cycles", num_cycles, low=0, low_open=True)
    if c == 0.5:
        return Cosine(length, end=floor)
    half = length / (2 * c)
    wave = Join((Cosine(half, end=floor), Cosine(half, peak=floor, end=Rel(1.0))), (half,))
    return Hold(Repeat(wave, 2 * half), after=length)


def from_hf(
    name: str,
    *,
    num_warmup_steps: int | None = None,
    num_training_steps: int | None = None,
    lr: float | None = None,
    **kwargs: Any,
) -> Schedule:
    r"""The lrkit schedule equal to ``transformers.get_scheduler(name, ...)``.

    Arguments are ``get_scheduler``'s: ``num_warmup_steps``, ``num_training_steps`` and the
    ``scheduler_specific_kwargs`` as keywords. ``lr`` (the optimizer's default rate) turns
    the absolute ``lr_end`` (``polynomial``) and ``min_lr`` (``cosine_with_min_lr``) into
    relative values exactly as HF does (``value / optimizer.defaults["lr"]``); without it
    they stay absolute, which is the same for groups at the default rate. HF's totals
    include warmup; step :math:`k` is the rate HF's ``LambdaLR`` sets after :math:`k`
    calls of ``step()``, up to ``num_training_steps`` (where HF's cosine forms would go on
    past it, lrkit holds the final value). ``num_cycles`` other than 0.5 (``cosine``,
    ``cosine_with_min_lr``) are alternating falling and rising half-cosines.

    Raises:
        ConfigError: an unknown name, a missing or bad argument, an argument the name does
            not take, or a shape lrkit cannot express exactly (``num_cycles != 0.5`` for
            ``warmup_stable_decay``, ``warmup_type="1-sqrt"``).

    Example:
        >>> from_hf("cosine", num_warmup_steps=10, num_training_steps=110)
        Warmup(schedule=Cosine(total_steps=100.0, peak=Rel(1.0), end=0.0), steps=10.0, ...)
    """
    check_choice("name", str(getattr(name, "value", name)), HF_NAMES)
    name = str(getattr(name, "value", name))
    if name == "constant":
        _unexpected(name, kwargs, ())
        return Constant()
    if name == "reduce_lr_on_plateau":
        _unexpected(name, kwargs, _PLATEAU_ARGS)
        return Plateau(Constant(), **kwargs)
    if num_warmup_steps is None:
        raise bad("num_warmup_steps", None, f"an integer >= 0 (required by {name!r})")
    w = check_int("num_warmup_steps", num_warmup_steps, low=0)
    if name == "constant_with_warmup":
        _unexpected(name, kwargs, ())
        return Warmup(Constant(), w)
    if name == "inverse_sqrt":
        _unexpected(name, kwargs, ("timescale",))
        tau = kwargs.get("timescale")
        if tau is None:  # as transformers: only a missing timescale defaults (0 is an error)
            tau = w or 10_000
        return Warmup(InverseSqrt(check_number("timescale", tau, low=0, low_open=True)), w)
    if name == "warmup_stable_decay":
        return _wsd(w, num_training_steps, kwargs)
    if num_training_steps is None:
        raise bad("num_training_steps", None, f"an integer > num_warmup_steps ({name!r})")
    total = check_int("num_training_steps", num_training_steps, low=w + 1)
    rest = total - w
    if name == "linear":
        _unexpected(name, kwargs, ())
        return Warmup(Linear(rest, Rel(1.0), 0.0), w)
    if name == "cosine":
        _unexpected(name, kwargs, ("num_cycles",))
        return Warmup(_cosine_waves(rest, kwargs.get("num_cycles", 0.5), 0.0), w)
    if name == "cosine_with_restarts":
        _unexpected(name, kwargs, ("num_cycles",))
        n = check_int("num_cycles", kwargs.get("num_cycles", 1), low=1)
        return Warmup(CosineRestarts(rest / n, max_cycles=n), w)
    if name == "polynomial":
        _unexpected(name, kwargs, ("lr_end", "power"))
        lr_end = check_number("lr_end", kwargs.get("lr_end", 1e-7), low=0.0)
        power = check_number("power", kwargs.get("power", 1.0), low=0.0, low_open=True)
        if lr is not None and not check_number("lr", lr, low=0, low_open=True) > lr_end:
            # as transformers' get_polynomial_decay_schedule_with_warmup
            raise bad("lr_end", lr_end, f"a rate below the optimizer's lr={lr}")
        end = lr_end if lr is None else Rel(lr_end / lr)
        return Warmup(Poly(rest, power, end=end), w)
    if name == "cosine_with_min_lr":
        _unexpected(name, kwargs, ("num_cycles", "min_lr", "min_lr_rate"))
        return Warmup(_cosine_waves(rest, kwargs.get("num_cycles", 0.5), _floor(kwargs, lr)), w)
    return _cosine_warmup_min_lr(w, rest, kwargs, lr)


def _floor(kwargs: dict[str, Any], lr: float | None) -> Value:
    """``min_lr`` (absolute; relative to ``lr`` when given, as HF divides by the optimizer's
    default rate) or ``min_lr_rate`` (relative)."""
    min_lr, rate = kwargs.get("min_lr"), kwargs.get("min_lr_rate")
    if (min_lr is None) == (rate is None):
        raise bad("min_lr", min_lr, "exactly one of min_lr and min_lr_rate")
    if rate is not None:
        return Rel(check_number("min_lr_rate", rate, low=0.0, high=1.0))
    if lr is not None:
        return Rel(check_number("min_lr", min_lr, low=0.0) / lr)
    return check_number("min_lr", min_lr, low=0.0)


def _cosine_warmup_min_lr(
    w: int, rest: int, kwargs: dict[str, Any], lr: float | None
) -> Schedule:
    """HF's ``cosine_warmup_with_min_lr``: the warmup reaches the base rate at its last step
    ``w - 1`` (``(t + 1) / w``, or ``r + (1 - r) t / (w - 1)`` with ``warmup_lr_rate=r``),
    and the cosine starts one step early, at ``w - 1`` (progress ``(t - w + 1) / rest``);
    without warmup it starts one step in (progress ``(t + 1) / rest`` at step ``t``)."""
    name = "cosine_warmup_with_min_lr"
    _unexpected(name, kwargs, ("num_cycles", "min_lr", "min_lr_rate", "warmup_lr_rate"))
    cos = _cosine_waves(rest, kwargs.get("num_cycles", 0.5), _floor(kwargs, lr))
    if w == 0:
        return Shift(cos, by=1.0)
    r = kwargs.get("warmup_lr_rate")
    start = Rel(1.0 / w) if r is None else Rel(check_number("warmup_lr_rate", r, low=0.0))
    if w == 1 and r is not None:  # step 0 at r, the cosine from step 1 at progress 1 / rest
        return Join((Constant(start), cos), (1.0,), local=False)
    if w == 1:  # (0 + 1) / 1: the base rate, where the cosine starts
        return cos
    return Join((Linear(w - 1, start, Rel(1.0)), cos), (w - 1.0,))


def _wsd(w: int, total: int | None, kwargs: dict[str, Any]) -> Schedule:
    _unexpected("warmup_stable_decay", kwargs, ("num_decay_steps", "num_stable_steps",
                "warmup_type", "decay_type", "min_lr_ratio", "num_cycles"))
    if "num_decay_steps" not in kwargs:
        raise bad("num_decay_steps", None, "an integer >= 0 (required by 'warmup_stable_decay')")
    d = check_int("num_decay_steps", kwargs["num_decay_steps"], low=0)
    stable = kwargs.get("num_stable_steps")
    if stable is None:
        if total is None:
            raise bad("num_training_steps", None, "a total, or num_stable_steps")
        stable = check_int("num_training_steps", total, low=w + d) - w - d
    stable = check_int("num_stable_steps", stable, low=0)
    warm = check_choice("warmup_type", kwargs.get("warmup_type", "linear"), ("linear", "cosine"))
    decay = check_choice("decay_type", kwargs.get("decay_type", "cosine"),
                         ("linear", "cosine", "1-sqrt"))
    if decay == "cosine":
        _half_cosine(kwargs.get("num_cycles", 0.5))
    r = Rel(check_number("min_lr_ratio", kwargs.get("min_lr_ratio", 0.0), low=0.0, high=1.0))
    if d == 0:  # as HF: stable, then min_lr_ratio from num_warmup_steps + num_stable_steps on
        head = WSD(w + stable + 1, w, decay_steps=1, end=r, start=r, warmup_shape=warm)
        return Join((head, Constant(r)), (float(w + stable),))
    return WSD(w + stable + d, w, decay_steps=d, end=r, decay_shape=decay, start=r,
               warmup_shape=warm)
