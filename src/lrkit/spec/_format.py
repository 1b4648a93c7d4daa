"""Schedules to spec strings: the inverse of the parser (``parse_string(to_string(s)) == s``)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from lrkit.errors import SpecError
from lrkit.schedules.base import Rel, Schedule
from lrkit.spec import _registry as reg
from lrkit.spec._build import _elem_hint, _same, plain_number, short
from lrkit.spec._parse import _KEYWORDS, _LITERALS, _ident_char, _ident_start

__all__ = ["to_string"]

# precedence of a rendered schedule: a chain ('then'), a term ('*') or an atom
_CHAIN, _TERM, _ATOM = 0, 1, 2


def _number(x: float | int, hint: Any) -> str:
    if isinstance(x, float):
        if not math.isfinite(x):
            raise SpecError(f"{x!r} cannot be written in a spec: expected a finite number")
        return repr(plain_number(x, hint))
    return str(x)


def _string(s: str) -> str:
    bare = (
        s
        and _ident_start(s[0])
        and all(_ident_char(c) for c in s)
        and s not in _KEYWORDS
        and s not in _LITERALS
    )
    if bare:
        return s
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _value(v: Any, hint: Any) -> str:
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return _number(v, hint)
    if isinstance(v, str):
        return _string(v)
    if isinstance(v, Rel):
        return _number(v.factor, float) + "x"
    if isinstance(v, Schedule):
        return _render(v)[0]
    if isinstance(v, (tuple, list)):
        return "[" + ", ".join(_value(x, _elem_hint(hint, i)) for i, x in enumerate(v)) + "]"
    raise SpecError(f"{short(v)} cannot be written in a spec")


def _field(name: str, v: Any, hint: Any) -> str:
    """A field's value; a step count below one step says so (``0.5 steps``): the parser
    reads a bare ``warmup(0.1)`` as a likely ratio and refuses it."""
    text = _value(v, hint)
    if (
        name in reg.STEP_FIELDS
        and isinstance(v, (int, float))
        and not isinstance(v, bool)
        and 0 < v < 1
    ):
        return f"{text} steps"
    return text


def _is_sched_value(v: Any) -> bool:
    if isinstance(v, Schedule):
        return True
    return isinstance(v, (tuple, list)) and bool(v) and all(isinstance(x, Schedule) for x in v)


def _call(s: Schedule, ki: reg.KindInfo, skip: tuple[str, ...] = ()) -> str:
    """``kind(args)``: leading schedule fields and the first other field positionally."""
    emit: list[tuple[str, Any]] = []
    for f in ki.fields:
        if f.name in skip:
            continue
        v = getattr(s, f.name)
        default = ki.default(f.name)
        if f.name == "total_steps" or default is dataclasses.MISSING or not _same(v, default):
            emit.append((f.name, v))
    args: list[str] = []
    emitted = dict(emit)
    for slots, fits in ((ki.schedule_fields, True), (ki.positional, False)):
        for name in slots:  # positional while the slots run without a gap
            if name in skip:
                continue
            if name not in emitted or _is_sched_value(emitted[name]) is not fits:
                break
            args.append(_field(name, emitted.pop(name), ki.hints[name]))
            if not fits:
                break  # one positional value: the rest read better with their names
    for name, v in emit:
        if name in emitted:
            args.append(f"{name}={_field(name, v, ki.hints[name])}")
    return f"{ki.kind}({', '.join(args)})"


def _render(s: Schedule) -> tuple[str, int]:
    ki = reg.info_for(type(s))
    if not ki.kind or reg.lookup(ki.kind) is not type(s):
        raise SpecError(f"{type(s).__name__} is not a registered schedule kind")
    if ki.kind == "warmup":
        inner = getattr(s, "schedule", None)
        if isinstance(inner, Schedule):
            return f"{_call(s, ki, skip=('schedule',))} then {_render(inner)[0]}", _CHAIN
    if ki.kind == "scale":
        inner, factor = getattr(s, "schedule", None), getattr(s, "factor", None)
        if isinstance(inner, Schedule) and isinstance(factor, float):
            text, prec = _render(inner)
            text = text if prec >= _TERM else f"({text})"
            return f"{text} * {_number(factor, float)}", _TERM
    if ki.kind == "join" and _chainable(s):
        parts = []
        for piece in s.schedules:  # type: ignore[attr-defined]
            text, prec = _render(piece)
            parts.append(text if prec > _CHAIN else f"({text})")
        return " then ".join(parts), _CHAIN
    return _call(s, ki), _ATOM


def _chainable(s: Any) -> bool:
    """A join that ``A then B`` re-creates: local steps, boundaries at the pieces' horizons."""
    pieces, bounds = getattr(s, "schedules", ()), getattr(s, "boundaries", ())
    if getattr(s, "local", None) is not True or len(pieces) < 2:
        return False
    at = 0.0
    for piece, b in zip(pieces[:-1], bounds, strict=True):
        h = piece.horizon
        if h is None:
            return False
        at += h
        if at != b:
            return False
    return True


def to_string(schedule: Schedule) -> str:
    """The spec string of a schedule; :func:`parse_string` reads it back exactly.

    Every ``total_steps`` is written out, so the string needs no total. A prefix or overlap
    warmup reads ``warmup(N, ...) then <schedule>``, a join at its pieces' horizons
    ``A then B``, a scaled schedule ``A * f``; everything else is a call with the first
    argument(s) positional and the rest by name, leaving out defaults.

    Example:
        >>> from lrkit.schedules import Poly, Warmup
        >>> to_string(Warmup(Poly(total_steps=158500, power=0.9, end=1e-5), steps=1500))
        'warmup(1500) then poly(158500, power=0.9, end=1e-05)'
    """
    if not isinstance(schedule, Schedule):
        raise SpecError(f"expected a Schedule, got {short(schedule)}")
    return _render(schedule)[0]
