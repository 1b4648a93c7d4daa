"""Epochs and optimizer updates: converting epoch-based configuration to steps.

A *step* is one optimizer update. With gradient accumulation an update consumes
``accumulation`` batches, so an epoch of ``batches_per_epoch`` batches makes
``ceil(batches_per_epoch / accumulation)`` updates when the last, partial accumulation
group still updates (``partial="update"``, what HF ``Trainer`` and Lightning do at the end
of an epoch) or ``floor(...)`` when it is dropped (``partial="drop"``).
"""

from __future__ import annotations

import dataclasses
import math

from lrkit._validate import bad, check_choice, check_int, check_number
from lrkit.schedules._ops import Array, Ops
from lrkit.schedules.base import Schedule

__all__ = ["InEpochs", "Units", "in_epochs"]

PARTIAL = ("update", "drop")


@dataclasses.dataclass(frozen=True)
class Units:
    """How many optimizer updates an epoch makes, and conversions both ways.

    Args:
        batches_per_epoch: batches the data loader yields per epoch (>= 1).
        accumulation: batches per optimizer update (>= 1).
        partial: ``"update"`` (a last partial accumulation group still updates: ceil) or
            ``"drop"`` (it does not: floor).

    Raises:
        ConfigError: non-integer or non-positive counts, an unknown ``partial``, or an
            epoch that makes no update (``partial="drop"`` with fewer batches than
            ``accumulation``).

    Example:
        >>> u = Units(batches_per_epoch=100, accumulation=8)
        >>> u.updates_per_epoch
        13
        >>> u.steps(10), u.steps(0.5), u.epochs(26)
        (130, 7, 2.0)
    """

    batches_per_epoch: int
    accumulation: int = 1
    partial: str = "update"

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "batches_per_epoch", check_int("batches_per_epoch", self.batches_per_epoch, low=1)
        )
        object.__setattr__(
            self, "accumulation", check_int("accumulation", self.accumulation, low=1)
        )
        check_choice("partial", self.partial, PARTIAL)
        if self.updates_per_epoch < 1:
            raise bad(
                "accumulation",
                self.accumulation,
                f"<= batches_per_epoch={self.batches_per_epoch} with partial='drop'",
            )

    @property
    def updates_per_epoch(self) -> int:
        """Optimizer updates per epoch."""
        q, r = divmod(self.batches_per_epoch, self.accumulation)
        return q + (1 if r and self.partial == "update" else 0)

    def steps(self, epochs: float) -> int:
        """Updates in ``epochs`` epochs (fractional allowed), rounded to the nearest update.

        Ties round up (``0.5`` epoch of 7 updates is 4 updates). Rounding to nearest, not
        up, means ``0.1 * 30 = 3.0000000000000004`` is 3 updates, not 4.
        """
        e = check_number("epochs", epochs, low=0.0)
        n = e * self.updates_per_epoch + 0.5
        if not math.isfinite(n):
            raise bad("epochs", epochs, f"a number of epochs whose {self.updates_per_epoch}"
                      " updates each stay a finite number of steps")
        return math.floor(n)

    def epochs(self, steps: float) -> float:
        """Epochs (a float) spanned by ``steps`` updates."""
        return check_number("steps", steps, low=0.0) / self.updates_per_epoch


@dataclasses.dataclass(frozen=True)
class InEpochs(Schedule):
    r"""Run a schedule configured in epochs once per optimizer update.

    .. math::
        \eta_u = f(u / E) \quad\text{(smooth)}, \qquad
        \eta_u = f(\lfloor u / E \rfloor) \quad\text{(stepwise)}

    with :math:`u` the update, :math:`E` = ``updates_per_epoch`` and :math:`f` the schedule
    whose steps are epochs. Update 0 uses :math:`f(0)`, the value at the start of epoch 0;
    update :math:`kE` uses :math:`f(k)`. Smooth mode interpolates within an epoch (what
    timm's ``t_in_epochs=False`` / HF per-step scheduling does); stepwise mode changes the
    value only at epoch boundaries, exactly like a PyTorch scheduler stepped once per epoch.

    Args:
        schedule: the schedule in epochs.
        updates_per_epoch: :math:`E` (> 0; fractional allowed).
        stepwise: hold the value for the whole epoch.

    Raises:
        ConfigError: a non-Schedule, ``updates_per_epoch <= 0``, a non-bool ``stepwise``.

    Example:
        >>> from lrkit.schedules import Linear
        >>> s = InEpochs(Linear(10, start=1.0, end=0.0), updates_per_epoch=100)
        >>> s(0), s(50), s(1000)
        (1.0, 0.95, 0.0)
    """

    kind = "epochs"
    schedule: Schedule
    updates_per_epoch: float = 1.0
    stepwise: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.schedule, Schedule):
            raise bad("schedule", self.schedule, "a Schedule")
        object.__setattr__(
            self,
            "updates_per_epoch",
            check_number("updates_per_epoch", self.updates_per_epoch, low=0, low_open=True),
        )
        if not isinstance(self.stepwise, bool):
            raise bad("stepwise", self.stepwise, "True or False")

    def _eval(self, t: Array, ops: Ops) -> Array:
        e = t / self.updates_per_epoch
        return self.schedule._eval(ops.floor(e) if self.stepwise else e, ops)

    @property
    def horizon(self) -> float | None:
        h = self.schedule.horizon
        if h is None:
            return None
        e = float(math.ceil(h)) if self.stepwise else h
        u = e * self.updates_per_epoch
        while u / self.updates_per_epoch < e:  # the product may round a hair short
            u = math.nextafter(u, math.inf)
        return u

    def milestones(self) -> dict[str, float]:
        return {k: v * self.updates_per_epoch for k, v in self.schedule.milestones().items()}


def in_epochs(schedule: Schedule, units: Units | float, *, stepwise: bool = False) -> InEpochs:
    """Wrap a schedule whose steps are epochs so that it runs per optimizer update.

    ``units`` is a :class:`Units` or the number of updates per epoch.

    Example:
        >>> from lrkit.schedules import MultiStep
        >>> s = in_epochs(MultiStep((30,), peak=1.0), Units(50, accumulation=2))
        >>> s(749), s(750)
        (1.0, 0.1)
    """
    upe = units.updates_per_epoch if isinstance(units, Units) else units
    return InEpochs(schedule, upe, stepwise)
