"""Spec strings, dicts, JSON and YAML under hostile input: SpecError or a sound schedule.

Never an internal error, a hang (deep nesting, long text, huge numbers, YAML aliases) or code
execution (YAML Python tags); parsed schedules give finite rates >= 0 at any step.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from lrkit import ConfigError, SpecError
from lrkit.schedules import Scale, Schedule, Warmup
from lrkit.spec import (
    from_dict,
    kinds,
    load_json,
    load_yaml,
    parse,
    parse_string,
    to_dict,
    to_string,
)
from strategies import HOSTILE_SCALARS, cases, json_paths, json_trees, time_limit

KINDS = sorted(kinds())
FIELDS = sorted({f for k in kinds().values() for f in k.__dataclass_fields__})
NUMBERS = ["0", "1", "-1", "0.5", "1e308", "1e-308", "1e309", "5e-324", "2", "100", "0.1x",
           "1e308x", "9" * 30, "nan", "inf", "3", "0.9", "1e20", "10%", "0%", "100%", "1e308%",
           "2 epochs", "0.5 epochs", "1e39 epochs", "0.5 steps", "-1 epochs", "3 step"]



def sound_or_spec_error(make: Callable[[], Schedule]) -> Schedule | None:
    with time_limit(5.0):
        try:
            s = make()
        except SpecError:
            return None
        for t in (0, 1, 7, 100, 10**6, 10**15):
            try:
                v = s(t, base=0.1)
            except ConfigError as exc:  # parameters whose values overflow: a clear error
                message = str(exc)
                assert "overflow the float range" in message
                return s
            assert isinstance(v, float)
            assert math.isfinite(v), (t, v)
            assert v >= 0, (t, v)
        _ = s.horizon, s.milestones()
        return s


@st.composite
def spec_texts(draw: st.DrawFn, depth: int = 0) -> str:
    """Strings shaped like the grammar, with hostile numbers, names and fields."""
    leaf = st.one_of(st.sampled_from(NUMBERS), st.sampled_from(KINDS),
                     st.sampled_from(["'cosine'", "'x'", "true", "none", "[1, 2]", "[]"]))
    if depth > 3 or draw(st.integers(0, 9)) < 3:
        return draw(leaf)
    form = draw(st.integers(0, 5))
    if form <= 2:
        args = []
        for _ in range(draw(st.integers(0, 4))):
            name = draw(st.sampled_from([*FIELDS, ""]))
            value = draw(st.one_of(leaf, spec_texts(depth + 1)))
            args.append(f"{name}={value}" if name else value)
        return f"{draw(st.sampled_from(KINDS))}({', '.join(args)})"
    a, b = draw(spec_texts(depth + 1)), draw(spec_texts(depth + 1))
    if form == 3:
        return f"{a} then {b}"
    if form == 4:
        return f"{a} * {b}"
    return f"({a}) over {draw(st.sampled_from(NUMBERS))}"


@settings(max_examples=400, deadline=None)
@given(text=spec_texts(), total=st.sampled_from([None, 100, 1e308, 5e-324]))
def test_grammar_shaped_strings(text: str, total: float | None) -> None:
    s = sound_or_spec_error(lambda: parse_string(text, total_steps=total, steps_per_epoch=7))
    if s is not None:
        assert parse_string(text, total_steps=total, steps_per_epoch=7) == s  # deterministic
        assert parse_string(to_string(s)) == s  # printed with every unit resolved


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=60))
def test_arbitrary_text(text: str) -> None:
    sound_or_spec_error(lambda: parse(text))


@settings(max_examples=200, deadline=None)
@given(tree=json_trees, total=st.sampled_from([None, 100, 0, -1, math.nan, "x", True,
                                              10**400]))
def test_arbitrary_trees(tree: Any, total: Any) -> None:
    sound_or_spec_error(lambda: from_dict(tree, total))
    try:
        text = json.dumps(tree)
    except (ValueError, TypeError):
        return
    sound_or_spec_error(lambda: load_json(text))
    sound_or_spec_error(lambda: load_yaml(yaml.safe_dump(tree)))



PLAIN_HOSTILE = [v for v in HOSTILE_SCALARS  # what YAML and JSON can hold
                 if v is None or type(v) in (bool, int, float, str, list, dict)]


@settings(max_examples=300, deadline=None)
@given(case=cases, wrap=st.sampled_from([None, "warmup", "scale"]), data=st.data())
def test_mutated_valid_dicts(case: Any, wrap: str | None, data: st.DataObject) -> None:
    s = case.schedule
    if wrap == "warmup":
        s = Warmup(s, steps=10)
    elif wrap == "scale":
        s = Scale(s, 0.5)
    d = to_dict(s)
    for _ in range(data.draw(st.integers(1, 3))):
        paths = list(json_paths(d))
        path = data.draw(st.sampled_from(paths))
        target = d
        for k in path[:-1]:
            target = target[k]
        new = data.draw(st.sampled_from([*PLAIN_HOSTILE, "10%", "2 epochs", "1e308%",
                                         {"rel": 1e308}, {"rel": -1},
                                         {"kind": "poly"}, {"kind": "join", "schedules": []}]))
        target[path[-1]] = copy.deepcopy(new)
    sound_or_spec_error(lambda: from_dict(d, steps_per_epoch=3))
    sound_or_spec_error(lambda: load_yaml(yaml.safe_dump(d), 100))


def _yaml_bomb(levels: int) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join(lines) + f"\nkind: join\nschedules: *a{levels - 1}\n"


def _nested_yaml(n: int) -> str:
    out = []
    for i in range(n):
        pad = "  " * i
        out += [f"{pad}kind: scale", f"{pad}factor: 0.5", f"{pad}schedule:"]
    return "\n".join([*out, "  " * n + "kind: constant"])


@pytest.mark.parametrize(("load", "text", "match"), [
    (load_yaml, "!!python/object/apply:os.system ['echo pwned > {marker}']",
     "could not determine a constructor"),
    (load_yaml, "kind: poly\ntotal_steps: !!python/object/apply:os.system ['echo pwned > "
     "{marker}']", "could not determine a constructor"),
    (load_yaml, "kind: !!python/name:os.system\n", "could not determine a constructor"),
    (load_yaml, "&a {kind: scale, factor: 0.5, schedule: *a}", "nested too deeply"),
    (load_yaml, _yaml_bomb(7), "unknown field 'a0'"),
    (load_yaml, "[" * 5000 + "]" * 5000, "nested too deeply: 5000 levels"),
    (load_yaml, _nested_yaml(200), "nested too deeply"),
    (load_yaml, "kind: constant\nvalue: 1\n" + "#" * 2_000_000,
     "2000024 characters, expected at most 1000000"),
    (load_json, "[" * 100_000 + "]" * 100_000, "nested too deeply: 100000 levels"),
    (load_json, '{"kind": "constant", "value": NaN}', "value=nan is invalid"),
    (load_json, '{"kind": "poly", "total_steps": 1e999}', "total_steps=inf is invalid"),
    (load_json, '{"kind": "poly", "total_steps": ' + "9" * 5000 + "}", "invalid JSON"),
    (parse_string, "(" * 4000 + "constant" + ")" * 4000, "nested too deeply"),
    (parse_string, "constant" + " " * 20_000, "spec too long"),
    (parse_string, "constant(" + "1" * 9000 + ")", "too long: expected at most 40"),
    (parse_string, "poly over " + "9" * 400, "too long"),
    (parse_string, "piecewise(steps=" + "[" * 500 + "]" * 500 + ")", "nested too deeply"),
    (parse_string, "constant\x00", "unexpected character U\\+0000"),
    (parse_string, "cos\u0456ne over 10", "unexpected character"),
    (parse_string, "poly over nan", "expected a number of steps > 0 after 'over'"),
    (parse, None, "expected a schedule, a dict or a spec string, got None"),
    (parse, b"constant", "got b'constant'"),
])
def test_hostile_documents(load: Callable[[Any], Schedule], text: Any, match: str,
                           tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    if isinstance(text, str):
        text = text.replace("{marker}", str(marker))
    with time_limit(10.0), pytest.raises(SpecError, match=match):
        load(text)
    assert not marker.exists()  # no code ran


def test_self_referencing_dict_and_huge_totals() -> None:
    d: dict[str, Any] = {"kind": "scale", "factor": 0.5}
    d["schedule"] = d
    with pytest.raises(SpecError, match="nested too deeply"):
        from_dict(d)
    with pytest.raises(SpecError, match=r"total_steps=1000.* is invalid"):  # OverflowError
        from_dict({"kind": "poly"}, total_steps=10**400)
    s = parse_string("poly over 1e308")
    assert s(10**15) == pytest.approx(1.0)
    assert isinstance(ConfigError("x"), ValueError)


N_UNDER = 999_000  # just under the 1 000 000-character limit

#: texts the cheap checks refuse before any parser runs; before them, safe_load took 8-11 s
#: on the first three and over 1 s on the nested brackets
SLOW_TEXTS = [
    ("YAML flow list", "[" + "1," * (N_UNDER // 2 - 1) + "1]", "too large: 4995"),
    ("YAML block list", "- 1\n" * (N_UNDER // 4), "too large"),
    ("YAML mapping", "".join(f"k{i}: 1\n" for i in range(N_UNDER // 10)), "too large"),
    ("YAML anchors", "a: &a [x]\n" + "b: *a\n" * (N_UNDER // 7), "too large"),
    ("nested brackets", "[" * 2000 + "]" * 2000, "nested too deeply: 2000 levels"),
    ("nested mappings", "{a: " * 2000 + "1" + "}" * 2000, "nested too deeply: 2000 levels"),
    ("bytes", b"[" + b"1," * (N_UNDER // 2 - 1) + b"1]", "too large"),
]


@pytest.mark.parametrize(("what", "text", "match"), SLOW_TEXTS, ids=[w for w, *_ in SLOW_TEXTS])
@pytest.mark.parametrize("load", [load_yaml, load_json], ids=["yaml", "json"])
def test_hostile_text_is_refused_before_parsing(load: Callable[[Any], Schedule], what: str,
                                                text: Any, match: str) -> None:
    # a generous bound, only against hangs: the real timings are in benchmarks/
    with time_limit(5.0), pytest.raises(SpecError, match=match):
        load(text)


def test_large_valid_documents_are_accepted() -> None:
    """The checks refuse no spec: a long comment, a 2 000-point piecewise, deep-ish nesting."""
    steps = list(range(2000))
    values = [1.0 / (1 + i) for i in steps]
    doc = {"kind": "piecewise", "steps": steps, "values": values}
    with time_limit(5.0):
        s = load_json(json.dumps(doc))
        assert s(2.5) == pytest.approx((values[2] + values[3]) / 2)
        assert load_yaml(yaml.safe_dump(doc)) == s
        assert load_yaml("# " + "x" * (N_UNDER - 40) + "\nkind: constant\nvalue: 0.5") == parse(
            "const(0.5)")
        nested: dict[str, Any] = {"kind": "constant", "value": 0.5}
        for _ in range(30):
            nested = {"kind": "scale", "factor": 1.0, "schedule": nested}
        assert load_yaml(json.dumps(nested))(3) == 0.5  # JSON is YAML: 30 levels of {...}


def test_yaml_uses_the_c_safe_loader_when_present() -> None:
    from lrkit.spec._text import yaml_loader

    assert yaml_loader() is getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    assert issubclass(yaml_loader(), yaml.SafeLoader) or yaml_loader().__name__ == "CSafeLoader"
