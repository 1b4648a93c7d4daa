r"""Schedules as plain data: a dict form (JSON / YAML) and a short string grammar.

Every schedule and composition round-trips exactly:
``from_dict(to_dict(s)) == s`` and ``parse_string(to_string(s)) == s``. The forms are
generic over the registry of kinds: each :class:`~lrkit.schedules.base.Schedule` subclass with
a ``kind`` is found automatically (see :func:`kinds`, :func:`register`), and its spec fields
are its dataclass fields. Parsing never evaluates code: JSON goes through :func:`json.loads`,
YAML through a safe loader only (libyaml's where available), strings through a hand-written
tokenizer and recursive-descent parser with bounded length (10 000 characters) and nesting
(64 levels). JSON and YAML text is checked before parsing (at most 1 000 000 characters,
40 000 separators and 64 levels of brackets), so any input is refused in milliseconds.
Every error is a :class:`~lrkit.errors.SpecError` that names the bad key path (dicts, e.g.
``schedule.schedules[1].power``) or the column and token (strings), and what was expected.

**Dict form.** ``{"kind": <kind or alias>, <field>: <value>, ...}``; values are numbers,
strings, booleans, ``null``, ``{"rel": f}`` for :class:`~lrkit.schedules.base.Rel` ``(f)``,
nested schedule dicts and lists (for tuples). :func:`to_dict` leaves out fields equal to
their defaults but always writes ``total_steps``.

**String grammar** (EBNF; ``{x}`` repeats, ``[x]`` is optional)::

    spec     = expr EOF ;
    expr     = chain [ "over" NUMBER [ UNIT ] ] ;    (* total horizon, warmup included *)
    chain    = term { "then" term } ;                 (* pieces end to end *)
    term     = atom { "*" atom } ;                    (* schedule * number scales *)
    atom     = call | NAME | NUMBER [ UNIT ] | PCT | REL | STRING | list | "(" expr ")" ;
    call     = NAME "(" [ arg { "," arg } [ "," ] ] ")" ;
    arg      = [ NAME "=" ] expr ;                    (* positional or by field name *)
    list     = "[" [ expr { "," expr } [ "," ] ] "]" ;
    NAME     = letter_ { letter_ | digit } ;          (* ASCII; 'then', 'over' reserved *)
    NUMBER   = [ "+" | "-" ] ( digits [ "." [ digits ] ] | "." digits )
               [ ( "e" | "E" ) [ "+" | "-" ] digits ] ;
    REL      = NUMBER ( "x" | "X" ) ;                 (* 0.1x = Rel(0.1): 0.1 × base lr *)
    PCT      = NUMBER "%" ;                           (* of the total, rounded up *)
    UNIT     = "steps" | "step" | "epochs" | "epoch" ;  (* epochs: x steps_per_epoch *)
    STRING   = '"' { char | "\" char } '"' | "'" { char | "\" char } "'" ;

Meaning:

- ``name(...)`` is a schedule: its kind (``poly``) or an alias (``cos``, ``const``, ``exp``,
  ``rsqrt``, ``sgdr``...; see :func:`kinds`). A bare ``NAME`` is a schedule with no
  arguments where a schedule is expected (``then cos``), otherwise a string
  (``shape=cosine``); ``none``, ``true``, ``false`` are literals.
- Positional arguments: schedule arguments (calls, chains, products, non-empty lists of them)
  fill the kind's schedule fields in order; other values fill its remaining fields in
  declaration order (:func:`signature` shows both, e.g. ``warmup(schedule; steps, start,
  shape, mode)``), so ``warmup(1500)`` sets ``steps`` and ``poly(1000, 0.9)`` sets
  ``total_steps`` and ``power``.
- ``A then B`` joins ``B`` at ``A``'s horizon (``A`` must settle: a finite horizon). A piece
  that lacks its ``schedule`` argument wraps everything after it: ``warmup(N, start=...,
  shape=...) then X`` is ``Warmup(X, steps=N, ...)`` (prefix mode unless ``mode=`` says).
- ``A * 0.5`` (or ``0.5 * A``) is ``Scale(A, 0.5)``; ``A * B`` is ``Product((A, B))``.
- **Units** (step-count fields and ``over`` only, see ``_registry.STEP_FIELDS``): ``10%`` is
  10% of the call's own ``total_steps``, else of the innermost ``over N`` / the parser's
  total, rounded up to whole steps (HF's ``warmup_ratio``); ``2 epochs`` is 2 x
  ``steps_per_epoch``; ``0.5 steps`` half a step. A bare step count below 1
  (``warmup(0.1)``) is refused with a hint to the percentage form. The dict form takes the
  same units as strings (``"steps": "10%"``).
- **Totals include warmup.** A total comes from ``over N`` or the ``total_steps=`` argument
  of the parsers. It fills ``total_steps`` where a schedule leaves it out: in a ``then``
  chain the last piece without ``total_steps`` gets what the other pieces leave, a prefix
  warmup of ``w`` steps leaves ``N - w`` to its schedule, ``scale``/``staircase``/``clamp``
  pass it on, ``shift(f, d)`` gives ``N + d`` to ``f`` (``d`` of them skipped). A schedule
  that needs ``total_steps`` and gets neither is an error; a total with nothing to fill is
  ignored.

Examples:
    >>> from lrkit.schedules import Poly, Warmup
    >>> s = parse_string("warmup(1500) then poly(power=0.9, end=1e-5) over 160000")
    >>> s == Warmup(Poly(total_steps=158500, power=0.9, end=1e-5), steps=1500)
    True
    >>> s.horizon
    160000.0
    >>> to_string(s)
    'warmup(1500) then poly(158500, power=0.9, end=1e-05)'
    >>> to_dict(s)["schedule"]
    {'kind': 'poly', 'total_steps': 158500, 'power': 0.9, 'end': 1e-05}
    >>> from_dict(to_dict(s)) == s
    True
    >>> w = parse_string("warmup(100, start=0.1x, shape=cosine) then linear", total_steps=1000)
    >>> w.schedule, w.start, w.shape
    (Linear(total_steps=900.0, start=Rel(1.0), end=0.0), Rel(0.1), 'cosine')
    >>> s = parse_string("linear(100, start=0, end=1) then const(1) * 0.5")
    >>> s  # doctest: +ELLIPSIS
    Join(schedules=(Linear(...), Scale(schedule=Constant(value=1.0), factor=0.5)), ...)
    >>> s.boundaries, s(50), s(1000)
    ((100.0,), 0.5, 0.5)
    >>> parse_string("poly(power=0.9) then const(1e-5)")
    Traceback (most recent call last):
    ...
    lrkit.errors.SpecError: at column 1: poly is missing total_steps and no total was given ...
    >>> parse_string("warmup(1500) then poly(power=0.9 end=1e-5)")
    Traceback (most recent call last):
    ...
    lrkit.errors.SpecError: at column 34: expected ',' or ')' after argument of poly(...) at ...
    >>> parse_string("warmup(1500) then polly(power=0.9)")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    lrkit.errors.SpecError: at column 19: unknown schedule 'polly' (did you mean 'poly'?); ...
"""

from __future__ import annotations

import json
import numbers
from collections.abc import Mapping
from typing import Any

from lrkit.errors import SpecError
from lrkit.schedules.base import Schedule
from lrkit.spec._build import Budget, Fail, Over, build, short, to_dict
from lrkit.spec._convert import Converter
from lrkit.spec._format import to_string
from lrkit.spec._parse import OverNode, parse_tree
from lrkit.spec._registry import kinds, register, signature
from lrkit.spec._text import check_document, yaml_loader

__all__ = [
    "declared_total",
    "from_dict",
    "kinds",
    "load_json",
    "load_yaml",
    "parse",
    "parse_string",
    "register",
    "signature",
    "to_dict",
    "to_json",
    "to_string",
]


def _check_total(total: Any) -> float | None:
    if total is None:
        return None
    if isinstance(total, bool) or not isinstance(total, numbers.Real):
        raise SpecError(f"total_steps={total!r} is invalid: expected a number > 0 or None")
    try:
        value = float(total)
    except OverflowError:  # an int beyond the float range
        value = float("inf")
    if not 0 < value < float("inf"):
        raise SpecError(f"total_steps={total!r} is invalid: expected a finite number > 0")
    return total if isinstance(total, int) else float(total)


def _from_raw(d: Any, total: Any, budget: Budget) -> Schedule:
    total = _check_total(total)
    try:
        return build(d, "schedule", total, budget)
    except Fail as exc:
        raise SpecError(f"{exc.path}: {exc.message}") from None
    except RecursionError:  # pragma: no cover - bounded depth makes this unreachable
        raise SpecError("schedule: nested too deeply") from None


def from_dict(
    d: Mapping[str, Any], total_steps: float | None = None, *, steps_per_epoch: Any = None
) -> Schedule:
    """The schedule of a dict spec (as :func:`to_dict` writes it, or JSON/YAML gives it).

    ``total_steps`` fills any ``total_steps`` the spec leaves out (totals include warmup: a
    prefix warmup of ``w`` steps leaves ``total_steps - w`` to its schedule). Step counts
    may be strings with a unit, as in spec strings: ``"10%"`` (of the mapping's own
    ``total_steps``, else of ``total_steps``), ``"2 epochs"`` (with ``steps_per_epoch``).

    Raises:
        SpecError: unknown kind or field, a wrong type, a missing required field, or an
            invalid value; the message names the key path, e.g. ``schedule.schedule.power``.

    Example:
        >>> from_dict({"kind": "poly", "total_steps": 100, "power": 2, "end": {"rel": 0.1}})
        Poly(total_steps=100.0, power=2.0, peak=Rel(1.0), end=Rel(0.1))
        >>> from_dict({"kind": "poly", "power": -1}, total_steps=10)
        Traceback (most recent call last):
        ...
        lrkit.errors.SpecError: schedule.power: power=-1 is invalid: expected a finite number > 0
        >>> from_dict({"kind": "wsd", "warmup_steps": "10%"}, total_steps=1000).warmup_steps
        100.0
    """
    if not isinstance(d, Mapping):
        raise SpecError(f"schedule: expected a mapping with a 'kind', got {short(d)}")
    return _from_raw(d, total_steps, _budget(total_steps, steps_per_epoch))


def _budget(total: Any, steps_per_epoch: Any, lenient: bool = False) -> Budget:
    return Budget(lenient_numbers=lenient, total=_check_total(total),
                  steps_per_epoch=_check_spe(steps_per_epoch))


def to_json(schedule: Schedule, **kwargs: Any) -> str:
    """:func:`to_dict` as JSON text (``kwargs`` go to :func:`json.dumps`)."""
    return json.dumps(to_dict(schedule), allow_nan=False, **kwargs)


def load_json(
    text: str | bytes, total_steps: float | None = None, *, steps_per_epoch: Any = None
) -> Schedule:
    """The schedule of a JSON dict spec (see :func:`from_dict`).

    Example:
        >>> load_json('{"kind": "constant", "value": 0.5}')
        Constant(value=0.5)
    """
    check_document(text, "JSON")
    try:
        d = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise SpecError(f"invalid JSON: {short(str(exc), 120)}") from None
    return from_dict(d, total_steps, steps_per_epoch=steps_per_epoch)


def load_yaml(
    text: str | bytes, total_steps: float | None = None, *, steps_per_epoch: Any = None
) -> Schedule:
    """The schedule of a YAML dict spec, read with a safe loader (never a full loader):
    libyaml's ``CSafeLoader`` where PyYAML has it, else ``SafeLoader``.

    Python tags such as ``!!python/object/apply`` are refused by the safe loader. Where a
    number is expected, a number-like string is read as a number (YAML 1.1 reads ``1e-5``
    without a dot as a string).

    Example:
        >>> load_yaml("kind: poly\\ntotal_steps: 100\\nend: 1e-5")
        Poly(total_steps=100.0, power=1.0, peak=Rel(1.0), end=1e-05)
    """
    import yaml

    check_document(text, "YAML")
    try:
        d = yaml.load(text, Loader=yaml_loader())  # a safe loader only
    except (yaml.YAMLError, RecursionError) as exc:
        raise SpecError(f"invalid YAML: {short(str(exc), 200)}") from None
    if not isinstance(d, Mapping):
        raise SpecError(f"schedule: expected a mapping with a 'kind', got {short(d)}")
    return _from_raw(d, total_steps, _budget(total_steps, steps_per_epoch, lenient=True))


def _check_spe(steps_per_epoch: Any) -> float | None:
    if steps_per_epoch is None:
        return None
    upe = getattr(steps_per_epoch, "updates_per_epoch", steps_per_epoch)  # a Units
    if isinstance(upe, bool) or not isinstance(upe, numbers.Real):
        raise SpecError(
            f"steps_per_epoch={steps_per_epoch!r} is invalid: expected a number > 0, a"
            " lrkit.units.Units or None"
        )
    try:
        value = float(upe)
    except OverflowError:
        value = float("inf")
    if not 0 < value < float("inf"):
        raise SpecError(
            f"steps_per_epoch={steps_per_epoch!r} is invalid: expected a finite number > 0"
        )
    return upe if isinstance(upe, int) else value


def parse_string(
    text: str, total_steps: float | None = None, *, steps_per_epoch: Any = None
) -> Schedule:
    """The schedule of a spec string (grammar in the module docstring).

    ``total_steps`` (or an ``over N`` suffix; both must agree) is the total horizon,
    *warmup included*: it fills the ``total_steps`` the string leaves out, and percentages
    (``warmup(10%)``) are of it. ``steps_per_epoch`` (a number of optimizer updates, or a
    :class:`lrkit.units.Units`) converts ``N epochs`` to steps.

    Raises:
        SpecError: ``at column C: <what was wrong>, expected <what>, got <token>``.

    Example:
        >>> parse_string("poly(100, power=2) * 0.5")
        Scale(schedule=Poly(total_steps=100.0, power=2.0, peak=Rel(1.0), end=0.0), factor=0.5)
        >>> parse_string("warmup(10%) then cosine over 1000").steps
        100.0
        >>> parse_string("warmup(2 epochs) then cosine over 10 epochs", steps_per_epoch=50)
        Warmup(schedule=Cosine(total_steps=400.0, peak=Rel(1.0), end=0.0), steps=100.0, ...)
    """
    total = _check_total(total_steps)
    spe = _check_spe(steps_per_epoch)
    tree = parse_tree(text)
    conv = Converter(total, spe)
    raw = conv.schedule(tree)
    if (
        isinstance(tree, OverNode)
        and isinstance(raw, Over)
        and total is not None
        and raw.total != total
    ):
        raise SpecError(
            f"at column {tree.col}: total steps given twice: 'over {tree.total.text}"
            f"{' ' + tree.total.value[1] if tree.total.kind == 'unit' else ''}'"
            f" ({raw.total!r} steps) and total_steps={total!r}; expected one of them"
            " (or equal values)"
        )
    try:
        return build(raw, "schedule", total, Budget())
    except Fail as exc:
        col = conv.column(exc.node, exc.field)
        where = f"at column {col}" if col is not None else exc.path
        raise SpecError(f"{where}: {exc.message}") from None


def declared_total(spec: Any, *, steps_per_epoch: Any = None) -> float | None:
    """The total a spec string declares with a trailing ``over N`` (``N epochs`` converted
    with ``steps_per_epoch``), or ``None``: another form, text that is not a spec string
    (a file name), or a string without ``over``.

    A schedule that never settles (``step(30) over 100``) has no horizon of its own; this is
    the length the user asked for (what ``lrkit plot`` covers).

    Example:
        >>> declared_total("step(30, gamma=0.1) over 100")
        100
        >>> declared_total("cosine over 2 epochs", steps_per_epoch=50), declared_total("cos")
        (100, None)
    """
    if not isinstance(spec, str) or spec.lstrip().startswith("{"):
        return None
    try:
        tree = parse_tree(spec)
    except SpecError:  # not a spec string (e.g. the name of a spec file)
        return None
    if not isinstance(tree, OverNode):
        return None
    return Converter(None, _check_spe(steps_per_epoch)).steps(tree.total, "over")


def parse(spec: Any, total_steps: float | None = None, *, steps_per_epoch: Any = None) -> Schedule:
    """A schedule from any form: a Schedule (returned as is), a dict, JSON text (starting
    with ``{``) or a spec string (``steps_per_epoch`` as in :func:`parse_string`).

    Example:
        >>> parse("const(0.1)") == parse({"kind": "constant", "value": 0.1})
        True
        >>> parse("cosine over 10 epochs", steps_per_epoch=100).total_steps
        1000.0
    """
    if isinstance(spec, Schedule):
        return spec
    if isinstance(spec, Mapping):
        return from_dict(spec, total_steps, steps_per_epoch=steps_per_epoch)
    if isinstance(spec, str):
        if spec.lstrip().startswith("{"):
            return load_json(spec, total_steps, steps_per_epoch=steps_per_epoch)
        return parse_string(spec, total_steps, steps_per_epoch=steps_per_epoch)
    raise SpecError(f"expected a schedule, a dict or a spec string, got {short(spec)}")
