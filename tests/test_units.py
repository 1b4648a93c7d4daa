"""Epochs <-> optimizer updates, and schedules configured in epochs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lrkit.errors import ConfigError
from lrkit.schedules import Cosine, Linear, MultiStep, Rel
from lrkit.units import InEpochs, Units, in_epochs


@pytest.mark.parametrize(
    ("batches", "accum", "partial", "updates"),
    [
        (100, 1, "update", 100),
        (100, 8, "update", 13),
        (100, 8, "drop", 12),
        (7, 7, "drop", 1),
        (5, 8, "update", 1),
    ],
)
def test_updates_per_epoch(batches: int, accum: int, partial: str, updates: int) -> None:
    assert Units(batches, accum, partial).updates_per_epoch == updates


def test_steps_rounding_and_epochs() -> None:
    u = Units(batches_per_epoch=30)
    assert u.steps(0.1) == 3  # 0.1 * 30 = 3.0000000000000004: nearest, not ceil
    assert u.steps(0) == 0
    assert u.steps(2) == 60
    v = Units(7)
    assert v.steps(0.5) == 4  # 3.5 rounds half up
    assert v.steps(0.4) == 3  # 2.8
    assert v.epochs(14) == 2.0
    assert v.epochs(0) == 0.0


@given(st.integers(1, 10_000), st.integers(1, 64), st.floats(0, 1000))
def test_steps_is_nearest_update(batches: int, accum: int, epochs: float) -> None:
    u = Units(batches, accum)
    exact = epochs * math.ceil(batches / accum)
    assert abs(u.steps(epochs) - exact) <= 0.5 + 1e-9


def test_units_validation() -> None:
    with pytest.raises(ConfigError, match="batches_per_epoch="):
        Units(0)
    with pytest.raises(ConfigError, match="batches_per_epoch="):
        Units(10.5)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="accumulation="):
        Units(10, 0)
    with pytest.raises(ConfigError, match="accumulation="):
        Units(5, 8, "drop")  # no update at all
    with pytest.raises(ConfigError, match="partial="):
        Units(10, 2, "keep")
    with pytest.raises(ConfigError, match="epochs="):
        Units(10).steps(-1)
    with pytest.raises(ConfigError, match="steps="):
        Units(10).epochs(float("nan"))


def test_in_epochs_smooth_step_zero_uses_epoch_zero() -> None:
    inner = Cosine(total_steps=90, peak=Rel(1.0), end=0.0)  # 90 epochs
    s = in_epochs(inner, Units(batches_per_epoch=400, accumulation=4))  # 100 updates / epoch
    assert isinstance(s, InEpochs)
    assert s.updates_per_epoch == 100
    u = np.arange(0.0, 10_000.0, 13.0)
    np.testing.assert_array_equal(s(u, base=0.3), inner(u / 100, base=0.3))
    assert s(0, base=0.3) == 0.3  # update 0 uses f(0)
    assert s.horizon == 9000
    assert s.is_relative


def test_in_epochs_stepwise_matches_a_per_epoch_torch_loop() -> None:
    inner = MultiStep((30, 60), 0.1, peak=1.0)
    s = in_epochs(inner, 50, stepwise=True)
    u = np.arange(5000.0)
    np.testing.assert_array_equal(s(u), inner(np.floor(u / 50)))
    assert s(1499) == 1.0
    assert s(1500) == pytest.approx(0.1)
    lin = InEpochs(Linear(2.5, start=1.0, end=0.0), 10, stepwise=True)
    assert lin.horizon == 30.0  # epoch 3 is the first whole epoch past 2.5
    assert lin(29) == pytest.approx(0.2)
    assert lin(30) == 0.0 == lin(10_000)
    assert InEpochs(Linear(4), 10).milestones() == {}


def test_in_epochs_validation() -> None:
    with pytest.raises(ConfigError, match="schedule="):
        InEpochs(3.0, 10)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="updates_per_epoch="):
        InEpochs(Linear(4), 0)
    with pytest.raises(ConfigError, match="stepwise="):
        InEpochs(Linear(4), 1, stepwise="yes")  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [10**400, -(10**400), 2**63 + 1, 1e308, math.nan, math.inf,
                                   -math.inf, True, "8", None, 0.5, 0])
@pytest.mark.parametrize("field", ["batches_per_epoch", "accumulation", "epochs", "steps",
                                   "updates_per_epoch"])
def test_huge_and_odd_values_are_config_errors(field: str, value: object) -> None:
    """Never an OverflowError/TypeError: a ConfigError naming the field, or a sound result."""
    calls = {
        "batches_per_epoch": lambda: Units(value),  # type: ignore[arg-type]
        "accumulation": lambda: Units(10, accumulation=value),  # type: ignore[arg-type]
        "epochs": lambda: Units(10).steps(value),  # type: ignore[arg-type]
        "steps": lambda: Units(10).epochs(value),  # type: ignore[arg-type]
        "updates_per_epoch": lambda: InEpochs(Linear(10), value),  # type: ignore[arg-type]
    }
    try:
        out = calls[field]()
    except ConfigError as exc:  # the one allowed error: it names the field
        message = str(exc)
        assert message.startswith(f"{field}=")
        return
    if isinstance(out, InEpochs):
        assert math.isfinite(out(3))
    else:
        assert not isinstance(out, float) or math.isfinite(out)
