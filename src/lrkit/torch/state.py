"""The saved state of :class:`lrkit.torch.LRScheduler`: plain data, checked on load.

Layout (every value a ``str``, ``int``, ``float``, ``bool``, ``None``, ``list`` or ``dict``,
so ``torch.load(weights_only=True)`` reads it)::

    {"format": "lrkit.torch.LRScheduler", "version": 2,
     "step": k,                                   # completed scheduler steps
     "calls": c,                                  # step() calls (the metric cadence)
     "groups": n,                                 # parameter groups scheduled
     "fields": {"lr": {"schedules": [spec | None, ...], "bases": [float | None, ...]}, ...},
     "plateau": None | {"best": ..., "num_bad": ..., "cooldown_counter": ...,
                        "decisions": ..., "reductions": [int, ...],
                        "last_reductions": [int, ...]}}

``reductions`` are each group's plateau reductions now, ``last_reductions`` those of the
last update (what ``get_last_lr()`` reports). ``calls`` counts ``step()`` calls, which
differ from ``step`` with ``skipped="skip"``: ``Plateau.every`` counts calls.

Versions: 1 had neither ``calls`` nor ``last_reductions`` (read as ``calls = step`` and
``last_reductions = reductions``, what version-1 code assumed). Every version still loads.

A schedule is saved as its spec dict (:func:`lrkit.spec.to_dict`), or, for a schedule the
spec registry cannot write, as its ``repr`` (:func:`fingerprint`). The configuration part
(``groups`` and ``fields``) identifies the setup; :func:`config_diff` names the first
difference between a saved and a current one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lrkit._validate import check_int
from lrkit.errors import ConfigError, StateError
from lrkit.schedules.base import Schedule

__all__ = ["FORMAT", "VERSION", "VERSIONS", "check_header", "config_diff", "fingerprint",
           "read_counts", "read_step"]

FORMAT = "lrkit.torch.LRScheduler"
VERSION = 2
#: the versions this code reads
VERSIONS = (1, 2)


def fingerprint(schedule: Schedule | None) -> Any:
    """A plain-data identity of ``schedule``: its spec dict, else its ``repr``."""
    if schedule is None:
        return None
    try:
        from lrkit.spec import to_dict

        return to_dict(schedule)
    except (ImportError, ConfigError):
        return repr(schedule)


def check_header(state: Any) -> tuple[Mapping[str, Any], int]:
    """``state`` and its version; :class:`StateError` unless it is a state dict this code
    reads."""
    if not isinstance(state, Mapping):
        raise StateError(f"state_dict={type(state).__name__} is invalid: expected a dict")
    fmt, version = state.get("format"), state.get("version")
    if not isinstance(fmt, str) or fmt != FORMAT:
        raise StateError(
            f"state_dict['format']={state.get('format')!r} is invalid: expected {FORMAT!r} "
            "(a state saved by lrkit.torch.LRScheduler)"
        )
    if isinstance(version, bool) or not isinstance(version, (int, float)) \
            or version not in VERSIONS:
        raise StateError(
            f"state_dict['version']={state.get('version')!r} is invalid: expected one of "
            f"{', '.join(map(str, VERSIONS))} (a later lrkit wrote it?)"
        )
    return state, int(version)


def read_step(state: Mapping[str, Any], key: str = "step") -> int:
    """``state[key]``, an int >= 0 (:class:`StateError` otherwise)."""
    try:
        return check_int(f"state_dict[{key!r}]", state.get(key), low=0)
    except ConfigError as exc:
        raise StateError(str(exc)) from None


def read_counts(plateau: Any, key: str, reducible: Sequence[bool], *, strict: bool
                ) -> tuple[int, ...]:
    """``plateau[key]``: one reduction count per group (0 where ``reducible`` is false);
    ``strict``: exactly one entry per group (else extra entries are dropped, missing ones
    are 0). :class:`StateError` on a malformed entry."""
    n = len(reducible)
    red = plateau.get(key) if isinstance(plateau, Mapping) else None
    if not isinstance(red, list) or (len(red) != n and strict):
        raise StateError(f"plateau[{key!r}]={red!r} is invalid: expected a list of {n} counts")
    ks = [0] * n
    for i, k in enumerate(red[:n]):
        try:
            k = check_int(f"plateau[{key!r}][{i}]", k, low=0)
        except ConfigError as exc:
            raise StateError(str(exc)) from None
        ks[i] = k if reducible[i] else 0
    return tuple(ks)


def config_diff(saved: Any, current: Any, path: str = "state_dict") -> str | None:
    """The first difference between two plain-data trees, as ``"path: saved X, now Y"``."""
    if isinstance(saved, Mapping) and isinstance(current, Mapping):
        keys = [*current, *(k for k in saved if k not in current)]
        for key in keys:
            if key not in saved or key not in current:
                return (f"{path}[{key!r}]: saved {saved.get(key, '<missing>')!r}, "
                        f"now {current.get(key, '<missing>')!r}")
            diff = config_diff(saved[key], current[key], f"{path}[{key!r}]")
            if diff:
                return diff
        return None
    if isinstance(saved, (list, tuple)) and isinstance(current, (list, tuple)):
        if len(saved) != len(current):
            return f"{path}: saved {len(saved)} entries, now {len(current)}"
        for i, (a, b) in enumerate(zip(saved, current, strict=True)):
            diff = config_diff(a, b, f"{path}[{i}]")
            if diff:
                return diff
        return None
    if type(saved) is not type(current) and not (
        isinstance(saved, (int, float)) and isinstance(current, (int, float))
        and not isinstance(saved, bool) and not isinstance(current, bool)
    ):
        return f"{path}: saved {saved!r}, now {current!r}"
    return None if saved == current else f"{path}: saved {saved!r}, now {current!r}"
