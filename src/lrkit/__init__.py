"""lrkit: learning-rate schedules as exact closed-form functions of the step.

``import lrkit`` gives the schedules, :mod:`lrkit.spec` (strings and dicts) and
:mod:`lrkit.units`; it does not import torch. The torch layer lives in :mod:`lrkit.torch`
(the ``LRScheduler``), :mod:`lrkit.inspect` (effective rates) and :mod:`lrkit.compat`.
"""

from lrkit import spec, units
from lrkit.errors import ConfigError, SpecError, StateError
from lrkit.schedules import *  # noqa: F403 - the curated schedule API
from lrkit.schedules import __all__ as _schedules_all
from lrkit.spec import parse
from lrkit.units import in_epochs

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "SpecError",
    "StateError",
    "__version__",
    "in_epochs",
    "parse",
    "spec",
    "units",
    *_schedules_all,
]
