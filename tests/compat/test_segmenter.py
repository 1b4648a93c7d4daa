"""The Segmenter drop-in against the original class, typed here from the project's seed note.

``OriginalPolynomialLR`` below is Segmenter's / SETR's ``PolynomialLR`` as written in
``segm/optim/scheduler.py`` (reproduced from /work/shared/seeds/000_*.txt, our own document):
it is the test oracle, so it keeps every quirk, and is not imported from lrkit. torch 2.13
still ships ``_LRScheduler`` (a subclass of ``LRScheduler`` kept for backward
compatibility), so the oracle subclasses it exactly as the original does.
"""

from __future__ import annotations

import io
import math
import struct
import warnings
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from torch.optim.lr_scheduler import _LRScheduler

from lrkit.compat.segmenter import PolynomialLR, SegmenterPoly, segmenter_schedule
from lrkit.errors import ConfigError, StateError
from lrkit.schedules import Poly, Warmup


# --------------------------------------------------------------------------------------
# The oracle: Segmenter's class, verbatim in behaviour (comments dropped).
class OriginalPolynomialLR(_LRScheduler):
    def __init__(
        self,
        optimizer: Any,
        step_size: Any,
        iter_warmup: Any,
        iter_max: Any,
        power: Any,
        min_lr: Any = 0,
        last_epoch: int = -1,
    ) -> None:
        self.step_size = step_size
        self.iter_warmup = int(iter_warmup)
        self.iter_max = int(iter_max)
        self.power = power
        self.min_lr = min_lr
        super().__init__(optimizer, last_epoch)

    def polynomial_decay(self, lr: Any) -> Any:
        iter_cur = float(self.last_epoch)
        if iter_cur < self.iter_warmup:
            coef = iter_cur / self.iter_warmup
            coef *= (1 - self.iter_warmup / self.iter_max) ** self.power
        else:
            coef = (1 - iter_cur / self.iter_max) ** self.power
        return (lr - self.min_lr) * coef + self.min_lr

    def get_lr(self) -> Any:
        if (
            (self.last_epoch == 0)
            or (self.last_epoch % self.step_size != 0)
            or (self.last_epoch > self.iter_max)
        ):
            return [group["lr"] for group in self.optimizer.param_groups]
        return [self.polynomial_decay(lr) for lr in self.base_lrs]

    def step_update(self, num_updates: int) -> None:
        self.step()


# --------------------------------------------------------------------------------------
# Helpers
def bits(xs: list[Any]) -> list[str]:
    """Bit patterns, so that equality is bit for bit (0.0 vs -0.0, no tolerance)."""
    return [struct.pack("<d", float(x)).hex() for x in xs]


def make_optimizer(lrs: list[float]) -> torch.optim.Optimizer:
    params = [torch.zeros(2, requires_grad=True) for _ in lrs]
    groups = [{"params": [p], "lr": lr} for p, lr in zip(params, lrs, strict=True)]
    return torch.optim.SGD(groups, lr=lrs[0], momentum=0.9)


def rates(opt: torch.optim.Optimizer) -> list[float]:
    return [g["lr"] for g in opt.param_groups]


def run(
    cls: Any, lrs: list[float], cfg: dict[str, Any], steps: int
) -> tuple[list[list[float]], list[list[float]]]:
    """Segmenter's loop: the rate each optimizer.step() uses, then step_update after it.

    Returns (rates used by update 0..steps-1 and the one after, get_last_lr after each).
    """
    opt = make_optimizer(lrs)
    sched = cls(opt, **cfg)
    used, last = [rates(opt)], [list(sched.get_last_lr())]
    for k in range(1, steps + 1):
        opt.step()
        sched.step_update(num_updates=k)
        used.append(rates(opt))
        last.append(list(sched.get_last_lr()))
    return used, last


def columns(seq: list[list[float]]) -> list[list[str]]:
    return [bits(list(col)) for col in zip(*seq, strict=True)]


# --------------------------------------------------------------------------------------
# Configurations
@st.composite
def configs(draw: st.DrawFn) -> dict[str, Any]:
    m_int = draw(st.integers(1, 300))
    iter_max: float = m_int
    if draw(st.booleans()):  # a float that int() truncates to m_int
        iter_max = m_int + draw(st.floats(0.0, 0.999))
    w_int = draw(st.integers(0, m_int))
    iter_warmup: float = w_int
    if draw(st.booleans()):
        iter_warmup = w_int + draw(st.floats(0.0, 0.999))
    assume(int(iter_max) == m_int and int(iter_warmup) == w_int)
    power = draw(
        st.one_of(
            st.sampled_from([0.9, 1.0, 1, 2, 0.5, 3.0]),
            st.floats(0.0, 3.0, exclude_min=True, allow_subnormal=False),
        )
    )
    min_lr = draw(st.one_of(st.just(0), st.just(0.0), st.floats(1e-7, 1e-3)))
    return {
        "step_size": draw(st.integers(1, 7)),
        "iter_warmup": iter_warmup,
        "iter_max": iter_max,
        "power": power,
        "min_lr": min_lr,
    }


base_lrs = st.lists(
    st.one_of(st.sampled_from([0.01, 0.1, 6e-5, 1e-3]), st.floats(1e-5, 1.0)),
    min_size=1,
    max_size=3,
)


# --------------------------------------------------------------------------------------
# Bit-exact sequences
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cfg=configs(), lrs=base_lrs, extra=st.integers(0, 25))
def test_same_sequence_as_original_bit_for_bit(
    cfg: dict[str, Any], lrs: list[float], extra: int
) -> None:
    steps = int(cfg["iter_max"]) + extra
    ref_used, ref_last = run(OriginalPolynomialLR, lrs, cfg, steps)
    new_used, new_last = run(PolynomialLR, lrs, cfg, steps)
    assert columns(new_used) == columns(ref_used)
    assert columns(new_last) == columns(ref_last)


CASES = [
    # (step_size, iter_warmup, iter_max, power, min_lr)
    pytest.param(1, 0, 10, 0.9, 0, id="no-warmup"),
    pytest.param(1, 10, 10, 0.9, 1e-5, id="warmup==iter_max"),
    pytest.param(3, 4, 10, 0.9, 1e-4, id="iter_max-not-multiple-of-step_size"),
    pytest.param(4, 0, 12, 1.0, 0.0, id="iter_max-multiple-of-step_size"),
    pytest.param(11, 2, 10, 0.9, 1e-5, id="step_size>iter_max"),
    pytest.param(10, 3, 10, 2.0, 1e-5, id="step_size==iter_max"),
    pytest.param(1, 0, 1, 0.9, 0, id="iter_max=1"),
    pytest.param(2, 3.7, 10.9, 0.9, 1e-5, id="float-iters-truncated"),
    pytest.param(2.0, 3, 10, 1, 0, id="integral-float-step_size-int-power"),
    pytest.param(1, 1, 1.5, 0.9, 0.2, id="warmup==iter_max==1"),
    pytest.param(1, 5, 20, 0.9, 0.5, id="min_lr-above-base"),
]


@pytest.mark.parametrize(("step_size", "iter_warmup", "iter_max", "power", "min_lr"), CASES)
def test_edge_cases_bit_for_bit(
    step_size: Any, iter_warmup: Any, iter_max: Any, power: Any, min_lr: Any
) -> None:
    cfg = {
        "step_size": step_size,
        "iter_warmup": iter_warmup,
        "iter_max": iter_max,
        "power": power,
        "min_lr": min_lr,
    }
    lrs = [0.01, 0.1, 6e-5]
    steps = int(iter_max) + 2 * int(step_size) + 5
    ref_used, _ = run(OriginalPolynomialLR, lrs, cfg, steps)
    new_used, _ = run(PolynomialLR, lrs, cfg, steps)
    assert columns(new_used) == columns(ref_used)


def test_documented_quirks() -> None:
    """The quirks the issue lists, checked against numbers worked out by hand."""
    base, m = 0.01, 1e-4
    used, _ = run(
        PolynomialLR,
        [base],
        {"step_size": 2, "iter_warmup": 4, "iter_max": 9, "power": 1.0, "min_lr": m},
        14,
    )
    lr = [row[0] for row in used]
    c = 1 - 4 / 9  # the warmup target is the polynomial's value at iter_warmup
    assert lr[0] == base  # the first update uses the base rate
    assert lr[1] == base  # held until the first multiple of step_size
    assert lr[2] == (base - m) * (2 / 4 * c) + m  # then small: the warmup starts at min_lr
    assert lr[3] == lr[2]  # held between multiples
    assert lr[4] == (base - m) * c + m < base  # warmup ends below the base rate
    assert lr[8] == (base - m) * (1 - 8 / 9) + m
    assert lr[9:] == [lr[8]] * 6  # 8 is the last multiple <= iter_max: held from there


@pytest.mark.slow
def test_setr_ade20k_config_full_run() -> None:
    """SETR/Segmenter ADE20K-like settings, scaled 1/10: every step of a full run."""
    cfg = {"step_size": 1, "iter_warmup": 150, "iter_max": 16000, "power": 0.9, "min_lr": 1e-5}
    lrs = [0.001, 0.01]
    ref_used, _ = run(OriginalPolynomialLR, lrs, cfg, 16010)
    new_used, _ = run(PolynomialLR, lrs, cfg, 16010)
    assert columns(new_used) == columns(ref_used)


# --------------------------------------------------------------------------------------
# Resume
def save_load(state: dict[str, Any]) -> dict[str, Any]:
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    out: dict[str, Any] = torch.load(buf, weights_only=True)
    return out


@settings(max_examples=60, deadline=None)
@given(cfg=configs(), lrs=base_lrs, data=st.data())
def test_resume_from_scheduler_state_only(
    cfg: dict[str, Any], lrs: list[float], data: st.DataObject
) -> None:
    steps = int(cfg["iter_max"]) + 8
    k = data.draw(st.integers(0, steps), label="k")
    full, _ = run(PolynomialLR, lrs, cfg, steps)

    opt = make_optimizer(lrs)
    sched = PolynomialLR(opt, **cfg)
    for i in range(1, k + 1):
        opt.step()
        sched.step_update(num_updates=i)
    state = save_load(sched.state_dict())  # plain values: loads with weights_only=True

    opt2 = make_optimizer(lrs)  # fresh: its groups hold the base rates again
    sched2 = PolynomialLR(opt2, **cfg)
    sched2.load_state_dict(state)
    resumed = [rates(opt2)]
    assert bits(sched2.get_last_lr()) == bits(resumed[0])
    for i in range(k + 1, steps + 1):
        opt2.step()
        sched2.step_update(num_updates=i)
        resumed.append(rates(opt2))
    assert columns(resumed) == columns(full[k:])


def test_loads_a_state_saved_by_the_original() -> None:
    """Migration: a Segmenter checkpoint's scheduler state continues exactly."""
    cfg = {"step_size": 2, "iter_warmup": 5, "iter_max": 40, "power": 0.9, "min_lr": 1e-5}
    lrs, k, steps = [0.01, 0.001], 17, 50
    full, _ = run(OriginalPolynomialLR, lrs, cfg, steps)
    opt = make_optimizer(lrs)
    orig = OriginalPolynomialLR(opt, **cfg)
    for i in range(1, k + 1):
        opt.step()
        orig.step_update(num_updates=i)
    opt2 = make_optimizer(lrs)
    new = PolynomialLR(opt2, **cfg)
    new.load_state_dict(orig.state_dict())
    got = [rates(opt2)]
    for i in range(k + 1, steps + 1):
        opt2.step()
        new.step_update(num_updates=i)
        got.append(rates(opt2))
    assert columns(got) == columns(full[k:])


def test_load_state_with_other_config_raises() -> None:
    opt = make_optimizer([0.1])
    state = PolynomialLR(opt, 1, 0, 10, 0.9).state_dict()
    other = PolynomialLR(make_optimizer([0.1]), 1, 0, 12, 0.9)
    with pytest.raises(StateError, match="iter_max=10"):
        other.load_state_dict(state)
    two_groups = PolynomialLR(make_optimizer([0.1, 0.2]), 1, 0, 10, 0.9)
    with pytest.raises(StateError, match="base_lrs"):
        two_groups.load_state_dict(state)


@pytest.mark.parametrize("k0", [0, 3, 4, 9, 10, 11, 15])
def test_last_epoch_resume_like_torch(k0: int) -> None:
    """last_epoch=k0 keeps torch's meaning: needs initial_lr, the constructor steps to k0+1.

    The original reads held values from group["lr"], so it is given the optimizer as a
    checkpoint restores it (lr = the rate of step k0); the drop-in needs only initial_lr.
    """
    cfg = {"step_size": 2, "iter_warmup": 3, "iter_max": 11, "power": 0.9, "min_lr": 1e-5}
    lrs, steps = [0.01, 0.1], 20
    full, _ = run(PolynomialLR, lrs, cfg, steps)
    ref_full, _ = run(OriginalPolynomialLR, lrs, cfg, steps)
    assert columns(full) == columns(ref_full)

    for cls, with_lr in ((OriginalPolynomialLR, True), (PolynomialLR, False)):
        opt = make_optimizer(lrs)
        for g, base, lr_k0 in zip(opt.param_groups, lrs, full[k0], strict=True):
            g["initial_lr"] = base
            if with_lr:
                g["lr"] = lr_k0
        sched = cls(opt, last_epoch=k0, **cfg)
        got = [rates(opt)]
        for i in range(k0 + 2, steps + 1):
            opt.step()
            sched.step_update(num_updates=i)
            got.append(rates(opt))
        assert columns(got) == columns(full[k0 + 1 :]), cls.__name__

    with pytest.raises(KeyError, match="initial_lr"):
        PolynomialLR(make_optimizer(lrs), last_epoch=3, **cfg)


def test_step_with_epoch_is_closed_form() -> None:
    opt = make_optimizer([0.1])
    sched = PolynomialLR(opt, 3, 2, 20, 0.9, 1e-4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch deprecates step(epoch)
        sched.step(14)
    assert opt.param_groups[0]["lr"] == sched.rate(14, 0.1) == sched.rate(12, 0.1)


# --------------------------------------------------------------------------------------
# Invalid configurations
BAD = [
    # (parameter, overrides)
    ("iter_max", {"iter_max": 0}),
    ("iter_max", {"iter_max": 0.9, "iter_warmup": 0}),
    ("iter_max", {"iter_max": -5}),
    ("iter_max", {"iter_max": math.nan}),
    ("iter_max", {"iter_max": math.inf}),
    ("iter_warmup", {"iter_warmup": 11}),
    ("iter_warmup", {"iter_warmup": -1}),
    ("iter_warmup", {"iter_warmup": -0.5}),
    ("iter_warmup", {"iter_warmup": math.nan}),
    ("step_size", {"step_size": 0}),
    ("step_size", {"step_size": -2}),
    ("step_size", {"step_size": 1.5}),
    ("step_size", {"step_size": math.inf}),
    ("step_size", {"step_size": True}),
    ("power", {"power": 0}),
    ("power", {"power": -0.9}),
    ("power", {"power": math.nan}),
    ("power", {"power": math.inf}),
    ("min_lr", {"min_lr": -1e-5}),
    ("min_lr", {"min_lr": math.nan}),
    ("min_lr", {"min_lr": math.inf}),
]


@pytest.mark.parametrize(("name", "overrides"), BAD, ids=[f"{n}-{v}" for n, v in BAD])
def test_bad_config_raises_naming_the_parameter(name: str, overrides: dict[str, Any]) -> None:
    cfg: dict[str, Any] = {
        "step_size": 1,
        "iter_warmup": 2,
        "iter_max": 10,
        "power": 0.9,
        "min_lr": 0.0,
    }
    cfg.update(overrides)
    with pytest.raises(ConfigError, match=rf"^{name}=.* is invalid: expected"):
        PolynomialLR(make_optimizer([0.1]), **cfg)
    with pytest.raises(ValueError, match=rf"^{name}="):
        segmenter_schedule(**cfg)


def test_the_original_mishandles_what_the_drop_in_rejects() -> None:
    """Why those configurations are errors: what the original does with them."""

    def first_rates(**cfg: Any) -> list[Any]:
        opt = make_optimizer([0.1])
        sched = OriginalPolynomialLR(opt, **cfg)
        for i in range(1, 4):
            opt.step()
            sched.step_update(num_updates=i)
        return [opt.param_groups[0]["lr"]]

    assert first_rates(step_size=1, iter_warmup=0, iter_max=0.5, power=0.9) == [0.1]  # no decay
    with pytest.raises(ZeroDivisionError):  # last_epoch % 0
        first_rates(step_size=0, iter_warmup=0, iter_max=10, power=0.9)
    (z,) = first_rates(step_size=1, iter_warmup=5, iter_max=2, power=0.9)
    assert isinstance(z, complex)  # (1 - 5/2) ** 0.9
    (neg,) = first_rates(step_size=1, iter_warmup=5, iter_max=2, power=1)
    assert neg < 0
    with pytest.raises(ZeroDivisionError):  # 0.0 ** -1 at iter_max
        first_rates(step_size=1, iter_warmup=0, iter_max=2, power=-1)


# --------------------------------------------------------------------------------------
# The schedule itself (vectorized paths, structure)
def reference(k: int, base: float, s: int, w: int, m: int, p: float, lo: float) -> float:
    """The sequence typed from the formula in the module docstring (not from the code)."""
    if k < s:
        return base
    j = (min(k, m) // s) * s
    if j == 0:
        return base
    c = j / w * (1 - w / m) ** p if j < w else (1 - j / m) ** p
    return (base - lo) * c + lo


@settings(max_examples=100, deadline=None)
@given(cfg=configs(), base=st.floats(1e-5, 1.0))
def test_schedule_vectorized_paths_within_two_ulp(cfg: dict[str, Any], base: float) -> None:
    sched = segmenter_schedule(**cfg)
    s, w, m = int(cfg["step_size"]), int(cfg["iter_warmup"]), int(cfg["iter_max"])
    ks = np.arange(m + 3 * s + 3)
    want = np.array([reference(int(k), base, s, w, m, cfg["power"], cfg["min_lr"]) for k in ks])
    # Within a few ulp of the result, or of the scale max(base, min_lr) where the formula
    # (base - min_lr) * c + min_lr cancels (min_lr may exceed base).
    eps = np.finfo(np.float64).eps
    scale = np.spacing(max(base, float(cfg["min_lr"])))
    np.testing.assert_allclose(sched(ks, base=base), want, rtol=2 * eps, atol=2 * scale)
    got_t = sched.bind(base)(torch.from_numpy(ks.astype(np.float64))).numpy()
    np.testing.assert_allclose(got_t, want, rtol=4 * eps, atol=4 * scale)
    drop_in = PolynomialLR(make_optimizer([base]), **cfg)
    assert bits([drop_in.rate(int(k), base) for k in ks]) == bits(list(want))


def test_schedule_structure() -> None:
    sched = segmenter_schedule(step_size=2, iter_warmup=1500, iter_max=160000, power=0.9)
    assert sched.horizon == 160000
    assert sched.milestones()["warmup_end"] == 1500
    assert sched.is_relative
    assert segmenter_schedule(11, 2, 10, 0.9)(np.arange(30), base=0.1).tolist() == [0.1] * 30


def test_segmenter_poly_is_overlap_warmup_up_to_rounding() -> None:
    """Same curve as lrkit's Warmup(Poly, mode='overlap'); only the rounding differs."""
    ours = SegmenterPoly(total_steps=300, power=0.9, warmup_steps=90, peak=0.01, end=1e-5)
    poly = Poly(total_steps=300, power=0.9, peak=0.01, end=1e-5)
    theirs = Warmup(poly, steps=90, start=1e-5, mode="overlap")
    t = np.arange(400.0)
    np.testing.assert_allclose(ours(t), theirs(t), rtol=1e-13, atol=0)
    assert ours.milestones() == {"warmup_end": 90.0}
    assert ours.horizon == 300
    assert SegmenterPoly(10, 0.9).milestones() == {}


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"total_steps": 0}, "total_steps"),
        ({"total_steps": 10.5}, "total_steps"),
        ({"total_steps": 10, "warmup_steps": 11}, "warmup_steps"),
        ({"total_steps": 10, "warmup_steps": 1.5}, "warmup_steps"),
        ({"total_steps": 10, "warmup_steps": -1}, "warmup_steps"),
        ({"total_steps": 10, "power": 0.0}, "power"),
        ({"total_steps": 10, "end": -1.0}, "end"),
        ({"total_steps": 10, "peak": math.nan}, "peak"),
    ],
)
def test_segmenter_poly_validation(kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{name}="):
        SegmenterPoly(**kwargs)


def test_schedule_round_trips_through_spec() -> None:
    spec = pytest.importorskip("lrkit.spec")
    s = segmenter_schedule(step_size=2, iter_warmup=15, iter_max=100, power=0.9, min_lr=1e-5)
    assert spec.parse(spec.to_string(s)) == s
    assert spec.from_dict(spec.to_dict(s)) == s
