"""Device-side stepping: the step counter and the schedule evaluation live on the device.

A :class:`DeviceStepper` holds a 0-dim ``float64`` step tensor and, for each distinct
(bound) schedule, the group tensors it writes. :meth:`DeviceStepper.advance` adds one to the
counter and writes ``schedule.eval_tensor(step)`` into each tensor with ``copy_``: torch
operations only, no host sync, nothing that reads a value back, so a CUDA graph that
captures it advances the schedule on every replay.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from lrkit._validate import bad
from lrkit.schedules.base import Schedule

__all__ = ["DeviceStepper"]


class DeviceStepper:
    """Evaluate ``units`` (a bound schedule and the tensors it writes) at a device step.

    Args:
        units: pairs ``(schedule, tensors)``; every tensor is 0-dim and on one device.
        step: the starting step (written to the counter and to every tensor).

    Example:
        >>> import torch
        >>> from lrkit.schedules import Linear
        >>> lr = torch.zeros((), dtype=torch.float64)
        >>> stepper = DeviceStepper([(Linear(10, start=1.0, end=0.0), [lr])], step=0)
        >>> stepper.advance(); stepper.advance()
        >>> float(lr), stepper.read_step()
        (0.8, 2)
    """

    def __init__(
        self, units: Sequence[tuple[Schedule, Sequence[torch.Tensor]]], step: int
    ) -> None:
        devices = {t.device for _, ts in units for t in ts}
        if len(devices) > 1:
            raise bad("device", sorted(str(d) for d in devices),
                      "every scheduled tensor on one device for device=True")
        device = devices.pop() if devices else torch.device("cpu")
        self.units = [(s, list(ts)) for s, ts in units]
        self.step_tensor = torch.full((), float(step), dtype=torch.float64, device=device)
        self.write()

    def write(self) -> None:
        """Write every schedule's value at the current counter (graph-safe)."""
        step = self.step_tensor
        for sched, tensors in self.units:
            value = sched.eval_tensor(step, check=False)
            for t in tensors:
                t.copy_(value)

    def advance(self) -> None:
        """One step: counter + 1, then :meth:`write` (graph-safe)."""
        self.step_tensor.add_(1.0)
        self.write()

    def set_step(self, step: int) -> None:
        """Set the counter in place (the tensor a captured graph holds) and write."""
        self.step_tensor.fill_(float(step))
        self.write()

    def read_step(self) -> int:
        """The counter's value (a host sync; not inside a graph capture)."""
        return int(self.step_tensor.item())
