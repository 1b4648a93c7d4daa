"""Every schedule kind under hostile field values: a ConfigError or a correct schedule.

Correct means: finite, non-negative float values at any step (scalar, NumPy and torch
paths), within a time limit, with a round-tripping spec. Never an internal error
(OverflowError, ZeroDivisionError, RecursionError, ...), a hang or a NaN rate. The cases
at the bottom are the bugs this found (each failed before its fix).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lrkit import ConfigError
from lrkit.schedules import (
    WSD,
    Constant,
    CosineRestarts,
    Cyclic,
    Linear,
    MultiStep,
    Repeat,
    Scale,
    Schedule,
)
from lrkit.spec import from_dict, kinds, parse_string, to_dict, to_string
from strategies import HOSTILE_SCALARS, time_limit

KINDS = kinds()
CHILDREN: list[Any] = [Constant(0.1), Linear(10), (Constant(0.1), Linear(5))]
STEPS = (0, 1, 2, 5, 99, 100, 1000, 10**6, 10**15, 2**53)



def check_schedule(s: Schedule) -> None:
    """Values finite and >= 0 on every path; the spec forms round-trip."""
    for t in STEPS:
        v = s(t, base=0.1)
        assert isinstance(v, float)
        assert math.isfinite(v), (t, v)
        assert v >= 0, (t, v)
    arr = s(np.array([0.0, 1.0, 3.0, 1e9, 1e300]), base=0.1)
    assert np.all(np.isfinite(arr)), arr
    assert np.all(arr >= 0), arr
    tv = s.bind(0.1).eval_tensor(torch.tensor([0.0, 1.0, 1e9, 1e300], dtype=torch.float64))
    assert bool(torch.isfinite(tv).all()), tv
    assert bool((tv >= 0).all()), tv
    _ = s.horizon, s.milestones(), repr(s), hash(s)
    assert from_dict(to_dict(s)) == s
    assert parse_string(to_string(s)) == s


def build_and_check(make: Callable[[], Schedule]) -> None:
    with time_limit(5.0):
        try:
            s = make()
        except ConfigError:
            return
        try:
            check_schedule(s)
        except ConfigError as exc:  # parameters whose values overflow: a clear error
            overflow = exc
        else:
            return
        assert "overflow the float range" in str(overflow)


@st.composite
def hostile_kwargs(draw: st.DrawFn) -> tuple[type[Schedule], dict[str, Any]]:
    cls = draw(st.sampled_from(sorted(KINDS.values(), key=lambda c: c.__name__)))
    kw = {}
    for f in dataclasses.fields(cls):
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if required or draw(st.booleans()):
            kw[f.name] = draw(st.sampled_from(HOSTILE_SCALARS + CHILDREN))
    return cls, kw


@settings(max_examples=400, deadline=None)
@given(case=hostile_kwargs())
def test_hostile_fields_give_config_error_or_a_sound_schedule(
        case: tuple[type[Schedule], dict[str, Any]]) -> None:
    cls, kw = case
    build_and_check(lambda: cls(**kw))


@pytest.mark.parametrize("make", [
    # OverflowError: float(10**400) in the argument checks
    lambda: MultiStep((10.0,), peak=10**400),
    lambda: CosineRestarts(period=10, max_cycles=10**400),
    # OverflowError: period_mult**max_cycles in CosineRestarts
    lambda: CosineRestarts(period=1, period_mult=2**63, max_cycles=1000),
    # hang: milestones() listed every one of 1e20 restarts
    lambda: CosineRestarts(period=1, max_cycles=10**20),
    # NaN: m**k overflowed far out (inf - inf, inf / inf)
    lambda: CosineRestarts(period_mult=1e20),
    lambda: CosineRestarts(period=1e-8, period_mult=7, peak_decay=0.5, end=0.1, peak=0.0),
    lambda: CosineRestarts(period=1e-320, period_mult=2**63, end=2),
    # NaN: t / (up + down) overflowed, or the up/down ratio underflowed to 0
    lambda: Cyclic(low=0, high=1, step_size_up=5e-324),
    lambda: Cyclic(low=1, high=0.5, step_size_up=5e-324, step_size_down=10),
    lambda: Cyclic(low=0.5, high=1e-3, step_size_up=1e308),
    # inf: growth past the float range
    lambda: MultiStep((0.0, 1.0), gamma=1e308),
    # NaN: Repeat's phase t - floor(t / p) * p was -inf for a tiny period
    lambda: Repeat(WSD(total_steps=25, warmup_steps=1, decay_steps=2.5), period=5e-324),
    # ConfigError raised only when evaluated: the decay length underflowed to 0
    lambda: WSD(total_steps=5e-324),
    # inf: a scale factor that overflows (now a ConfigError when evaluated)
    lambda: Scale(Linear(842.8, start=0.5, end=3.09), 1e308),
])
def test_found_bugs_stay_fixed(make: Callable[[], Schedule]) -> None:
    build_and_check(make)


def test_found_bugs_messages() -> None:
    with pytest.raises(ConfigError, match=r"peak=1000.*is invalid: expected a finite number"):
        MultiStep((10.0,), peak=10**400)
    with pytest.raises(ConfigError, match=r"max_cycles=1000 is invalid: expected a count whose "
                                          r"last cycle ends at a finite step"):
        CosineRestarts(period=1, period_mult=2**63, max_cycles=1000)
    with pytest.raises(ConfigError, match=r"max_cycles=.* of at most 2\*\*63 in size"):
        CosineRestarts(period=1, max_cycles=10**400)
    with pytest.raises(ConfigError, match=r"step_size_up=5e-324 is invalid: expected step "
                                          r"sizes whose sum is finite"):
        Cyclic(low=0, high=1, step_size_up=5e-324, step_size_down=10)
    with pytest.raises(ConfigError, match=r"gamma=1e\+308 is invalid: expected a factor whose "
                                          r"growth over 2 boundaries stays finite"):
        MultiStep((0.0, 1.0), gamma=1e308)
    with pytest.raises(ConfigError, match=r"value=inf at step 0 is invalid: expected a finite "
                                          r"number \(the parameters of Scale.* overflow"):
        Scale(Linear(10, start=3.0), 1e308)(0)
    with pytest.raises(ConfigError, match=r"value=inf at step 1.0 is invalid"):
        Scale(Linear(10, start=3.0, end=4.0), 1e308)(np.array([1.0, 2.0]))
    s = CosineRestarts(period=1, max_cycles=10**12)
    assert len(s.milestones()) == 101  # 100 restarts and the end
    assert s.milestones()["end"] == 1e12


# -- every field of every kind, through every form (issue: huge ints escaped as OverflowError)

HUGE: list[Any] = [10**400, -(10**400), 2**63 + 1, 1e308, -1e308, math.nan, math.inf, -math.inf,
                   True, "x", "1e400", None, 5e-324]
#: the same values as spec-string text (a number token has at most 40 characters)
HUGE_TEXT = ["1" + "0" * 39, "-" + "9" * 39, "1e308", "1e309", "nan", "true", "'x'", "none",
             "5e-324", "1e308x", "100%", "1e39 epochs"]


def _bases() -> list[Schedule]:
    """One valid instance of every registered kind (the docs' example of each)."""
    from pathlib import Path

    page = (Path(__file__).resolve().parents[2] / "docs" / "spec.md").read_text()
    rows = [line.split("|") for line in page.splitlines() if line.startswith("| `")]
    out = {}
    for row in rows:
        name, example = row[1].strip().split()[0].strip("`"), row[3].strip().strip("`")
        if name in KINDS:
            out[name] = parse_string(example, steps_per_epoch=100)
    assert sorted(out) == sorted(KINDS)  # the page names every kind
    return [out[k] for k in sorted(out)]


def _sound_or(error: type[Exception], make: Callable[[], Schedule]) -> None:
    try:
        s = make()
    except error:
        return
    try:
        v = s(np.array([0.0, 1.0, 100.0, 1e6, 1e15]), base=0.1)
    except ConfigError as exc:  # parameters whose values overflow: a clear error
        message = str(exc)
        assert "overflow the float range" in message
        return
    assert np.all(np.isfinite(v)), (s, v)
    assert np.all(v >= 0), (s, v)
    _ = s.horizon, s.milestones()
    with pytest.raises(ConfigError, match="step=1000"):
        s(10**400)


@pytest.mark.parametrize("base", _bases(), ids=lambda s: type(s).kind)
def test_every_field_under_huge_and_odd_values_in_every_form(base: Schedule) -> None:
    import json

    import yaml

    from lrkit import SpecError
    from lrkit.spec import _registry as reg
    from lrkit.spec import load_json, load_yaml

    ki = reg.info_for(type(base))
    fields = [f.name for f in ki.fields if f.name not in ki.schedule_fields]
    with time_limit(20.0):
        for name in fields:
            for v in HUGE:
                d = {**to_dict(base), name: v}
                _sound_or(ConfigError, lambda n=name, v=v: dataclasses.replace(base, **{n: v}))
                _sound_or(SpecError, lambda d=d: from_dict(d))
                _sound_or(SpecError, lambda d=d: load_json(json.dumps(d)))
                if isinstance(v, int):  # YAML is the slow loader: its own number paths only
                    _sound_or(SpecError, lambda d=d: load_yaml(yaml.safe_dump(d)))
            for text in HUGE_TEXT:
                spec = f"{ki.kind}({name}={text})"
                for total in (None, 100):
                    _sound_or(SpecError, lambda t=spec, n=total: parse_string(
                        t, n, steps_per_epoch=7))


def _issue_repros() -> list[tuple[str, Callable[[], Any], type[Exception], str]]:
    import json

    import yaml

    from lrkit import SpecError
    from lrkit.compat.segmenter import Segmenter, SegmenterPoly, segmenter_schedule
    from lrkit.schedules import Cosine
    from lrkit.spec import load_json, load_yaml

    big = 10**400
    out: list[tuple[str, Callable[[], Any], type[Exception], str]] = [
        ("Cosine(10)(10**400)", lambda: Cosine(10)(big), ConfigError, r"step=1000"),
        ("Cosine(10)([10**400])", lambda: Cosine(10)([big]), ConfigError, r"step=\[1000"),
        ("Cosine(10)(['x'])", lambda: Cosine(10)(["x"]), ConfigError, r"step=\['x'\]"),
        ("segmenter_schedule", lambda: segmenter_schedule(big, 0, 10, 0.9), ConfigError,
         r"step_size=1000"),
        ("Segmenter", lambda: Segmenter(big), ConfigError, r"total_steps=1000"),
        ("SegmenterPoly", lambda: SegmenterPoly(10, warmup_steps=big), ConfigError,
         r"warmup_steps=1000"),
    ]
    dicts = [
        {"kind": "plateau", "schedule": {"kind": "constant"}, "patience": big},
        {"kind": "plateau", "schedule": {"kind": "constant"}, "cooldown": big},
        {"kind": "restarts", "period": 10, "max_cycles": big},
        {"kind": "repeat", "schedule": {"kind": "linear", "total_steps": 5}, "period": 5,
         "times": big},
        {"kind": "step", "step_size": big},
        {"kind": "staircase", "schedule": {"kind": "linear", "total_steps": 5}, "step_size": big},
        {"kind": "segmenter", "total_steps": big},
        {"kind": "segmenter", "total_steps": 10, "warmup_steps": big},
        {"kind": "segmenter_poly", "total_steps": big},
        {"kind": "warmup", "steps": big, "schedule": {"kind": "poly"}},
    ]
    for d in dicts:
        field = next(k for k, v in d.items() if v is big)
        loads: list[tuple[str, Callable[[Any], Any]]] = [
            ("dict", lambda d: from_dict(d, 100)),
            ("JSON", lambda d: load_json(json.dumps(d), 100)),
            ("YAML", lambda d: load_yaml(yaml.safe_dump(d), 100)),
        ]
        for form, load in loads:
            out.append((f"{form} {d['kind']}.{field}", lambda d=d, load=load: load(d),
                        SpecError, rf"schedule\.{field}: {field}=1000"))
    return out


@pytest.mark.parametrize(("what", "call", "error", "match"), _issue_repros(),
                         ids=lambda x: x if isinstance(x, str) else "")
def test_huge_integers_are_documented_errors(what: str, call: Callable[[], Any],
                                             error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize("arg", ["step_size", "iter_warmup", "iter_max", "power", "min_lr"])
def test_segmenter_arguments_under_huge_and_odd_values(arg: str) -> None:
    """Segmenter's schedule and drop-in: a ConfigError naming the argument, or sound rates."""
    from lrkit.compat.segmenter import segmenter_schedule

    good = {"step_size": 1, "iter_warmup": 2, "iter_max": 10, "power": 0.9, "min_lr": 1e-5}
    for v in HUGE:
        try:
            s = segmenter_schedule(**{**good, arg: v})
        except ConfigError as exc:  # the one allowed error: it names the argument
            message = str(exc)
            assert message.startswith(f"{arg}="), message
            continue
        values = s(np.arange(30.0), base=0.1)
        assert np.all(np.isfinite(values)), (arg, v)
        assert np.all(values >= 0), (arg, v)
