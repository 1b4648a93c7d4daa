"""``from_torch``: the lrkit schedule equal to a PyTorch scheduler object."""

from __future__ import annotations

import itertools
from typing import Any

from lrkit._validate import bad, check_int
from lrkit.schedules import (
    Constant,
    Cosine,
    CosineRestarts,
    Cyclic,
    Exponential,
    Hold,
    Join,
    Linear,
    MultiStep,
    OneCycle,
    Plateau,
    Poly,
    Rel,
    Schedule,
    Shift,
    StepDecay,
    Warmup,
)

__all__ = ["from_torch", "one_cycle_phases"]

def _absolute_types() -> tuple[type, ...]:
    from torch.optim import lr_scheduler as L

    return (L.OneCycleLR, L.CyclicLR)


SUPPORTED = (
    "StepLR, MultiStepLR, ExponentialLR, CosineAnnealingLR, PolynomialLR, LinearLR, "
    "ConstantLR, OneCycleLR, CyclicLR, CosineAnnealingWarmRestarts, SequentialLR of those, "
    "ReduceLROnPlateau"
)


def from_torch(scheduler: Any, *, group: int = 0) -> Schedule:
    r"""The lrkit schedule that gives the rates a ``torch.optim.lr_scheduler`` object gives.

    Values torch computes relative to the group's initial rate become :class:`~lrkit.Rel`
    (one schedule for all groups); the absolute rates of ``OneCycleLR`` (``max_lr``) and
    ``CyclicLR`` (``base_lr``, ``max_lr``) are read for param group ``group``.
    Step :math:`k` of the result is the rate torch's scheduler sets after :math:`k` calls of
    ``step()``. A ``OneCycleLR`` whose rise ends before step 0 (``pct_start * total_steps
    < 1``) runs its last phase from the (negative) step where the phase before it ends, as
    torch does: a :class:`~lrkit.Shift` of that phase; one whose phase after the rise is
    empty (``pct_start=1``, or a large ``pct_start`` with ``three_phase``) never reaches
    the phases after it (the value at step ``total_steps - 1`` holds). Two differences,
    both where torch's own closed form stops making sense:
    ``CosineAnnealingLR`` holds ``eta_min`` after ``T_max`` (torch climbs back up), and
    ``OneCycleLR`` holds its final rate after ``total_steps - 1`` (torch raises).
    ``ReduceLROnPlateau`` becomes :class:`~lrkit.Plateau` (its ``min_lr`` for ``group``):
    drive it with ``LRScheduler.step(metric)``. ``SequentialLR`` is reproduced for every
    construction order of its children: with a ``OneCycleLR`` or ``CyclicLR`` child (which
    overwrite ``group["initial_lr"]``, the base torch runs the other children from) every
    child of the result is absolute, for group ``group``.

    Args:
        scheduler: the torch scheduler (its configuration is read, its state is not).
        group: the param group whose absolute rates ``OneCycleLR`` / ``CyclicLR`` use.

    Raises:
        ConfigError: a scheduler without a closed form (``LambdaLR``, ``MultiplicativeLR``,
            ``ChainedScheduler``), ``CyclicLR`` with a custom ``scale_fn``, or a bad
            ``group``.

    Example:
        >>> import torch
        >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        >>> from_torch(torch.optim.lr_scheduler.StepLR(opt, step_size=30, gamma=0.1))
        StepDecay(step_size=30.0, gamma=0.1, peak=Rel(1.0))
    """
    from torch.optim import lr_scheduler as L

    name = type(scheduler).__name__
    optimizer = getattr(scheduler, "optimizer", None)
    n_groups = len(getattr(optimizer, "param_groups", None) or [None])
    g = check_int("group", group, low=0)
    if g >= n_groups:
        raise bad("group", group, f"a param group index < {n_groups}")
    s: Schedule
    if isinstance(scheduler, L.ReduceLROnPlateau):
        return Plateau(Constant(), factor=scheduler.factor, patience=scheduler.patience,
                       mode=scheduler.mode, threshold=scheduler.threshold,
                       threshold_mode=scheduler.threshold_mode, cooldown=scheduler.cooldown,
                       min_lr=float(scheduler.min_lrs[g]), eps=scheduler.eps)
    if isinstance(scheduler, L.SequentialLR):
        return _sequential(scheduler, g)
    if isinstance(scheduler, L.StepLR):
        s = StepDecay(scheduler.step_size, scheduler.gamma)
    elif isinstance(scheduler, L.MultiStepLR):
        s = MultiStep(tuple(sorted(scheduler.milestones.elements())), scheduler.gamma)
    elif isinstance(scheduler, L.ExponentialLR):
        s = Exponential(scheduler.gamma)
    elif isinstance(scheduler, L.CosineAnnealingLR):
        s = Cosine(scheduler.T_max, end=float(scheduler.eta_min))
    elif isinstance(scheduler, L.PolynomialLR) and scheduler.total_iters == 0:
        # torch's closed form is already past total_iters: the base rate throughout
        s = Constant()
    elif isinstance(scheduler, L.PolynomialLR):
        s = Poly(scheduler.total_iters, scheduler.power)
    elif isinstance(scheduler, L.LinearLR) and scheduler.total_iters == 0:
        # torch's first step applies start_factor and no later step changes the rate
        s = Constant(Rel(scheduler.start_factor))
    elif isinstance(scheduler, L.LinearLR):
        s = Linear(
            scheduler.total_iters, Rel(scheduler.start_factor), Rel(scheduler.end_factor)
        )
    elif isinstance(scheduler, L.ConstantLR) and scheduler.total_iters == 0:
        # torch's first step applies the factor; the step that undoes it would be step 0
        s = Constant(Rel(scheduler.factor))
    elif isinstance(scheduler, L.ConstantLR):
        s = Warmup(Constant(), scheduler.total_iters, start=Rel(scheduler.factor),
                   shape="constant")
    elif isinstance(scheduler, L.CosineAnnealingWarmRestarts):
        s = CosineRestarts(scheduler.T_0, scheduler.T_mult, end=float(scheduler.eta_min))
    elif isinstance(scheduler, L.OneCycleLR):
        s = _one_cycle(scheduler, g)
    elif isinstance(scheduler, L.CyclicLR):
        s = _cyclic(scheduler, g)
    else:
        raise bad(
            "scheduler", name,
            f"one of {SUPPORTED} (LambdaLR and MultiplicativeLR hide their rule in a "
            "function: write it as an lrkit schedule)",
        )
    return s


def _sequential(scheduler: Any, g: int) -> Schedule:
    """torch's ``SequentialLR``: child 0 runs from ``initial_lr`` (the rate SequentialLR resets
    the group to); child ``i > 0`` starts through its closed form, relative to the base it
    recorded at its own construction (``base_lrs``).

    ``OneCycleLR`` overwrites ``group["initial_lr"]`` (``max_lr / div_factor``), and a
    ``CyclicLR`` built first sets it to its ``base_lr``: a child built before them recorded
    the optimizer's rate, one built after records the overwritten value, and child 0 (its
    chainable form) follows whatever ``initial_lr`` holds when SequentialLR is built. Then
    the bases differ from the optimizer's rate, so every child is made absolute for group
    ``g`` with the base torch uses for it.
    """
    from torch.optim import lr_scheduler as L

    children = scheduler._schedulers
    parts = [from_torch(c, group=g) for c in children]
    for i, child in enumerate(children[1:], start=1):
        if isinstance(child, L.ConstantLR) and child.total_iters == 0:
            # entered through step(0), torch's closed form, which is already past
            # total_iters = 0: the base rate, not the factor of the first step
            parts[i] = Constant()
    if any(isinstance(c, _absolute_types()) for c in _leaves(scheduler)):
        group = scheduler.optimizer.param_groups[g]
        for i, child in enumerate(children):
            if isinstance(child, _absolute_types()):
                continue  # its rates are already absolute
            if isinstance(child, L.SequentialLR):
                raise bad("scheduler", "SequentialLR(SequentialLR(...))", "one level of "
                          "SequentialLR when a child is a OneCycleLR or CyclicLR")
            chainable = i == 0 and not isinstance(child, L.CosineAnnealingWarmRestarts)
            base = group["initial_lr"] if chainable else child.base_lrs[g]
            parts[i] = parts[i].bind(float(base))
    return Join(tuple(parts), tuple(float(m) for m in scheduler._milestones))


def _leaves(scheduler: Any) -> list[Any]:
    kids = getattr(scheduler, "_schedulers", None)
    return [scheduler] if kids is None else [x for k in kids for x in _leaves(k)]


def one_cycle_phases(ends: list[float], values: list[float], anneal: str) -> Schedule:
    """torch's (and mmengine's) one-cycle where :class:`~lrkit.OneCycle` does not apply:
    the rise ends before step 0, or a phase after it is empty. As torch's ``get_lr``, step
    ``t`` is in the first phase whose end ``ends[i]`` is ``>= t`` (the last phase if none)
    and anneals ``values[i] -> values[i + 1]`` at fraction ``(t - s) / (ends[i] - s)``,
    ``s`` the end of the phase before (0 for the first); the value holds from the last end
    on (torch raises past it).

    - ``ends[0] < 0``: every step is in the last phase, which starts before step 0 (the
      end of the phase before it): a :class:`~lrkit.Shift` of that phase.
    - otherwise the phases up to the first one that reaches the last end (the later ones
      are never used), joined.
    """
    last = ends[-1]

    def phase(start: float, end: float, a: float, b: float) -> Schedule:
        return Cosine(end - start, peak=a, end=b) if anneal == "cos" else Linear(end - start,
                                                                                   a, b)

    if ends[0] < 0:
        return Shift(phase(ends[-2], last, values[-2], values[-1]), by=-ends[-2])
    if ends[0] == 0:  # torch: 0 / 0 at step 0
        raise bad("pct_start", "pct_start * total_steps = 1", "a product other than 1 (the "
                  "rise would end at step 0, where torch divides by zero)")
    k = next(i for i, e in enumerate(ends) if e >= last)
    starts = [0.0, *ends[:k]]
    pieces = [phase(s, e, a, b) for s, e, a, b in zip(starts, ends[:k + 1], values, values[1:],
                                                      strict=False)]
    return Hold(Join(tuple(pieces), tuple(ends[:k])) if k else pieces[0], after=last)


def _one_cycle(sched: Any, g: int) -> Schedule:
    group = sched.optimizer.param_groups[g]
    phases = sched._schedule_phases
    total = sched.total_steps
    anneal = getattr(sched, "_anneal_func_type", "cos")
    ends = [float(p["end_step"]) for p in phases]
    if not (ends[0] > 0 and all(a < b for a, b in itertools.pairwise(ends))):
        # no rise, or an empty phase after it: torch's phases as it runs them
        values = [float(group[phases[0]["start_lr"]])]
        values += [float(group[p["end_lr"]]) for p in phases]
        return one_cycle_phases(ends, values, anneal)
    peak = float(group["max_lr"])
    div = peak / float(group["initial_lr"])
    final_div = float(group["initial_lr"]) / float(group["min_lr"])
    pct = (phases[0]["end_step"] + 1) / total
    return OneCycle(total, peak, pct, div, final_div, anneal, len(phases) == 3)


def _cyclic(sched: Any, g: int) -> Schedule:
    if getattr(sched, "_scale_fn_custom", None) is not None:
        raise bad("scheduler", "CyclicLR(scale_fn=...)",
                  "a built-in mode (a custom scale_fn has no closed form here)")
    up = sched.total_size * sched.step_ratio
    down = sched.total_size - up
    return Cyclic(float(sched.base_lrs[g]), float(sched.max_lrs[g]), up, down, sched.mode,
                  float(sched.gamma))
