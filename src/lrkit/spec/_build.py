"""The dict form: :func:`to_dict` and the builder behind :func:`from_dict` and strings.

The builder turns a *raw* tree (plain dicts, lists and scalars, as JSON or YAML give them,
plus the :class:`Chain` / :class:`Over` nodes that spec strings add) into schedules, checking
every key and value against the dataclass fields of the registered kinds.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import types
import typing
from collections.abc import Mapping
from typing import Any, Union

from lrkit.errors import SpecError
from lrkit.schedules.base import Rel, Schedule
from lrkit.spec import _registry as reg

__all__ = ["MAX_DEPTH", "Chain", "Fail", "Over", "build", "is_open", "short", "to_dict"]

#: Deepest nesting of schedules, lists and mappings accepted (an error, not RecursionError).
MAX_DEPTH = 64
#: Most values one spec may hold (guards against YAML alias bombs and huge inputs).
MAX_NODES = 20_000


@dataclasses.dataclass(eq=False)
class Chain:
    """``A then B then ...`` from a spec string: pieces joined end to end."""

    pieces: list[Any]


@dataclasses.dataclass(eq=False)
class Over:
    """``X over N`` from a spec string: ``X`` built with total horizon ``N``."""

    node: Any
    total: float


class Fail(Exception):
    """A build error at ``path``; ``node``/``field`` locate it in the raw tree."""

    def __init__(self, path: str, message: str, node: Any = None, field: str | None = None):
        super().__init__(message)
        self.path = path
        self.message = message
        self.node = node
        self.field = field


def short(value: Any, limit: int = 40) -> str:
    """``repr(value)``, shortened for messages."""
    try:
        text = repr(value)
    except Exception:  # pragma: no cover - a broken __repr__
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- to_dict ---------------------------------------------------------------------------------


def _accepts(hint: Any, tp: type) -> bool:
    if hint is Any:
        return True
    if isinstance(hint, type):
        return issubclass(tp, hint) if tp is not int else hint is int
    return any(_accepts(a, tp) for a in typing.get_args(hint) if a is not Ellipsis)


def _elem_hint(hint: Any, i: int) -> Any:
    """The hint of element ``i`` of a tuple-typed value (``Any`` if unknown)."""
    if isinstance(hint, type) or hint is Any:
        return Any
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return args[0]
        return args[i] if i < len(args) else Any
    if origin in (Union, types.UnionType):
        for a in args:
            if typing.get_origin(a) is tuple:
                return _elem_hint(a, i)
    return Any


def plain_number(x: float, hint: Any) -> float | int:
    """An integral float as an int where the field does not also take ints (shorter specs)."""
    if math.isfinite(x) and x.is_integer() and abs(x) < 2.0**53 and not _accepts(hint, int):
        return int(x)
    return x


def _plain(value: Any, hint: Any, path: str) -> Any:
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return plain_number(value, hint)
    if isinstance(value, Rel):
        return {"rel": plain_number(value.factor, float)}
    if isinstance(value, Schedule):
        return _to_dict(value, path)
    if isinstance(value, (tuple, list)):
        return [_plain(v, _elem_hint(hint, i), f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, numbers.Real):
        return plain_number(float(value), hint)
    raise SpecError(f"{path}: {short(value)} cannot be written in a spec")


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and bool(a == b)


def _to_dict(schedule: Schedule, path: str) -> dict[str, Any]:
    cls = type(schedule)
    kind = cls.__dict__.get("kind", "")
    if not kind or reg.lookup(kind) is not cls:
        raise SpecError(
            f"{path}: {cls.__name__} is not a registered schedule kind"
            + (f" ({kind!r} names {reg.lookup(kind)!r})" if kind else "")
        )
    ki = reg.info_for(cls)
    out: dict[str, Any] = {"kind": kind}
    for f in ki.fields:
        value = getattr(schedule, f.name)
        default = ki.default(f.name)
        if f.name != "total_steps" and default is not dataclasses.MISSING and _same(value, default):
            continue
        out[f.name] = _plain(value, ki.hints[f.name], f"{path}.{f.name}")
    return out


def to_dict(schedule: Schedule) -> dict[str, Any]:
    """The plain, JSON-serialisable dict of a schedule; ``from_dict`` inverts it exactly.

    Fields equal to their defaults are left out, except ``total_steps``, which is always
    written (a spec without it takes its total from the caller). Relative values are
    ``{"rel": f}``, nested schedules nested dicts, tuples lists.

    Example:
        >>> from lrkit.schedules import Poly
        >>> to_dict(Poly(total_steps=160000, power=0.9, end=1e-5))
        {'kind': 'poly', 'total_steps': 160000, 'power': 0.9, 'end': 1e-05}
    """
    if not isinstance(schedule, Schedule):
        raise SpecError(f"schedule: expected a Schedule, got {short(schedule)}")
    return _to_dict(schedule, "schedule")


# -- the builder -----------------------------------------------------------------------------


class Budget:
    """Counts values visited, so a hostile input cannot make the builder run long."""

    def __init__(
        self,
        *,
        lenient_numbers: bool = False,
        total: float | None = None,
        steps_per_epoch: float | None = None,
    ) -> None:
        self.nodes = 0
        #: read number-like strings as numbers where a number is expected (YAML 1.1 reads
        #: ``1e-5`` as a string)
        self.lenient_numbers = lenient_numbers
        #: what unit strings in step fields (``"10%"``, ``"2 epochs"``) are resolved with
        self.total = total
        self.steps_per_epoch = steps_per_epoch

    def tick(self, path: str, depth: int) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise Fail(path, f"spec too large: more than {MAX_NODES} values")
        if depth > MAX_DEPTH:
            raise Fail(path, f"spec nested too deeply: more than {MAX_DEPTH} levels")


def _is_real(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _kind_info(raw: Mapping[str, Any], path: str) -> reg.KindInfo:
    if "kind" not in raw:
        raise Fail(path, "missing 'kind': expected the schedule's kind, e.g. 'poly'", raw)
    name = raw["kind"]
    if not isinstance(name, str):
        raise Fail(f"{path}.kind", f"expected a kind name, got {short(name)}", raw, "kind")
    ki = reg.info(name)
    if ki is None:
        raise Fail(
            f"{path}.kind",
            f"unknown kind {short(name)}{reg.suggest(name, reg.names())}"
            f"; expected one of {', '.join(reg.kinds())}",
            raw,
            "kind",
        )
    return ki


def is_open(raw: Any, depth: int = 0) -> bool:
    """Whether ``raw`` lacks a ``total_steps`` that a total would fill."""
    if depth > MAX_DEPTH:
        return False
    if isinstance(raw, Chain):
        return any(is_open(p, depth + 1) for p in raw.pieces)
    if not isinstance(raw, Mapping) or not isinstance(raw.get("kind"), str):
        return False
    ki = reg.info(raw["kind"])
    if ki is None:
        return False
    if ki.field("total_steps") is not None and "total_steps" not in raw:
        return True
    if ki.total_rule is not None:
        return any(is_open(raw.get(f), depth + 1) for f in ki.schedule_fields)
    return False


def _needs_total(ki: reg.KindInfo, path: str, raw: Any) -> Fail:
    return Fail(
        f"{path}.total_steps",
        f"{ki.kind} is missing total_steps and no total was given"
        " (give total_steps=..., or a total: 'over N' in a string, or total_steps= to the parser)",
        raw,
    )


def build(raw: Any, path: str, total: float | None, budget: Budget, depth: int = 0) -> Schedule:
    """Build one schedule from its raw form; ``total`` fills a missing ``total_steps``."""
    budget.tick(path, depth)
    if isinstance(raw, Schedule):
        return raw
    if isinstance(raw, Over):
        return build(raw.node, path, raw.total, budget, depth + 1)
    if isinstance(raw, Chain):
        return _build_chain(raw, path, total, budget, depth + 1)
    if not isinstance(raw, Mapping):
        raise Fail(path, f"expected a schedule (a mapping with a 'kind'), got {short(raw)}", raw)
    ki = _kind_info(raw, path)
    for key in raw:
        if key == "kind":
            continue
        if not isinstance(key, str) or ki.field(key) is None:
            known = [f.name for f in ki.fields]
            hint = reg.suggest(key, known) if isinstance(key, str) else ""
            raise Fail(
                f"{path}.{key}",
                f"unknown field {short(key)} for {ki.kind}{hint}; expected one of "
                + ", ".join(known),
                raw,
                key if isinstance(key, str) else None,
            )
    kwargs: dict[str, Any] = {}
    child_totals: dict[str, float] = {}
    # values first, then schedules: a wrapper's total rule reads the converted values
    order = sorted(ki.fields, key=lambda f: f.name in ki.schedule_fields)
    for f in order:
        fpath = f"{path}.{f.name}"
        rule = ki.total_rule if f.name in ki.schedule_fields else None
        if rule is not None and total is not None and not child_totals:
            child_totals = rule({**raw, **kwargs}, total)
        if f.name in raw:
            kwargs[f.name] = convert(
                raw[f.name], ki.hints[f.name], fpath, child_totals.get(f.name),
                budget, depth + 1, raw, f.name,
            )  # fmt: skip
        elif f.name == "total_steps" and total is not None:
            if not total > 0:
                raise Fail(
                    fpath,
                    f"the total leaves {plain_number(float(total), float)} steps for {ki.kind}"
                    " after the steps before it (warmup, earlier pieces); expected a larger total",
                    raw,
                )
            kwargs[f.name] = total
        elif f.name == "total_steps" and ki.default(f.name) is not None:
            raise _needs_total(ki, path, raw)
        elif ki.default(f.name) is dataclasses.MISSING:
            hint = ""
            if f.name == "schedule" and f.name in ki.schedule_fields:
                hint = f" (in a string: '{ki.kind}(...) then <schedule>')"
            raise Fail(fpath, f"{ki.kind} is missing required field {f.name!r}{hint}", raw)
    return construct(ki, kwargs, path, raw)


def construct(ki: reg.KindInfo, kwargs: dict[str, Any], path: str, raw: Any) -> Schedule:
    """``cls(**kwargs)`` with constructor errors re-raised at the field they name."""
    try:
        return ki.cls(**kwargs)
    except (ValueError, TypeError, ArithmeticError) as exc:
        msg = str(exc)
        name = msg.split("=", 1)[0].split("[", 1)[0].strip() if "=" in msg else ""
        field = name if ki.field(name) is not None else None
        where = f"{path}.{field}" if field else path
        raise Fail(where, msg, raw, field) from None


def _fits(raw: Any, tp: type) -> bool:
    if tp is type(None):
        return raw is None
    if tp is bool:
        return isinstance(raw, bool)
    if tp is int:
        if isinstance(raw, numbers.Integral) and not isinstance(raw, bool):
            return True  # any size: the constructor's check_int bounds it (float() overflows)
        if not _is_real(raw):
            return False
        try:
            x = float(raw)
        except OverflowError:
            return False
        return math.isfinite(x) and x.is_integer()
    if tp is float:
        return _is_real(raw)
    if tp is str:
        return isinstance(raw, str)
    return isinstance(raw, tp)


def convert(
    raw: Any,
    hint: Any,
    path: str,
    total: float | None,
    budget: Budget,
    depth: int,
    node: Any,
    field: str | None,
) -> Any:
    """A field value from its raw form, checked against the field's type hint."""
    budget.tick(path, depth)
    if isinstance(raw, str) and field in reg.STEP_FIELDS and not _accepts(hint, str):
        from lrkit.spec._convert import unit_string

        raw = unit_string(raw, path, budget, node, field)
    if budget.lenient_numbers and isinstance(raw, str):
        raw = _number_string(raw, hint)
    origin = typing.get_origin(hint)
    options = typing.get_args(hint) if origin in (Union, types.UnionType) else (hint,)
    for opt in options:
        if opt is Any:
            return _structural(raw, path, budget, depth, node, field)
        if typing.get_origin(opt) is tuple and isinstance(raw, (list, tuple)):
            return tuple(
                convert(v, _elem_hint(opt, i), f"{path}[{i}]", None, budget, depth + 1, node, field)
                for i, v in enumerate(raw)
            )
        if not isinstance(opt, type):
            continue
        if issubclass(opt, Schedule) and isinstance(raw, (Mapping, Chain, Over, Schedule)):
            if isinstance(raw, Mapping) and "kind" not in raw and "rel" in raw:
                continue
            return build(raw, path, total, budget, depth + 1)
        if issubclass(opt, Rel):
            if isinstance(raw, Rel):
                return raw
            if isinstance(raw, Mapping) and "rel" in raw:
                return _rel(raw, path, node, field)
            continue
        if _fits(raw, opt):
            return raw
    raise Fail(path, f"expected {reg.describe(hint)}, got {short(raw)}", node, field)


def _number_string(raw: str, hint: Any) -> Any:
    """``"1e-5"`` as ``1e-05`` where the hint takes a number but no string."""
    if not (_accepts(hint, float) or _accepts(hint, int)) or _accepts(hint, str) or hint is Any:
        return raw
    from lrkit.spec._parse import tokenize

    try:
        toks = tokenize(raw.strip())
    except SpecError:
        return raw
    if len(toks) == 2 and toks[0].kind == "number":
        return toks[0].value
    return raw


def _rel(raw: Mapping[str, Any], path: str, node: Any, field: str | None) -> Rel:
    if set(raw) != {"rel"} or not _is_real(raw["rel"]):
        raise Fail(path, f'expected {{"rel": number}}, got {short(raw)}', node, field)
    try:
        return Rel(raw["rel"])
    except (ValueError, TypeError, ArithmeticError) as exc:
        raise Fail(path, str(exc), node, field) from None


def _structural(
    raw: Any, path: str, budget: Budget, depth: int, node: Any, field: str | None
) -> Any:
    """A value for a field without a usable type hint: convert by shape."""
    if isinstance(raw, (Mapping, Chain, Over)):
        if isinstance(raw, Mapping) and "kind" not in raw and "rel" in raw:
            return _rel(raw, path, node, field)
        return build(raw, path, None, budget, depth + 1)
    if isinstance(raw, (list, tuple)):
        return tuple(
            _structural(v, f"{path}[{i}]", budget, depth + 1, node, field)
            for i, v in enumerate(raw)
        )
    return raw


def _build_chain(
    chain: Chain, path: str, total: float | None, budget: Budget, depth: int
) -> Schedule:
    """``A then B then C``: a join at the horizons; a wrapper lacking its schedule
    (``warmup(N)``) wraps the rest of the chain."""
    pieces = list(chain.pieces)
    for k, piece in enumerate(pieces):
        ki = _wrapper_info(piece)
        if ki is None:
            continue
        if k == len(pieces) - 1:
            raise Fail(
                path,
                f"{ki.kind}(...) at the end of a 'then' chain has nothing to wrap;"
                f" expected '{ki.kind}(...) then <schedule>'",
                piece,
            )
        rest = pieces[k + 1 :]
        # chains come only from spec strings, built once: fill the wrapper in place, so
        # errors still point at its column
        piece["schedule"] = rest[0] if len(rest) == 1 else Chain(rest)
        pieces = [*pieces[:k], piece]
        break
    if len(pieces) == 1:
        return build(pieces[0], path, total, budget, depth)
    open_at = [i for i, p in enumerate(pieces) if is_open(p)] if total is not None else []
    if len(open_at) > 1:
        first = pieces[open_at[0]]
        raise Fail(
            path,
            "only the last piece of a 'then' chain without total_steps takes the remaining"
            " steps; give this one total_steps=",
            first,
        )
    built: list[Schedule | None] = [None] * len(pieces)
    for i, p in enumerate(pieces):
        if not open_at or i != open_at[0]:
            built[i] = build(p, f"{path}.schedules[{i}]", None, budget, depth + 1)
    if open_at and total is not None:
        j = open_at[0]
        used = 0.0
        for i, s in enumerate(built):
            if s is None:
                continue
            h = s.horizon
            if h is None:
                raise Fail(
                    f"{path}.schedules[{i}]",
                    "this piece never settles (no finite horizon), so the steps left for the"
                    " open piece of the 'then' chain are unknown; give that piece total_steps=",
                    pieces[i],
                )
            used += h
        remaining = total - used
        if not remaining > 0:
            raise Fail(
                f"{path}.schedules[{j}]",
                f"the total of {plain_number(float(total), float)} steps leaves"
                f" {plain_number(remaining, float)} for this piece after"
                f" {plain_number(used, float)} steps of the others; expected a larger total",
                pieces[j],
            )
        built[j] = build(pieces[j], f"{path}.schedules[{j}]", remaining, budget, depth + 1)
    scheds = [s for s in built if s is not None]
    bounds: list[float] = []
    at = 0.0
    for i, s in enumerate(scheds[:-1]):
        h = s.horizon
        if h is None:
            raise Fail(
                f"{path}.schedules[{i}]",
                "'then' needs a finite horizon on its left, but this piece never settles;"
                " expected a schedule with total_steps (or join(...) with boundaries)",
                pieces[i],
            )
        at += h
        bounds.append(at)
    ki = reg.info("join")
    if ki is None:  # pragma: no cover - join is a core kind
        raise Fail(path, "'then' needs the 'join' kind, which is not registered")
    return construct(ki, {"schedules": tuple(scheds), "boundaries": tuple(bounds)}, path, chain)


def _wrapper_info(piece: Any) -> reg.KindInfo | None:
    """The kind of a chain piece that lacks its ``schedule`` argument (``warmup(N)``)."""
    if not isinstance(piece, Mapping) or not isinstance(piece.get("kind"), str):
        return None
    ki = reg.info(piece["kind"])
    if ki is None or "schedule" not in ki.schedule_fields or "schedule" in piece:
        return None
    return ki
