"""Argument checks shared by every constructor.

Each check raises :class:`lrkit.errors.ConfigError` whose message names the parameter, the
value it got and what is allowed, e.g. ``power=-1.0 is invalid: expected a finite number > 0``.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Iterable, Sequence
from typing import Any

from lrkit.errors import ConfigError

__all__ = [
    "bad",
    "check_choice",
    "check_int",
    "check_number",
    "check_sorted",
]


#: the largest magnitude :func:`check_int` accepts (beyond it float arithmetic overflows
#: or loses all meaning for a count of steps)
MAX_INT = 2**63
#: the longest value repr an error message shows in full
MAX_SHOWN = 120


def bad(name: str, value: Any, allowed: str) -> ConfigError:
    """Build the one error message format used everywhere (long values shortened)."""
    text = repr(value)
    if len(text) > MAX_SHOWN:
        text = f"{text[:MAX_SHOWN - 20]}... ({len(text)} characters)"
    return ConfigError(f"{name}={text} is invalid: expected {allowed}")


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_number(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Return ``value`` as a finite float inside the given bounds, or raise."""
    parts = ["a finite number"]
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {high:g}")
    allowed = " ".join(parts[:1]) + ("" if len(parts) == 1 else " " + " and ".join(parts[1:]))
    if not _is_real(value):
        raise bad(name, value, allowed)
    try:
        x = float(value)
    except OverflowError:  # an int beyond the float range
        raise bad(name, value, allowed) from None
    if not math.isfinite(x):
        raise bad(name, value, allowed)
    if low is not None and (x < low or (low_open and x == low)):
        raise bad(name, value, allowed)
    if high is not None and (x > high or (high_open and x == high)):
        raise bad(name, value, allowed)
    return x


def check_int(name: str, value: Any, *, low: int | None = None) -> int:
    """Return ``value`` as an int (integral floats accepted) ``>= low``, or raise."""
    allowed = "an integer" + ("" if low is None else f" >= {low}")
    if isinstance(value, bool) or not _is_real(value):
        raise bad(name, value, allowed)
    if isinstance(value, numbers.Integral):
        out = int(value)
    else:
        try:
            x = float(value)
        except OverflowError:
            raise bad(name, value, allowed) from None
        if not math.isfinite(x) or x != int(x):
            raise bad(name, value, allowed)
        out = int(x)
    if abs(out) > MAX_INT:
        raise bad(name, value, allowed + " of at most 2**63 in size")
    if low is not None and out < low:
        raise bad(name, value, allowed)
    return out


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``choices``, or raise listing them."""
    options = tuple(choices)
    if not isinstance(value, str) or value not in options:
        raise bad(name, value, "one of " + ", ".join(repr(c) for c in options))
    return value


def check_sorted(name: str, values: Sequence[float], *, strict: bool) -> None:
    """Raise unless ``values`` is non-decreasing (increasing when ``strict``)."""
    for a, b in itertools.pairwise(values):
        if b < a or (strict and b == a):
            kind = "strictly increasing" if strict else "non-decreasing"
            raise bad(name, list(values), f"{kind} values")
