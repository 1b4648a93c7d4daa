"""Tests of lrkit.spec: dict / JSON / YAML / string round trips, totals, errors, fuzzing.

The strategies below build random *valid* schedules from the registry alone (type hints and
defaults of each kind's dataclass fields), so kinds added later are covered without changes.
They live here rather than in tests/strategies.py, which another module owns.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
import re
import typing
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lrkit.errors import SpecError
from lrkit.schedules import (
    Clamp,
    Constant,
    Hold,
    Join,
    Linear,
    Poly,
    Product,
    Rel,
    Repeat,
    Scale,
    Schedule,
    Staircase,
    Warmup,
)
from lrkit.spec import _registry as reg
from lrkit.spec import (
    from_dict,
    kinds,
    load_json,
    load_yaml,
    parse,
    parse_string,
    register,
    signature,
    to_dict,
    to_json,
    to_string,
)

ERRORS = (ValueError, TypeError, ArithmeticError)

# -- random valid schedules from the registry --------------------------------------------------

LEAF = Constant(0.5)


def _candidates(hint: Any) -> list[Any]:
    """A few plausible values of a type hint, used to find valid seed instances."""
    if hint is float:
        return [100.0, 0.5, 2.0]
    if hint is int:
        return [10, 1, 2]
    if hint is bool:
        return [False, True]
    if hint is str:
        return []
    if hint is type(None):
        return [None]
    if isinstance(hint, type) and issubclass(hint, Rel):
        return [Rel(0.5)]
    if isinstance(hint, type) and issubclass(hint, Schedule):
        return [Linear(100, start=1.0, end=0.0), LEAF]
    args = typing.get_args(hint)
    if typing.get_origin(hint) is tuple:
        elem = _candidates(args[0])
        return [(elem[0],), (elem[0], elem[0]), ()] if elem else [()]
    out: list[Any] = []
    for a in args:
        out.extend(_candidates(a))
    return out


def _find_seeds(cls: type[Schedule], limit: int = 6) -> list[Schedule]:
    """Valid instances of ``cls`` from defaults and candidate values (a bounded search)."""
    ki = reg.info_for(cls)
    options = []
    for f in ki.fields:
        default = ki.default(f.name)
        cands = [] if default is dataclasses.MISSING else [default]
        cands += [c for c in _candidates(ki.hints[f.name]) if c not in cands][:3]
        options.append(cands or [default])
    seeds: list[Schedule] = []
    for combo in itertools.islice(itertools.product(*options), 3000):
        try:
            s = cls(**{f.name: v for f, v in zip(ki.fields, combo, strict=True)})
        except ERRORS:
            continue
        if s not in seeds:
            seeds.append(s)
        if len(seeds) >= limit:
            break
    return seeds


def _choices(seed: Schedule, name: str) -> list[str]:
    """The allowed strings of a str field, read off the constructor's error message."""
    try:
        dataclasses.replace(seed, **{name: "\x00not-a-choice"})
    except ERRORS as exc:
        found = re.findall(r"'([^']*)'", str(exc).split("one of", 1)[-1])
        return [c for c in found if c != "\x00not-a-choice"]
    return []


SEEDS = {kind: _find_seeds(cls) for kind, cls in kinds().items()}
LEAF_KINDS = sorted(k for k, cls in kinds().items() if not reg.info_for(cls).schedule_fields)

finite = st.floats(min_value=0.0, max_value=1e6, allow_nan=False, allow_infinity=False)
nice = st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0, 2.0, 10.0, 1e-5, 1500.0, 1 / 3])


def _values(hint: Any, depth: int, seed: Schedule, name: str) -> st.SearchStrategy[Any]:
    if hint is float:
        return st.one_of(nice, finite, st.integers(0, 10**6))
    if hint is int:
        return st.integers(0, 10**6)
    if hint is bool:
        return st.booleans()
    if hint is str:
        return st.sampled_from(_choices(seed, name) or [getattr(seed, name)])
    if hint is type(None):
        return st.none()
    if isinstance(hint, type) and issubclass(hint, Rel):
        return st.builds(Rel, st.one_of(nice, finite))
    if isinstance(hint, type) and issubclass(hint, Schedule):
        return schedules(depth - 1)
    args = typing.get_args(hint)
    if typing.get_origin(hint) is tuple:
        elem = _values(args[0], depth, seed, name)
        lists = st.lists(elem, max_size=3)
        if args[0] is float:
            lists = lists.map(sorted)
        return lists.map(tuple)
    if args:
        return st.one_of(*(_values(a, depth, seed, name) for a in args))
    return st.just(getattr(seed, name))


@st.composite
def schedules(draw: st.DrawFn, depth: int = 2) -> Schedule:
    """A random valid schedule of any registered kind, nested up to ``depth`` levels."""
    pool = (
        sorted(k for k in SEEDS if SEEDS[k]) if depth > 0 else [k for k in LEAF_KINDS if SEEDS[k]]
    )
    kind = draw(st.sampled_from(pool))
    seed = draw(st.sampled_from(SEEDS[kind]))
    ki = reg.info_for(type(seed))
    kwargs = {f.name: getattr(seed, f.name) for f in ki.fields}
    for f in ki.fields:
        if not draw(st.booleans()):
            continue
        value = draw(_values(ki.hints[f.name], depth, seed, f.name))
        try:
            type(seed)(**{**kwargs, f.name: value})
        except ERRORS:
            continue
        kwargs[f.name] = value
    return type(seed)(**kwargs)


# -- hand-built compositions -------------------------------------------------------------------

POLY = Poly(total_steps=158500, power=0.9, end=1e-5)
COMPOSITIONS = [
    Warmup(POLY, steps=1500),
    Warmup(POLY, steps=1500, start=Rel(0.01), shape="cosine", mode="overlap"),
    Warmup(Warmup(Linear(10), steps=3), steps=5),
    Join((Linear(100, start=0.0, end=1.0), Poly(900, power=2.0)), (100.0,)),
    Join((Constant(1.0), Linear(10)), (5.0,)),  # boundary not at the horizon: join(...) form
    Join((Linear(10), Linear(20), Constant(0.1)), (10.0, 30.0)),
    Join((Linear(10), Warmup(Linear(5), steps=2), Constant(0.1)), (10.0, 17.0)),
    Join((Join((Linear(1), Linear(2)), (1.0,)), Linear(3)), (3.0,)),
    Join((Linear(10),), ()),
    Join((Linear(10), Constant(0.1)), (10.0,), local=False),
    Scale(Warmup(POLY, steps=10), 0.5),
    Scale(Scale(POLY, 0.5), 0.25),
    Product((POLY, Linear(10), Constant(2.0))),
    Product((Product((POLY, Linear(10))), Constant(2.0))),
    Staircase(Clamp(POLY, low=1e-4, high=0.5), step_size=100),
    Repeat(Hold(Linear(10), after=5), period=10, times=3),
    Warmup(Scale(Join((Linear(5), Constant(Rel(0.1))), (5.0,)), 2.0), steps=4),
]


def _all_forms(s: Schedule) -> list[Schedule]:
    d = to_dict(s)
    return [
        from_dict(d),
        load_json(json.dumps(d)),
        load_json(to_json(s)),
        load_yaml(yaml.safe_dump(d)),
        parse_string(to_string(s)),
        parse(d),
        parse(to_string(s)),
        parse(to_json(s)),
        parse(s),
    ]


@pytest.mark.parametrize("s", COMPOSITIONS, ids=repr)
def test_compositions_round_trip_every_form(s: Schedule) -> None:
    for back in _all_forms(s):
        assert back == s
    json.dumps(to_dict(s), allow_nan=False)  # plain JSON


def test_every_registered_kind_has_a_seed() -> None:
    core = {"constant", "linear", "poly", "warmup", "join", "scale", "product", "staircase"}
    assert core <= set(kinds())
    assert [k for k, seeds in SEEDS.items() if not seeds] == []


@pytest.mark.parametrize("kind", sorted(SEEDS))
def test_each_kind_round_trips(kind: str) -> None:
    for s in SEEDS[kind]:
        assert type(s).kind == kind
        for back in _all_forms(s):
            assert back == s


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedules())
def test_random_schedules_round_trip(s: Schedule) -> None:
    for back in _all_forms(s):
        assert back == s


@settings(max_examples=150, deadline=None)
@given(st.floats(min_value=0.0, allow_nan=False, allow_infinity=False))
def test_floats_round_trip_exactly(x: float) -> None:
    s = Constant(x)
    assert parse_string(to_string(s)).value == x  # type: ignore[attr-defined]
    assert load_json(to_json(s)).value == x  # type: ignore[attr-defined]
    assert load_yaml(yaml.safe_dump(to_dict(s))).value == x  # type: ignore[attr-defined]


# -- the example, the dict form and totals ---------------------------------------------


def test_the_example() -> None:
    want = Warmup(Poly(total_steps=158500, power=0.9, end=1e-5), steps=1500)
    for text, total in [
        ("warmup(1500) then poly(power=0.9, end=1e-5) over 160000", None),
        ("warmup(1500) then poly(power=0.9, end=1e-5)", 160000),
        ("warmup(1500) then poly(power=0.9, end=1e-5) over 160000", 160000),
        ("  warmup( 1500 , ) then\n poly(power = 0.9,end=0.00001,)over 160000.0 ", None),
        ("warmup(steps=1500, mode=prefix, shape='linear') then poly(158500, 0.9, end=1e-5)", None),
    ]:
        s = parse_string(text, total_steps=total)
        assert s == want
    # values from the formula, typed here: linear ramp, then poly over the remaining steps
    assert s(0) == 0.0
    assert s(750) == pytest.approx(0.5)
    assert s(1500 + 79250) == pytest.approx(1e-5 + (1 - 1e-5) * 0.5**0.9)
    assert s(160000) == pytest.approx(1e-5)
    assert s.horizon == 160000


def test_to_dict_is_minimal_and_plain() -> None:
    assert to_dict(Poly(total_steps=160000, power=0.9, end=1e-5)) == {
        "kind": "poly", "total_steps": 160000, "power": 0.9, "end": 1e-05,
    }  # fmt: skip
    assert to_dict(Warmup(Linear(10, end=Rel(0.1)), steps=5, start=Rel(0.01))) == {
        "kind": "warmup",
        "schedule": {"kind": "linear", "total_steps": 10, "end": {"rel": 0.1}},
        "steps": 5,
        "start": {"rel": 0.01},
    }
    assert to_dict(Join((Linear(1), Linear(2)), (1.0,)))["schedules"][1] == {
        "kind": "linear", "total_steps": 2,
    }  # fmt: skip


def test_to_string_reads_well() -> None:
    assert to_string(COMPOSITIONS[0]) == "warmup(1500) then poly(158500, power=0.9, end=1e-05)"
    assert to_string(Join((Constant(1.0), Linear(10)), (5.0,))) == (
        "join([constant(1), linear(10)], [5])"
    )
    assert to_string(Scale(Join((Linear(10), Constant(0.1)), (10.0,)), 0.5)) == (
        "(linear(10) then constant(0.1)) * 0.5"
    )
    assert to_string(Linear(10, start=Rel(0.5), end=Rel(2.0))) == "linear(10, start=0.5x, end=2x)"


@pytest.mark.parametrize(
    ("text", "total", "want"),
    [
        # the last open piece of a chain takes what the others leave (totals include warmup)
        ("linear(100, start=0, end=1) then poly(power=2) then const(0.1)", 1000,
         Join((Linear(100, start=0.0, end=1.0), Poly(900, power=2.0), Constant(0.1)),
              (100.0, 1000.0))),
        ("poly(100) then linear(end=0.5) then linear(10)", 1000,
         Join((Poly(100), Linear(890, end=0.5), Linear(10)), (100.0, 990.0))),
        ("warmup(10, mode=overlap) then poly", 100, Warmup(Poly(100), steps=10, mode="overlap")),
        ("warmup(10) then poly(50)", None, Warmup(Poly(50), steps=10)),
        ("poly(50) over 1000", None, Poly(50)),  # nothing to fill: the total is ignored
        ("(warmup(10) then poly) * 0.5 over 110", None, Scale(Warmup(Poly(100), steps=10), 0.5)),
        ("warmup(10, 0, cosine) then poly(10)", None,
         Warmup(Poly(10), steps=10, start=0.0, shape="cosine")),
        ("scale(cos, 0.5) over 10", None, Scale(parse_string("cos(10)"), 0.5)),
        ("staircase(poly(power=2), 10)", 100, Staircase(Poly(100, power=2.0), 10)),
        ("clamp(poly, low=0.1)", 100, Clamp(Poly(100), low=0.1)),
        ("repeat(poly over 10, period=10, times=2)", 1000, Repeat(Poly(10), 10, 2)),
        ("warmup(10) then warmup(5) then linear", 100, Warmup(Warmup(Linear(85), 5), 10)),
        ("linear(10) then (warmup(5) then linear)", 100,
         Join((Linear(10), Warmup(Linear(85), steps=5)), (10.0,))),
        ("0.5 * poly(10)", None, Scale(Poly(10), 0.5)),
        ("poly(10) * linear(10) * 2", None, Scale(Product((Poly(10), Linear(10))), 2.0)),
        ("poly(10) * linear(10) * const", None, Product((Poly(10), Linear(10), Constant()))),
        ("scale(poly(10), 0.5)", None, Scale(Poly(10), 0.5)),
        ("warmup(poly(10), 3)", None, Warmup(Poly(10), steps=3)),
        ("join([poly(10), const(0.1)], [10], local=false)", None,
         Join((Poly(10), Constant(0.1)), (10.0,), local=False)),
        ("const(\"0.5\" )", None, None),  # a string where a number goes: an error, below
    ],
)  # fmt: skip
def test_totals_and_sugar(text: str, total: float | None, want: Schedule | None) -> None:
    if want is None:
        with pytest.raises(SpecError, match="expected a number"):
            parse_string(text, total_steps=total)
        return
    assert parse_string(text, total_steps=total) == want
    assert parse_string(to_string(want)) == want


def test_from_dict_fills_totals_through_wrappers() -> None:
    d = {"kind": "warmup", "steps": 100, "schedule": {"kind": "scale", "factor": 0.5,
         "schedule": {"kind": "poly", "power": 0.9}}}  # fmt: skip
    assert from_dict(d, total_steps=1100) == Warmup(Scale(Poly(1000, power=0.9), 0.5), steps=100)
    with pytest.raises(SpecError, match=r"^schedule\.schedule\.schedule\.total_steps: poly is"):
        from_dict(d)


def test_load_yaml_reads_number_like_strings_as_numbers() -> None:
    text = "kind: warmup\nsteps: 1.5e3\nschedule:\n  kind: poly\n  power: 0.9\n  end: 1e-5\n"
    assert load_yaml(text, total_steps=160000) == COMPOSITIONS[0]
    assert load_yaml("kind: warmup\nshape: cosine\nschedule: {kind: constant}\n").shape == "cosine"


def test_registry_and_signatures() -> None:
    assert signature("warmup") == "warmup(schedule; steps, start, shape, mode)"
    assert signature("poly") == "poly(total_steps, power, peak, end)"
    assert parse_string("const(0.1)") == parse_string("constant(0.1)") == Constant(0.1)
    for alias, kind in [("cos", "cosine"), ("sgdr", "restarts"), ("restarts", "restarts")]:
        if kind in kinds():
            assert reg.lookup(alias) is kinds()[kind]


def test_register_a_class_defined_elsewhere() -> None:
    @dataclasses.dataclass(frozen=True)
    class Tri(Schedule):
        kind = "test_tri"
        total_steps: float = 1.0
        schedules: tuple[Schedule, ...] = ()
        top: float | Rel = Rel(1.0)  # noqa: RUF009 - Rel is frozen, sharing it is safe

    register(Tri, "tri3", positional=("top", "total_steps"))
    try:
        s = parse_string("tri3(0.5x, schedules=[const(1)]) over 10")
        assert s == Tri(10.0, (Constant(1.0),), Rel(0.5))
        assert parse_string(to_string(s)) == s
        assert from_dict(to_dict(s)) == s
        assert signature("tri3") == "test_tri(schedules; top, total_steps)"
    finally:
        reg._explicit.pop("test_tri")
        reg._explicit_aliases.pop("tri3")
        reg._discovered.pop("test_tri", None)


def test_unregistered_classes_cannot_be_written() -> None:
    @dataclasses.dataclass(frozen=True)
    class Anon(Schedule):
        pass

    with pytest.raises(SpecError, match="not a registered schedule kind"):
        to_dict(Anon())
    with pytest.raises(SpecError, match="not a registered schedule kind"):
        to_string(Warmup(Anon(), steps=1))
    with pytest.raises(SpecError, match="expected a Schedule"):
        to_dict("poly")  # type: ignore[arg-type]


# -- errors --------------------------------------------------------------------------------------

STRING_ERRORS = [
    # (text, total, pieces the message must contain, in order)
    ("polly(100)", None, ["at column 1", "unknown schedule 'polly'", "did you mean 'poly'"]),
    ("warmup(1500) then cosin", 10, ["at column 19", "unknown schedule 'cosin'", "'cos"]),
    ("poly(1e)", None, ["at column 6", "bad number '1e'", "exponent"]),
    ("poly(1.2.3)", None, ["at column 6", "bad number '1.2.3'"]),
    ("poly(1500steps)", None, ["at column 6", "bad number '1500steps'"]),
    ("poly(1e999)", None, ["at column 6", "out of range"]),
    ("poly(-)", None, ["at column 6", "unexpected character '-'"]),
    ("poly(100", None, ["at column 9", "expected ',' or ')'", "poly(...) at column 1",
                        "got end of input"]),
    ("warmup(1500 then poly(power=0.9)", 10, ["at column 33", "expected ',' or ')'",
                                               "end of input"]),
    ("poly(power=0.9 end=1e-5)", 10, ["at column 16", "expected ',' or ')'", "got 'end'"]),
    ("poly(100))", None, ["at column 10", "expected 'then', '*', 'over' or end of input",
                          "got ')'"]),
    ("(poly(100)", None, ["at column 11", "expected ')' to close '(' at column 1"]),
    ("[1, 2", None, ["at column 6", "expected ',' or ']'"]),
    ("poly(power=0.9)", None, ["at column 1", "poly is missing total_steps",
                               "no total was given"]),
    ("warmup(100) then poly", None, ["at column 18", "missing total_steps"]),
    ("poly(100, power=-1)", None, ["at column 17", "power=-1 is invalid", "> 0"]),
    ("warmup(-5) then poly(10)", None, ["at column 8", "steps=-5 is invalid", ">= 0"]),
    ("linear(10, end=-0.5x)", None, ["at column 16", "-0.5", "invalid", ">= 0"]),
    ("poly(100, powr=2)", None, ["at column 11", "unknown argument 'powr'",
                                 "did you mean 'power'"]),
    ("poly(100, power=2, power=3)", None, ["at column 20", "'power'", "given twice"]),
    ("poly(power=2, 100)", None, ["at column 15", "positional argument after keyword"]),
    ("const(1, 2)", None, ["at column 10", "too many value arguments", "constant(value)"]),
    ("warmup(10, shape=cubic) then poly(10)", None, ["at column 18", "shape='cubic'",
                                                     "'linear'"]),
    ("warmup(10)", None, ["at column 1", "missing required field 'schedule'",
                         "warmup(...) then <schedule>"]),
    ("linear(10) then warmup(5)", None, ["nothing to wrap"]),
    ("warmup(10) then poly over 5", None, ["at column 17", "leaves -5 steps for poly"]),
    ("warmup(10) then poly over 10", None, ["leaves 0 steps"]),
    ("poly then linear then const", 100, ["at column 1", "only the last piece"]),
    ("rsqrt(10) then const(0.1)", None, ["at column 1", "'then' needs a finite horizon"]),
    ("poly then rsqrt(10)", 100, ["at column 11", "never settles"]),
    ("poly(10) then linear over 10", None, ["at column 15", "leaves 0 for this piece"]),
    ("poly(10) over 0", None, ["at column 15", "expected a number of steps > 0 after 'over'"]),
    ("poly(10) over", None, ["at column 14", "after 'over'", "end of input"]),
    ("poly(10) then", None, ["at column 14", "expected a schedule or a value",
                             "got end of input"]),
    ("then", None, ["at column 1", "got 'then'"]),
    ("", None, ["at column 1", "got end of input"]),
    ("0.5", None, ["at column 1", "expected a schedule, got number 0.5"]),
    ("poly(10) then 0.5", None, ["at column 15", "'then' joins schedules", "number 0.5"]),
    ("0.5 * 2", None, ["at column 7", "two numbers"]),
    ("poly(10) * 0.5x", None, ["at column 12", "expected a schedule, got relative value 0.5x"]),
    ("poly(total_steps=[1])", None, ["at column 18", "expected a number, got [1]"]),
    ("poly(total_steps=true)", None, ["at column 18", "expected a number, got True"]),
    ("const(value=poly(10))", None, ["at column 13", "expected a number or a relative value"]),
    ("warmup(poly(10), poly(10))", None, ["at column 18", "too many schedule arguments"]),
    ("scale('cos', 0.5)", None, ["at column 14", "too many value arguments"]),
    ("warmup(poly(1), 1, 0, cosine, poly(1))", None, ["at column 31", "too many schedule"]),
    ("poly(10) # comment", None, ["at column 10", "unexpected character '#'"]),
    ("poly('10)", None, ["at column 6", "unterminated string"]),
    ("poly(10) over 20", 30, ["at column 10", "total steps given twice"]),
    ("true", None, ["at column 1", "expected a schedule, got 'true'"]),
    ("join([poly(1), poly(1), poly(1)], [20, 10])", None,
     ["at column 35", "boundaries=[20.0, 10.0]", "non-decreasing"]),
]  # fmt: skip


@pytest.mark.parametrize(("text", "total", "parts"), STRING_ERRORS, ids=lambda x: str(x))
def test_string_errors_name_the_token_and_what_was_expected(
    text: str, total: float | None, parts: list[str]
) -> None:
    with pytest.raises(SpecError) as info:
        parse_string(text, total_steps=total)
    msg = str(info.value)
    at = 0
    for part in parts:
        found = msg.find(part, at)
        assert found >= 0, f"{part!r} not in {msg!r} (after position {at})"
        at = found + len(part)


DICT_ERRORS = [
    ({"kind": "polly"}, ["schedule.kind: unknown kind 'polly'", "did you mean 'poly'"]),
    ({"total_steps": 10}, ["schedule: missing 'kind'"]),
    ({"kind": 3}, ["schedule.kind: expected a kind name, got 3"]),
    ({"kind": "poly", "total_steps": 10, "powr": 2}, ["schedule.powr: unknown field 'powr'",
                                                      "did you mean 'power'"]),
    ({"kind": "poly", "total_steps": "10"}, ["schedule.total_steps: expected a number, got '10'"]),
    ({"kind": "poly", "total_steps": 10, "end": {"rel": "a"}}, ['schedule.end: expected {"rel"']),
    ({"kind": "poly", "total_steps": 10, "end": {"rell": 1}}, ["schedule.end: expected a number"]),
    ({"kind": "poly", "total_steps": 10, "end": {"rel": -1}}, ["schedule.end: Rel.factor=-1"]),
    ({"kind": "poly"}, ["schedule.total_steps: poly is missing total_steps"]),
    ({"kind": "warmup", "steps": 5}, ["schedule.schedule: warmup is missing required field"]),
    ({"kind": "join", "schedules": [{"kind": "linear", "total_steps": 1},
                                    {"kind": "poly", "total_steps": 1, "power": -2}],
      "boundaries": [1]}, ["schedule.schedules[1].power: power=-2 is invalid",
                           "expected a finite number > 0"]),
    ({"kind": "join", "schedules": [{"kind": "linear", "total_steps": 1}], "boundaries": [1]},
     ["schedule.boundaries: boundaries=[1.0] is invalid: expected 0 steps"]),
    ({"kind": "join", "schedules": {"kind": "linear"}, "boundaries": []},
     ["schedule.schedules: expected a list of (a schedule)"]),
    ({"kind": "scale", "schedule": 0.5}, ["schedule.schedule: expected a schedule, got 0.5"]),
    ({"kind": "warmup", "schedule": {"kind": "constant"}, "steps": 1, "shape": 2},
     ["schedule.shape: expected a string, got 2"]),
    ({"kind": "constant", 1: 2}, ["schedule.1: unknown field 1 for constant"]),
]  # fmt: skip


@pytest.mark.parametrize(("d", "parts"), DICT_ERRORS, ids=lambda x: str(x)[:40])
def test_dict_errors_name_the_key_path(d: dict[str, Any], parts: list[str]) -> None:
    with pytest.raises(SpecError) as info:
        from_dict(d)
    for part in parts:
        assert part in str(info.value)
    with pytest.raises(SpecError):
        load_json(json.dumps({str(k): v for k, v in d.items()}) if 1 not in d else "{1: 2}")


@pytest.mark.parametrize(
    ("call", "arg", "match"),
    [
        (load_json, "{", "invalid JSON"),
        (load_json, "[1, 2]", "expected a mapping"),
        (load_json, "[" * 100_000 + "]" * 100_000, "invalid JSON|nested too deeply"),
        (load_yaml, "kind: [", "invalid YAML"),
        (load_yaml, "- 1", "expected a mapping"),
        (load_yaml, "", "expected a mapping"),
        (parse, 3.5, "expected a schedule, a dict or a spec string"),
        (parse_string, b"poly(1)", "expected a spec string"),
        (from_dict, [("kind", "poly")], "expected a mapping"),
    ],
)
def test_loader_errors(call: Any, arg: Any, match: str) -> None:
    with pytest.raises(SpecError, match=match):
        call(arg)


@pytest.mark.parametrize("total", [0, -1, math.inf, math.nan, "10", True])
def test_bad_totals(total: Any) -> None:
    with pytest.raises(SpecError, match="total_steps="):
        parse_string("poly", total_steps=total)
    with pytest.raises(SpecError, match="total_steps="):
        from_dict({"kind": "poly"}, total_steps=total)


def test_yaml_python_tags_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    called = []
    monkeypatch.setattr(os, "system", lambda *a: called.append(a) or 0)
    for text in [
        "!!python/object/apply:os.system ['echo pwned']",
        "kind: !!python/object/apply:os.system ['echo pwned']\n",
        "kind: poly\ntotal_steps: !!python/name:os.system\n",
        "!!python/object/new:lrkit.schedules.Poly {}",
    ]:
        with pytest.raises(SpecError, match="invalid YAML"):
            load_yaml(text)
    assert called == []


def test_nesting_and_length_are_bounded() -> None:
    deep = "scale(" * 200 + "const" + ", 0.5)" * 200
    with pytest.raises(SpecError, match="nested too deeply"):
        parse_string(deep)
    with pytest.raises(SpecError, match="nested too deeply"):
        parse_string("(" * 3000 + "const" + ")" * 3000)
    with pytest.raises(SpecError, match="spec too long"):
        parse_string("const " * 5000)
    d: dict[str, Any] = {"kind": "constant"}
    for _ in range(200):
        d = {"kind": "scale", "schedule": d}
    with pytest.raises(SpecError, match="nested too deeply"):
        from_dict(d)
    loop: dict[str, Any] = {"kind": "scale"}
    loop["schedule"] = loop  # a self-referencing mapping, as YAML anchors can make
    with pytest.raises(SpecError, match="nested too deeply"):
        from_dict(loop)
    with pytest.raises(SpecError, match="nested too deeply"):
        load_yaml("&a {kind: scale, schedule: *a}")
    bomb = "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    bomb += "kind: piecewise\nsteps: *i\n"
    with pytest.raises(SpecError):
        load_yaml(bomb)
    # moderately nested specs are fine
    ok = "scale(" * 20 + "const" + ", 0.5)" * 20
    assert parse_string(ok).horizon == 0.0


# -- fuzzing -------------------------------------------------------------------------------------

_PIECES = [
    "warmup", "poly", "cos", "const", "then", "over", "(", ")", "[", "]", ",", "=", "*", "1",
    "0.5", "1e-5", "-3", "0.1x", "'a'", "power", "steps", "shape", "cosine", "linear", "join",
    "scale", "none", "true", "160000", " ", "total_steps", "x", "e", ".", "\"", "\\",
]  # fmt: skip


def _only_spec_errors(text: str, total: float | None = None) -> None:
    try:
        s = parse_string(text, total_steps=total)
    except SpecError:
        return
    assert isinstance(s, Schedule)
    assert parse_string(to_string(s)) == s  # whatever parses also round-trips


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=200))
def test_fuzz_text_raises_only_spec_errors(text: str) -> None:
    _only_spec_errors(text)


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=40).map("".join), st.sampled_from([None, 1e4]))
def test_fuzz_token_soup_raises_only_spec_errors(text: str, total: float | None) -> None:
    _only_spec_errors(text, total)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedules(), st.data())
def test_fuzz_mutated_specs_raise_only_spec_errors(s: Schedule, data: st.DataObject) -> None:
    text = to_string(s)
    i = data.draw(st.integers(0, len(text)))
    j = data.draw(st.integers(i, min(len(text), i + 3)))
    junk = data.draw(st.sampled_from(["", "(", ")", ",", "then", "-", "x", "1e", "[", "]]"]))
    _only_spec_errors(text[:i] + junk + text[j:])


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=10),
        lambda inner: st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["kind", "schedule", "schedules", "total_steps", "rel", "steps",
                             "power", "boundaries", "value", "factor"]),
            inner | st.sampled_from(["poly", "warmup", "join", "scale", "constant", "cos"]),
            max_size=5,
        ),
        max_leaves=20,
    )
)  # fmt: skip
def test_fuzz_dicts_raise_only_spec_errors(d: Any) -> None:
    try:
        s = from_dict(d) if isinstance(d, dict) else parse(d)
    except SpecError:
        return
    assert from_dict(to_dict(s)) == s
