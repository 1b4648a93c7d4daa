"""The PyTorch adapter: a torch ``LRScheduler`` driven by lrkit schedules.

- :class:`LRScheduler`: per-group (relative or absolute) schedules for ``lr``, ``momentum`` /
  ``betas`` and ``weight_decay``; tensor mode and device-side stepping; plain-data state.
- :class:`Plateau`: metric-driven reductions on top of any time-based schedule.
- :class:`DeviceStepper`: the device-side step counter and writer on its own.
"""

from lrkit.schedules.plateau import Plateau
from lrkit.torch.device import DeviceStepper
from lrkit.torch.scheduler import LRScheduler

__all__ = ["DeviceStepper", "LRScheduler", "Plateau"]
