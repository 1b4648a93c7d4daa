"""Warmup-stable-decay, the 1-sqrt and the exponential cooldowns."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lrkit.errors import ConfigError
from lrkit.schedules import WSD, ExpDecay, Rel, SqrtDecay
from lrkit.spec import from_dict, parse_string, to_dict, to_string


def wsd_ref(
    t: float, total: float, w: float, d: float, peak: float, end: float, shape: str, start: float
) -> float:
    if t < w:
        return start + (peak - start) * t / w
    if t < total - d:
        return peak
    u = min((t - (total - d)) / d, 1.0)
    g = {"linear": 1 - u, "cosine": (1 + math.cos(math.pi * u)) / 2, "1-sqrt": 1 - math.sqrt(u)}
    return end + (peak - end) * g[shape]


@pytest.mark.parametrize("shape", ["linear", "cosine", "1-sqrt"])
@pytest.mark.parametrize(("total", "w", "d"), [(1000, 100, 200), (997, 0, 300), (50, 10, 40)])
def test_wsd_formula(shape: str, total: float, w: float, d: float) -> None:
    s = WSD(total, w, decay_steps=d, peak=Rel(1.0), end=0.01, decay_shape=shape, start=0.001)
    for t in np.arange(0.0, total * 1.2, 0.75):
        ref = wsd_ref(t, total, w, d, 0.3, 0.01, shape, 0.001)
        assert s(t, base=0.3) == pytest.approx(ref, rel=1e-12, abs=1e-16)
    assert s(total, base=0.3) == 0.01
    assert s(total * 10, base=0.3) == 0.01
    assert s.horizon == total
    assert s.milestones() == {"warmup_end": w, "decay_start": total - d}


def test_decay_fraction_default_and_exclusive() -> None:
    assert WSD(1000, 10).decay_start == 800.0
    assert WSD(1000, 10, decay_fraction=0.1).decay_start == 900.0
    with pytest.raises(ConfigError, match="decay_fraction="):
        WSD(1000, 10, decay_steps=100, decay_fraction=0.1)
    with pytest.raises(ConfigError, match="decay_steps="):
        WSD(100, 50, decay_steps=60)


def test_sqrt_decay() -> None:
    s = SqrtDecay(100, peak=1.0, end=0.2)
    for t in [0, 1, 25, 64, 99, 100, 1e6]:
        assert s(t) == pytest.approx(0.2 + 0.8 * (1 - math.sqrt(min(t, 100) / 100)), rel=1e-14)
    assert s(0) == 1.0
    assert s(100) == 0.2


@pytest.mark.parametrize("ratio", [0.1, 0.5, 1e-3])
def test_exp_decay_formula(ratio: float) -> None:
    """end + (peak - end) * (r**(t/T) - r) / (1 - r), typed here: peak at 0, end from T."""
    s = ExpDecay(80, ratio, peak=Rel(1.0), end=0.01)
    for t in np.arange(0.0, 120.0, 3.5):
        u = min(t, 80) / 80
        want = 0.01 + (0.5 - 0.01) * (ratio**u - ratio) / (1 - ratio)
        assert s(t, base=0.5) == pytest.approx(want, rel=1e-12)
    assert s(0, base=0.5) == 0.5
    assert s(80, base=0.5) == s(1e9, base=0.5) == 0.01
    assert s.horizon == 80
    assert from_dict(to_dict(s)) == s
    assert parse_string(to_string(s)) == s
    assert parse_string(f"exp_decay(ratio={ratio}, end=0.01) over 80") == s
    for bad in ({"ratio": 0.0}, {"ratio": 1.0}, {"ratio": math.nan}, {"total_steps": 0}):
        with pytest.raises(ConfigError, match=f"{next(iter(bad))}="):
            ExpDecay(**{"total_steps": 10, **bad})
