"""Closed-form schedules: primitives, warmup and combinators (no torch import here)."""

from lrkit.schedules.base import Rel, Schedule, Value
from lrkit.schedules.combine import (
    Clamp,
    Hold,
    Join,
    Lerp,
    Product,
    Repeat,
    Scale,
    Shift,
    Staircase,
    join,
)
from lrkit.schedules.cosine import Cosine, CosineRestarts
from lrkit.schedules.cyclic import Cyclic, OneCycle, OneCycleMomentum
from lrkit.schedules.inverse_sqrt import InverseSqrt
from lrkit.schedules.piecewise import Piecewise
from lrkit.schedules.plateau import Plateau
from lrkit.schedules.polynomial import Constant, Linear, Poly
from lrkit.schedules.step import Exponential, MultiStep, StepDecay
from lrkit.schedules.tanh import Tanh
from lrkit.schedules.warmup import Warmup
from lrkit.schedules.warp import TimeWarp
from lrkit.schedules.wsd import WSD, ExpDecay, SqrtDecay

__all__ = [
    "WSD",
    "Clamp",
    "Constant",
    "Cosine",
    "CosineRestarts",
    "Cyclic",
    "ExpDecay",
    "Exponential",
    "Hold",
    "InverseSqrt",
    "Join",
    "Lerp",
    "Linear",
    "MultiStep",
    "OneCycle",
    "OneCycleMomentum",
    "Piecewise",
    "Plateau",
    "Poly",
    "Product",
    "Rel",
    "Repeat",
    "Scale",
    "Schedule",
    "Shift",
    "SqrtDecay",
    "Staircase",
    "StepDecay",
    "Tanh",
    "TimeWarp",
    "Value",
    "Warmup",
    "join",
]
