"""InverseSqrt; with a prefix Warmup it equals HF get_inverse_sqrt_schedule and fairseq."""

from __future__ import annotations

import math

import pytest

from lrkit.schedules import InverseSqrt, Warmup


def test_formula() -> None:
    s = InverseSqrt(timescale=50, peak=2.0)
    for t in [0, 1, 49, 50, 150, 1e6]:
        assert s(t) == pytest.approx(2.0 / math.sqrt(1 + t / 50), rel=1e-15)
    assert s.horizon is None


@pytest.mark.parametrize(("warmup", "timescale"), [(10, None), (100, 500), (0, 1000), (7, 3)])
def test_equals_hf_inverse_sqrt_schedule(warmup: int, timescale: int | None) -> None:
    """HF's lambda (typed here): linear warmup t/max(1, w); then 1/sqrt((t + tau - w)/tau),
    tau defaulting to w (or 10_000 when w is 0)."""
    tau = timescale if timescale is not None else (warmup or 10_000)

    def hf(t: int) -> float:
        if t < warmup:
            return t / max(1, warmup)
        return 1.0 / math.sqrt((t + tau - warmup) / tau)

    s = Warmup(InverseSqrt(tau), steps=warmup)
    for t in range(0, 3000, 7):
        assert s(t) == pytest.approx(hf(t), rel=1e-14, abs=1e-300)


def test_equals_fairseq_inverse_sqrt() -> None:
    """fairseq (typed here): warmup from init to lr by lr_step per update; then
    decay_factor / sqrt(t) with decay_factor = lr * sqrt(w)."""
    lr, init, w = 5e-4, 1e-7, 4000
    lr_step = (lr - init) / w
    decay_factor = lr * math.sqrt(w)

    def fairseq(t: int) -> float:
        return init + t * lr_step if t < w else decay_factor / math.sqrt(t)

    s = Warmup(InverseSqrt(timescale=w, peak=lr), steps=w, start=init)
    for t in range(0, 50_000, 37):
        assert s(t) == pytest.approx(fairseq(t), rel=1e-13)
