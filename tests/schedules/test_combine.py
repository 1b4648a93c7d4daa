"""Combinators: Join / join, Scale, Product, Lerp, Staircase, Clamp, Repeat, Hold, Shift."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lrkit.errors import ConfigError
from lrkit.schedules import (
    Clamp,
    Constant,
    Cosine,
    Hold,
    InverseSqrt,
    Join,
    Lerp,
    Linear,
    Product,
    Rel,
    Repeat,
    Scale,
    Shift,
    Staircase,
    Warmup,
    join,
)
from lrkit.spec import from_dict, parse_string, to_dict, to_string


def test_join_local_and_global() -> None:
    a, b = Constant(1.0), Linear(10, start=1.0, end=0.0)
    s = Join((a, b), (5,))
    assert [s(t) for t in (0, 4.9, 5, 10, 15, 99)] == [1.0, 1.0, 1.0, 0.5, 0.0, 0.0]
    g = Join((a, b), (5,), local=False)
    assert g(5) == 0.5
    assert g(10) == 0.0
    assert s.horizon == 15
    assert g.horizon == 10
    assert s.milestones() == {"join_1": 5.0}


def test_join_repeated_boundary_last_piece_wins() -> None:
    s = Join((Constant(1.0), Constant(2.0), Constant(3.0)), (4, 4))
    assert s(3.99) == 1.0
    assert s(4) == 3.0
    assert Join((Constant(1.0), Constant(2.0)), (0,))(0) == 2.0


def test_join_validation() -> None:
    with pytest.raises(ConfigError, match="boundaries="):
        Join((Constant(1.0), Constant(2.0)), (1, 2))
    with pytest.raises(ConfigError, match="boundaries="):
        Join((Constant(1.0), Constant(2.0), Constant(3.0)), (3, 2))
    with pytest.raises(ConfigError, match=r"boundaries\[0\]="):
        Join((Constant(1.0), Constant(2.0)), (-1,))
    with pytest.raises(ConfigError, match="schedules="):
        Join((), ())
    with pytest.raises(ConfigError, match=r"schedules\[1\]="):
        Join((Constant(1.0), 2.0), (1,))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="local="):
        Join((Constant(1.0),), (), local=1)  # type: ignore[arg-type]


def test_join_helper() -> None:
    s = join((Constant(1.0), 3), (Constant(2.0), 2), (Constant(3.0), math.inf))
    assert s.boundaries == (3.0, 5.0)
    assert s(4) == 2.0
    assert s(5) == 3.0
    with pytest.raises(ConfigError, match="length="):
        join((Constant(1.0), -1), (Constant(2.0), 1))


def test_scale_product_clamp_hold() -> None:
    lin = Linear(10, start=1.0, end=0.0)
    assert Scale(lin, 2.0)(5) == 1.0
    assert Scale(lin, 2.0).horizon == 10
    assert Product((lin, lin))(5) == 0.25
    assert Product((lin, Cosine(20))).horizon == 20
    assert Product((lin, Repeat(lin, 4))).horizon is None
    c = Clamp(lin, low=0.2, high=0.8)
    assert (c(0), c(5), c(10)) == (0.8, 0.5, 0.2)
    with pytest.raises(ConfigError, match="high="):
        Clamp(lin, low=0.5, high=0.1)
    h = Hold(lin, after=4)
    assert h(100) == 0.6
    assert h.horizon == 4


def test_staircase_and_repeat() -> None:
    lin = Linear(10, start=1.0, end=0.0)
    s = Staircase(lin, 4)
    assert (s(3.9), s(4), s(12)) == (1.0, 0.6, 0.0)
    assert s(9) == pytest.approx(0.2)
    assert s.horizon == 12.0
    with pytest.raises(ConfigError, match="step_size="):
        Staircase(lin, 1.5)  # type: ignore[arg-type]
    r = Repeat(Linear(4, start=1.0, end=0.0), period=4, times=2)
    assert (r(0), r(3), r(4), r(7), r(8), r(100)) == (1.0, 0.25, 1.0, 0.25, 0.0, 0.0)
    assert r.horizon == 8
    assert Repeat(lin, 2).horizon is None
    with pytest.raises(ConfigError, match="times="):
        Repeat(lin, 2, times=0)


@settings(max_examples=30)
@given(by=st.floats(0.0, 30.0), t=st.floats(0.0, 100.0))
def test_shift_is_the_schedule_evaluated_by_steps_later(by: float, t: float) -> None:
    """Shift(f, d)(t) = f(t + d): the cosine's formula typed here at t + d (held at end
    from its horizon on)."""
    s = Shift(Cosine(40, peak=1.0, end=0.1), by=by)
    u = min(t + by, 40.0)
    assert s(t) == pytest.approx(0.1 + 0.9 * (1 + math.cos(math.pi * u / 40)) / 2,
                                 rel=1e-12, abs=1e-15)
    arr = np.array([t, t + 1.0])
    assert s(arr)[0] == s(t)  # the scalar path is the array path
    tensor = s.eval_tensor(torch.tensor(arr, dtype=torch.float64))
    np.testing.assert_allclose(tensor.numpy(), s(arr), rtol=1e-14)


def test_shift_horizon_milestones_and_validation() -> None:
    w = Warmup(Linear(90, start=1.0, end=0.0), 10)
    s = Shift(w, by=2.5)
    assert s.horizon == 97.5
    assert s.milestones() == {"warmup_end": 7.5}
    assert Shift(w, by=20).milestones() == {}  # the warmup ended before step 0
    assert Shift(w, by=500).horizon == 0.0
    assert Shift(Repeat(Linear(4), 4), by=1).horizon is None
    assert Shift(w, by=0.1 + 0.2)(0) == w(0.1 + 0.2)
    h = Shift(Linear(0.3, start=1.0, end=0.0), by=0.1).horizon
    assert h is not None  # the first step where the value holds (to the ulp)
    assert h + 0.1 >= 0.3
    assert math.nextafter(h, 0.0) + 0.1 < 0.3
    assert Shift(Cosine(10), by=1e308)(1e308) == 0.0  # t + d clipped to the largest float
    for bad_by in (-1.0, math.inf, math.nan, "1"):
        with pytest.raises(ConfigError, match="by="):
            Shift(w, by=bad_by)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="schedule="):
        Shift(0.5, by=1.0)  # type: ignore[arg-type]


def test_shift_spec_forms_round_trip() -> None:
    s = Shift(Cosine(101, end=Rel(0.1)), by=1.0)
    assert to_dict(s) == {"kind": "shift", "by": 1,
                          "schedule": {"kind": "cosine", "total_steps": 101, "end": {"rel": 0.1}}}
    assert from_dict(to_dict(s)) == s
    assert parse_string(to_string(s)) == s
    # a total reaches the schedule with the skipped steps: N + d, so the horizon is N
    assert parse_string("shift(cos(end=0.1x), 1) over 100") == s
    assert parse_string("shift(cos(end=0.1x), 1) over 100").horizon == 100


@settings(max_examples=30)
@given(t=st.floats(0.0, 50.0), floor=st.sampled_from([0.0, 0.05, 0.3]))
def test_lerp_is_torch_lerp_of_the_three_schedules(t: float, floor: float) -> None:
    """a + (b - a) * clip(w, 0, 1), typed here, and torch.lerp on the same values."""
    a, b, w = Constant(floor), InverseSqrt(4.0, peak=1.0), Linear(40, start=1.2, end=-0.0)
    s = Lerp(a, b, w)
    wt = min(max(1.2 - 1.2 * min(t, 40) / 40, 0.0), 1.0)
    bt = 1.0 / math.sqrt(1 + t / 4)
    want = bt if wt >= 1 else floor + (bt - floor) * wt
    assert s(t) == pytest.approx(want, rel=1e-13, abs=1e-16)
    ref = torch.lerp(torch.tensor(floor, dtype=torch.float64),
                     torch.tensor(bt, dtype=torch.float64), torch.tensor(wt, dtype=torch.float64))
    assert s(t) == pytest.approx(float(ref), rel=1e-13, abs=1e-16)
    assert s(t) >= min(floor, bt) - 1e-16


def test_lerp_horizon_validation_and_spec_forms() -> None:
    s = Lerp(Constant(0.1), Cosine(30), Linear(20, start=1.0, end=0.0))
    assert s.horizon == 30
    assert s(20) == 0.1  # weight 0 from its horizon on
    assert s(0) == 1.0  # weight 1: exactly the end schedule
    assert Lerp(Constant(0.1), InverseSqrt(3), Constant(0.5)).horizon is None
    with pytest.raises(ConfigError, match="weight="):
        Lerp(Constant(0.1), Cosine(30), 0.5)  # type: ignore[arg-type]
    assert from_dict(to_dict(s)) == s
    assert parse_string(to_string(s)) == s
    assert parse_string("lerp(const(0.1), cos(30), linear(20, start=1, end=0))") == s
