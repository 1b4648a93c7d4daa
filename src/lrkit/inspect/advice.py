"""What a learning-rate schedule means for optimizers that are not plain SGD/Adam.

:func:`advice` returns the notes that apply to an optimizer (empty for the classic ones);
:class:`lrkit.inspect.Monitor` emits them once as a :class:`ScheduleAdviceWarning`.
"""

from __future__ import annotations

import warnings
from typing import Any

__all__ = ["ScheduleAdviceWarning", "advice", "advice_for", "warn_advice"]


class ScheduleAdviceWarning(UserWarning):
    """A schedule-related note about the optimizer in use (see :func:`advice`)."""


_NOTES: dict[str, str] = {
    "ScheduleFree": (
        "{cls} is schedule-free: it needs no decay schedule (keep the rate constant; its "
        "averaging does what a decay would, and a decaying schedule fights it), only its own "
        "warmup (warmup_steps=, reported as group['scheduled_lr']). Call optimizer.train() "
        "before training steps and optimizer.eval() before evaluating or saving: the "
        "parameters hold different sequences in the two modes. lrkit reports the rate "
        "entering the z sequence and scheduled_lr."
    ),
    "Prodigy": (
        "Prodigy steps with lr * d, d its running estimate of the distance to the solution: "
        "keep lr near 1.0 and read a schedule as a multiplier of d (a cosine to 0 multiplies "
        "d by the cosine; warmup is best with safeguard_warmup=True). lrkit reports lr * d "
        "(info['lr_d']), and needs lrkit.inspect.track() (a Monitor attaches it) for the d "
        "each step used."
    ),
    "DAdapt": (
        "{cls} (D-Adaptation) steps with lr * d, d its running estimate of the distance to "
        "the solution: keep lr near 1.0 and read a schedule as a multiplier of d. lrkit "
        "reports lr * d (info['lr_d']) and needs lrkit.inspect.track() (a Monitor attaches "
        "it) for the d each step used."
    ),
    "Rprop": (
        "Rprop uses lr only as its initial step size: after the first step its per-element "
        "step sizes adapt on their own, so a schedule on lr has no effect. lrkit reports "
        "the step sizes as the rate (parameter units per sign of the gradient)."
    ),
    "Muon": (
        "Muon orthogonalizes the update of 2-D weights: its rate is lr times a shape "
        "adjustment (adjust_lr_fn) and applies to a whole matrix, not per element; pair it "
        "with AdamW for embeddings, biases and norms, and schedule both with one schedule "
        "(lrkit.torch.CombinedOptimizer makes the two one optimizer for one scheduler; a "
        "relative schedule multiplies each base rate). lrkit reports the adjusted rate and "
        "the update's RMS relative to the weight's."
    ),
    "ASGD": (
        "ASGD decays its own step size eta = lr / (1 + lambd lr t)^alpha on top of any "
        "schedule on lr; lrkit reports the eta each step used."
    ),
    "Adafactor": (
        "torch's Adafactor scales each step by the parameter's RMS and min(lr, 1/sqrt(t)): "
        "lr is only an upper bound on the relative step, so a schedule on lr acts only "
        "while it is below 1/sqrt(t)."
    ),
}


def advice(optimizer: Any) -> list[str]:
    """Schedule-related notes for this optimizer's class (empty for plain SGD/Adam-like);
    for a :class:`lrkit.torch.CombinedOptimizer`, the notes of its parts."""
    from lrkit.torch.combined import CombinedOptimizer

    if isinstance(optimizer, CombinedOptimizer):
        return list(dict.fromkeys(n for part in optimizer.parts for n in advice(part)))
    return advice_for(type(optimizer).__name__)


def advice_for(class_name: str) -> list[str]:
    """:func:`advice` by class name (``"Prodigy"``, ``"AdamWScheduleFree"``), no instance."""
    name = class_name
    out = []
    for key, note in _NOTES.items():
        if key in name:
            out.append(note.format(cls=name))
    return out


def warn_advice(optimizer: Any, stacklevel: int = 3) -> None:
    """Emit :func:`advice` as :class:`ScheduleAdviceWarning` (once per message and place)."""
    for note in advice(optimizer):
        warnings.warn(note, ScheduleAdviceWarning, stacklevel=stacklevel)
