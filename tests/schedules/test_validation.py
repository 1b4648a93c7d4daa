"""Every constructor rejects bad input with a message naming the parameter."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from lrkit.errors import ConfigError
from lrkit.schedules import (
    WSD,
    Constant,
    Cosine,
    CosineRestarts,
    Cyclic,
    Exponential,
    InverseSqrt,
    Linear,
    MultiStep,
    OneCycle,
    OneCycleMomentum,
    Piecewise,
    Poly,
    SqrtDecay,
    StepDecay,
)

NAN, INF = float("nan"), float("inf")

CASES: list[tuple[Callable[..., Any], dict[str, Any], str]] = [
    (Constant, {"value": -1.0}, "value"),
    (Linear, {"total_steps": 0}, "total_steps"),
    (Linear, {"start": "x"}, "start"),
    (Poly, {"power": 0}, "power"),
    (Poly, {"power": NAN}, "power"),
    (Poly, {"end": -0.1}, "end"),
    (Cosine, {"total_steps": -5}, "total_steps"),
    (Cosine, {"total_steps": INF}, "total_steps"),
    (Cosine, {"peak": True}, "peak"),
    (Cosine, {"end": None}, "end"),
    (CosineRestarts, {"period": 0}, "period"),
    (CosineRestarts, {"period_mult": 0.5}, "period_mult"),
    (CosineRestarts, {"peak_decay": 1.5}, "peak_decay"),
    (CosineRestarts, {"max_cycles": 0}, "max_cycles"),
    (CosineRestarts, {"max_cycles": 1.5}, "max_cycles"),
    (Exponential, {"gamma": -0.1}, "gamma"),
    (Exponential, {"period": 0}, "period"),
    (Exponential, {"staircase": 1}, "staircase"),
    (Exponential, {"total_steps": 0}, "total_steps"),
    (Exponential, {"end": -1.0}, "end"),
    (StepDecay, {"step_size": 0}, "step_size"),
    (StepDecay, {"gamma": 1.5}, "gamma"),
    (MultiStep, {"boundaries": (3, 1)}, "boundaries"),
    (MultiStep, {"boundaries": (-1,)}, r"boundaries\[0\]"),
    (MultiStep, {"boundaries": 5}, "boundaries"),
    (MultiStep, {"gamma": NAN}, "gamma"),
    (Piecewise, {"steps": ()}, "steps"),
    (Piecewise, {"steps": (2, 1), "values": (1.0, 1.0)}, "steps"),
    (Piecewise, {"steps": (1, 2), "values": (1.0,)}, "values"),
    (Piecewise, {"steps": (1,), "values": (-1.0,)}, r"values\[0\]"),
    (Piecewise, {"interpolation": "cubic"}, "interpolation"),
    (InverseSqrt, {"timescale": 0}, "timescale"),
    (InverseSqrt, {"peak": INF}, "peak"),
    (lambda **k: Cyclic(0.1, 1.0, **k), {"step_size_up": 0}, "step_size_up"),
    (lambda **k: Cyclic(0.1, 1.0, **k), {"step_size_down": -1}, "step_size_down"),
    (lambda **k: Cyclic(0.1, 1.0, **k), {"mode": "sine"}, "mode"),
    (lambda **k: Cyclic(0.1, 1.0, **k), {"gamma": 0.0}, "gamma"),
    (lambda **k: Cyclic(0.1, 1.0, **k), {"scale_mode": "epoch"}, "scale_mode"),
    (lambda **k: Cyclic(**k), {"low": -1.0, "high": 1.0}, "low"),
    (lambda **k: Cyclic(**k), {"low": 1.0, "high": NAN}, "high"),
    (OneCycle, {"total_steps": 0}, "total_steps"),
    (OneCycle, {"total_steps": 100, "pct_start": 1.5}, "pct_start"),
    (OneCycle, {"total_steps": 100, "div_factor": 0}, "div_factor"),
    (OneCycle, {"total_steps": 100, "final_div_factor": -1}, "final_div_factor"),
    (OneCycle, {"total_steps": 100, "anneal": "cosine"}, "anneal"),
    (OneCycle, {"total_steps": 100, "three_phase": "yes"}, "three_phase"),
    (OneCycleMomentum, {"total_steps": 100, "low": -1}, "low"),
    (OneCycleMomentum, {"total_steps": 100, "high": INF}, "high"),
    (OneCycleMomentum, {"total_steps": 2}, "pct_start"),
    (WSD, {"total_steps": 0}, "total_steps"),
    (WSD, {"total_steps": 100, "warmup_steps": -1}, "warmup_steps"),
    (WSD, {"total_steps": 100, "decay_steps": 0}, "decay_steps"),
    (WSD, {"total_steps": 100, "decay_fraction": 1.5}, "decay_fraction"),
    (WSD, {"total_steps": 100, "warmup_steps": 90}, "decay_fraction"),
    (WSD, {"total_steps": 100, "decay_shape": "exp"}, "decay_shape"),
    (WSD, {"total_steps": 100, "warmup_shape": "exp"}, "warmup_shape"),
    (WSD, {"total_steps": 100, "warmup_steps": 5, "warmup_shape": "exponential"}, "start"),
    (SqrtDecay, {"total_steps": 0}, "total_steps"),
]


@pytest.mark.parametrize(("make", "kwargs", "name"), CASES)
def test_rejects_with_parameter_name(
    make: Callable[..., Any], kwargs: dict[str, Any], name: str
) -> None:
    with pytest.raises(ConfigError, match=f"^{name}=.* is invalid: expected "):
        make(**kwargs)


def test_config_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="power="):
        Poly(power=-1)
