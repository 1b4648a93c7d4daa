"""The PyTorch adapter: a torch ``LRScheduler`` driven by lrkit schedules.

- :class:`LRScheduler`: per-group (relative or absolute) schedules for ``lr``, ``momentum`` /
  ``betas`` and ``weight_decay``; tensor mode and device-side stepping; plain-data state.
- :class:`Plateau`: metric-driven reductions on top of any time-based schedule.
- :class:`DeviceStepper`: the device-side step counter and writer on its own.
- :class:`CombinedOptimizer`: several optimizers over disjoint parameters (Muon + AdamW) as
  one, for one scheduler, one checkpoint and one monitor.
"""

from lrkit.schedules.plateau import Plateau
from lrkit.torch.combined import CombinedOptimizer
from lrkit.torch.device import DeviceStepper
from lrkit.torch.scheduler import LRScheduler

__all__ = ["CombinedOptimizer", "DeviceStepper", "LRScheduler", "Plateau"]
