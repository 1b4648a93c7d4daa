"""Combinators: Join / join, Scale, Product, Staircase, Clamp, Repeat, Hold."""

from __future__ import annotations

import math

import pytest

from lrkit.errors import ConfigError
from lrkit.schedules import (
    Clamp,
    Constant,
    Cosine,
    Hold,
    Join,
    Linear,
    Product,
    Repeat,
    Scale,
    Staircase,
    join,
)


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
