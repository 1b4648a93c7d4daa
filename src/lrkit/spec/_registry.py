"""The registry of schedule kinds and what the spec needs to know about their fields.

Kinds are discovered from the subclasses of :class:`~lrkit.schedules.base.Schedule` that set a
non-empty ``kind`` in their own class body (every module of :mod:`lrkit.schedules` and
:mod:`lrkit.compat` is imported first), or registered explicitly with :func:`register`.
Nothing here is specific to one schedule class except the few total-steps rules of the core
wrappers (:data:`TOTAL_RULES`).
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import numbers
import pkgutil
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Union

from lrkit.errors import ConfigError
from lrkit.schedules.base import Rel, Schedule

__all__ = [
    "ALIASES",
    "STEP_FIELDS",
    "TOTAL_RULES",
    "KindInfo",
    "info",
    "info_for",
    "kinds",
    "lookup",
    "register",
    "signature",
    "suggest",
]

#: A rule giving the totals a wrapper passes to its schedule fields: ``rule(raw, total)``
#: returns ``{field: total_for_that_field}``. ``raw`` is the wrapper's raw spec mapping.
TotalRule = Callable[[Mapping[str, Any], float], dict[str, float]]


def _warmup_rule(raw: Mapping[str, Any], total: float) -> dict[str, float]:
    steps = raw.get("steps", 0.0)
    if isinstance(steps, bool) or not isinstance(steps, numbers.Real):
        return {"schedule": total}  # the constructor reports the bad value
    try:
        w = float(steps)
    except OverflowError:  # an int beyond the float range: the constructor reports it
        return {"schedule": total}
    return {"schedule": total - w if raw.get("mode", "prefix") == "prefix" else total}


def _shift_rule(raw: Mapping[str, Any], total: float) -> dict[str, float]:
    by = raw.get("by", 0.0)
    if isinstance(by, bool) or not isinstance(by, numbers.Real):
        return {"schedule": total}  # the constructor reports the bad value
    return {"schedule": total + float(by)}


def _pass_rule(raw: Mapping[str, Any], total: float) -> dict[str, float]:
    return {"schedule": total}


#: Wrappers that hand the total horizon down to their ``schedule`` (totals include warmup:
#: a prefix warmup of ``w`` steps leaves ``total - w`` to the schedule after it).
TOTAL_RULES: dict[str, TotalRule] = {
    "warmup": _warmup_rule,
    "scale": _pass_rule,
    "staircase": _pass_rule,
    "clamp": _pass_rule,
    "shift": _shift_rule,  # shift(f, d) over N: f runs N + d steps, d of them skipped
}

#: Fields that count optimizer updates (steps): in a spec string they take units,
#: ``10%`` (of the total), ``2 epochs`` (with steps per epoch) and ``0.5 steps``.
STEP_FIELDS = frozenset({
    "total_steps", "steps", "warmup_steps", "decay_steps", "step_size", "step_size_up",
    "step_size_down", "period", "after", "boundaries", "timescale",
})  # fmt: skip

#: Short names, each mapped to the canonical kinds it may stand for (the first registered one
#: wins), so aliases of classes that do not exist yet cost nothing.
ALIASES: dict[str, tuple[str, ...]] = {
    "const": ("constant",),
    "cos": ("cosine",),
    "exp": ("exponential", "exp"),
    "step": ("step", "step_decay", "stepdecay"),
    "multistep": ("multistep", "multi_step"),
    "rsqrt": ("inverse_sqrt", "rsqrt", "invsqrt"),
    "restarts": ("cosine_restarts", "restarts", "sgdr"),
    "sgdr": ("cosine_restarts", "restarts", "sgdr"),
    "onecycle": ("onecycle", "one_cycle"),
    "one_cycle": ("onecycle", "one_cycle"),
}


@dataclasses.dataclass(frozen=True)
class KindInfo:
    """What the spec knows about one schedule class."""

    kind: str
    cls: type[Schedule]
    fields: tuple[dataclasses.Field[Any], ...]
    hints: dict[str, Any]
    #: positional order of the non-schedule fields (schedule arguments fill schedule fields)
    positional: tuple[str, ...]
    schedule_fields: tuple[str, ...]
    total_rule: TotalRule | None

    def field(self, name: str) -> dataclasses.Field[Any] | None:
        for f in self.fields:
            if f.name == name:
                return f
        return None

    def default(self, name: str) -> Any:
        """The field's default, or :data:`dataclasses.MISSING`."""
        f = self.field(name)
        if f is None:
            return dataclasses.MISSING
        if f.default is not dataclasses.MISSING:
            return f.default
        if f.default_factory is not dataclasses.MISSING:
            return f.default_factory()
        return dataclasses.MISSING


_explicit: dict[str, type[Schedule]] = {}
_explicit_opts: dict[type[Schedule], tuple[tuple[str, ...] | None, TotalRule | None]] = {}
_explicit_aliases: dict[str, str] = {}
_discovered: dict[str, type[Schedule]] = {}
_info_cache: dict[type[Schedule], KindInfo] = {}
_imported = False


def register(
    cls: type[Schedule],
    *aliases: str,
    positional: tuple[str, ...] | None = None,
    total_rule: TotalRule | None = None,
) -> type[Schedule]:
    """Register a schedule class under its ``kind`` (and ``aliases``); returns ``cls``.

    Subclasses of ``Schedule`` with a ``kind`` are found without this; use it for classes
    defined outside :mod:`lrkit.schedules`, to add aliases, to fix the positional order of
    the non-schedule fields in spec strings, or to say how a wrapper passes the total on.
    Usable as a decorator.
    """
    if not (isinstance(cls, type) and issubclass(cls, Schedule)) or not dataclasses.is_dataclass(
        cls
    ):
        raise ConfigError(f"cls={cls!r} is invalid: expected a Schedule dataclass")
    kind = cls.__dict__.get("kind", "")
    if not isinstance(kind, str) or not kind:
        raise ConfigError(f"cls={cls.__name__} is invalid: expected a non-empty 'kind'")
    _explicit[kind] = cls
    _explicit_opts[cls] = (positional, total_rule)
    for a in aliases:
        _explicit_aliases[a] = kind
    _info_cache.pop(cls, None)
    return cls


def _import_schedules() -> None:
    global _imported
    if _imported:
        return
    _imported = True
    import lrkit.compat
    import lrkit.schedules

    for pkg in (lrkit.schedules, lrkit.compat):
        for mod in pkgutil.iter_modules(pkg.__path__):
            if not mod.name.startswith("_"):
                importlib.import_module(f"{pkg.__name__}.{mod.name}")


def _scan() -> None:
    _import_schedules()
    stack: list[type[Schedule]] = list(Schedule.__subclasses__())
    seen: set[type[Schedule]] = set()
    while stack:
        cls = stack.pop()
        if cls in seen:
            continue
        seen.add(cls)
        stack.extend(cls.__subclasses__())
        kind = cls.__dict__.get("kind", "")
        if not isinstance(kind, str) or not kind or not dataclasses.is_dataclass(cls):
            continue
        old = _discovered.get(kind)
        # lrkit's own class wins a name clash with a class defined elsewhere (e.g. in a test)
        if old is None or (
            not old.__module__.startswith("lrkit.") and cls.__module__.startswith("lrkit.")
        ):
            _discovered[kind] = cls


def kinds() -> dict[str, type[Schedule]]:
    """Every registered kind and its class, sorted by kind."""
    _scan()
    merged = {**_discovered, **_explicit}
    return dict(sorted(merged.items()))


def _resolve_alias(name: str, table: Mapping[str, type[Schedule]]) -> str | None:
    if name in table:
        return name
    if name in _explicit_aliases:
        return _explicit_aliases[name]
    for kind in ALIASES.get(name, ()):
        if kind in table:
            return kind
    for cls in table.values():
        extra = getattr(cls, "aliases", ())
        if isinstance(extra, tuple) and name in extra:
            return str(cls.__dict__.get("kind", "")) or None
    return None


def lookup(name: str) -> type[Schedule] | None:
    """The class registered under ``name`` (a kind or an alias), or ``None``."""
    table = {**_discovered, **_explicit}
    kind = _resolve_alias(name, table)
    if kind is None:  # maybe defined since the last scan
        table = kinds()
        kind = _resolve_alias(name, table)
    return None if kind is None else table.get(kind)


def names() -> list[str]:
    """Every name accepted for a kind: the kinds and the aliases of registered kinds."""
    table = kinds()
    out = set(table)
    out.update(a for a in ALIASES if _resolve_alias(a, table) is not None)
    out.update(a for a, k in _explicit_aliases.items() if k in table)
    return sorted(out)


def suggest(word: str, options: list[str]) -> str:
    """`` (did you mean 'x'?)`` for a close match among ``options``, else ``""``."""
    if len(word) > 60:
        return ""
    close = difflib.get_close_matches(word, options, n=3, cutoff=0.6)
    if not close:
        return ""
    return " (did you mean " + " or ".join(repr(c) for c in close) + "?)"


def mentions_schedule(hint: Any) -> bool:
    """Whether a type hint can hold a schedule (directly, in a union or in a tuple)."""
    if isinstance(hint, type):
        return issubclass(hint, Schedule)
    return any(mentions_schedule(a) for a in typing.get_args(hint) if a is not Ellipsis)


def info_for(cls: type[Schedule]) -> KindInfo:
    """The :class:`KindInfo` of a schedule class (cached)."""
    cached = _info_cache.get(cls)
    if cached is not None:
        return cached
    kind = str(cls.__dict__.get("kind", ""))
    fields = tuple(f for f in dataclasses.fields(cls) if f.init)
    try:
        resolved = typing.get_type_hints(cls)
    except Exception:  # pragma: no cover - unresolvable annotations: check structure only
        resolved = {}
    hints = {f.name: resolved.get(f.name, Any) for f in fields}
    sched = tuple(f.name for f in fields if mentions_schedule(hints[f.name]))
    positional, rule = _explicit_opts.get(cls, (None, None))
    if positional is None:
        positional = tuple(f.name for f in fields if f.name not in sched)
    out = KindInfo(
        kind=kind,
        cls=cls,
        fields=fields,
        hints=hints,
        positional=positional,
        schedule_fields=sched,
        total_rule=rule if rule is not None else TOTAL_RULES.get(kind),
    )
    _info_cache[cls] = out
    return out


def info(name: str) -> KindInfo | None:
    """The :class:`KindInfo` for a kind or alias, or ``None`` if unknown."""
    cls = lookup(name)
    return None if cls is None else info_for(cls)


def describe(hint: Any) -> str:
    """A type hint in words, for error messages."""
    if hint is Any:
        return "a value"
    if hint is type(None):
        return "none"
    if isinstance(hint, type):
        if hint is bool:
            return "true or false"
        if hint is int:
            return "an integer"
        if hint is float:
            return "a number"
        if hint is str:
            return "a string"
        if issubclass(hint, Rel):
            return 'a relative value (0.1x, or {"rel": 0.1})'
        if issubclass(hint, Schedule):
            return "a schedule"
        return hint.__name__
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (Union, types.UnionType):
        return " or ".join(describe(a) for a in args)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of ({describe(args[0])})"
        return f"a list of {len(args)} values"
    return str(hint)


def signature(name: str) -> str:
    """How a kind reads in a spec string, e.g. ``warmup(schedule; steps, start, shape, mode)``.

    Schedule arguments (calls, ``then`` chains, lists of them) fill the fields before the
    ``;`` in order; other positional arguments fill the fields after it in order.
    """
    ki = info(name)
    if ki is None:
        raise ConfigError(f"name={name!r} is invalid: expected a schedule kind")
    sched = ", ".join(ki.schedule_fields)
    rest = ", ".join(ki.positional)
    return f"{ki.kind}({sched}; {rest})" if sched else f"{ki.kind}({rest})"
