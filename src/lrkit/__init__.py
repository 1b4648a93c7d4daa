"""lrkit: learning-rate schedules as exact closed-form functions of the step."""

from lrkit.errors import ConfigError, SpecError, StateError
from lrkit.schedules import *  # noqa: F403 - the curated schedule API
from lrkit.schedules import __all__ as _schedules_all

__version__ = "0.1.0"

__all__ = ["ConfigError", "SpecError", "StateError", "__version__", *_schedules_all]
