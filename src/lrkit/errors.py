"""Exception types raised by lrkit.

Every user error is a :class:`ValueError` subclass, so ``except ValueError`` catches all of
them; the subclasses let tools (the CLI, config loaders) tell the kinds apart.
"""

from __future__ import annotations

__all__ = ["ConfigError", "SpecError", "StateError"]


class ConfigError(ValueError):
    """A schedule or scheduler was given an invalid argument.

    The message names the parameter, the value given and what is allowed.
    """


class SpecError(ConfigError):
    """A spec string or dict could not be parsed; the message names the bad token."""


class StateError(ConfigError):
    """A saved scheduler state does not fit the scheduler it is loaded into."""
