"""Plateau: parity with torch's ReduceLROnPlateau, composition with time, state, errors."""

from __future__ import annotations

import io
import math
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lrkit import ConfigError, Constant, Linear, Rel, Warmup
from lrkit.spec import from_dict, parse_string, to_dict
from lrkit.torch import LRScheduler, Plateau

LRS = (0.1, 0.03, 1e-3)


def _opt() -> torch.optim.SGD:
    return torch.optim.SGD([{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr}
                            for lr in LRS])


configs = st.fixed_dictionaries({
    "mode": st.sampled_from(["min", "max"]),
    "factor": st.sampled_from([0.1, 0.5, 0.3, 0.9]),
    "patience": st.integers(0, 3),
    "threshold": st.sampled_from([0.0, 1e-4, 0.05, 0.5]),
    "threshold_mode": st.sampled_from(["rel", "abs"]),
    "cooldown": st.integers(0, 2),
    "eps": st.sampled_from([0.0, 1e-8, 1e-3]),
})
min_lrs = st.lists(st.sampled_from([0.0, 1e-4, 5e-3, 0.02]), min_size=3, max_size=3)
metrics = st.lists(st.one_of(st.sampled_from([1.0, 0.5, 2.0]),
                             st.floats(-5, 5, allow_nan=False)), min_size=1, max_size=60)


@settings(max_examples=300)
@given(cfg=configs, floors=min_lrs, values=metrics)
def test_parity_with_torch_reduce_on_plateau(cfg: dict[str, Any], floors: list[float],
                                             values: list[float]) -> None:
    ref_opt = _opt()
    ref = torch.optim.lr_scheduler.ReduceLROnPlateau(ref_opt, min_lr=floors, **cfg)
    opt = _opt()
    sched = LRScheduler(opt, [Plateau(Constant(), min_lr=m, **cfg) for m in floors])
    for v in values:
        ref.step(v)
        sched.step(v)
        assert [g["lr"] for g in opt.param_groups] == [g["lr"] for g in ref_opt.param_groups]
        assert sched.get_lr() == [g["lr"] for g in ref_opt.param_groups]


def test_composes_with_warmup_and_decay() -> None:
    s = Warmup(Linear(20, end=Rel(0.1)), steps=4)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = LRScheduler(opt, Plateau(s, factor=0.5, patience=0, min_lr=0.2))
    sched.step(1.0)  # step 1: best = 1.0
    assert opt.param_groups[0]["lr"] == s(1)
    sched.step(1.0)  # step 2: no improvement, patience 0 -> one reduction
    assert opt.param_groups[0]["lr"] == max(s(2) * 0.5, 0.2)
    for k in range(3, 24):
        sched.step()  # time only
        assert opt.param_groups[0]["lr"] == max(s(k) * 0.5, 0.2)
    assert sched.get_last_lr() == [max(s(22) * 0.5, 0.2)]
    assert sched.state_dict()["plateau"]["reductions"] == [1]


def test_relative_floor_and_unreduced_groups() -> None:
    opt = torch.optim.SGD([{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr}
                           for lr in (0.1, 0.01)])
    sched = LRScheduler(opt, [Plateau(factor=0.1, patience=0, min_lr=Rel(0.05)), Constant()])
    for _ in range(4):
        sched.step(1.0)
    assert [g["lr"] for g in opt.param_groups] == [0.1 * 0.05, 0.01]


def test_get_last_lr_before_a_reduction() -> None:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = LRScheduler(opt, Plateau(factor=0.5, patience=0))
    sched.step(1.0)
    sched.step(2.0)
    assert opt.param_groups[0]["lr"] == 0.5
    assert sched.get_last_lr() == [1.0]  # the rate the last update used


def test_plateau_state_survives_state_dict() -> None:
    def build() -> tuple[torch.optim.Optimizer, LRScheduler]:
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        return opt, LRScheduler(opt, Plateau(Linear(100, end=Rel(0.5)), factor=0.5,
                                             patience=1, cooldown=2))

    seq = [3.0, 2.0, 2.5, 2.5, 2.5, 1.0, 1.5, 1.5, 1.5, 1.5, 0.5, 0.7, 0.7, 0.7, 0.7]
    opt, sched = build()
    want = []
    for v in seq:
        sched.step(v)
        want.append(opt.param_groups[0]["lr"])
    for cut in range(len(seq)):
        opt, sched = build()
        got = []
        for v in seq[:cut]:
            sched.step(v)
            got.append(opt.param_groups[0]["lr"])
        buf = io.BytesIO()
        torch.save(sched.state_dict(), buf)
        buf.seek(0)
        opt2, sched2 = build()
        sched2.load_state_dict(torch.load(buf, weights_only=True))
        for v in seq[cut:]:
            sched2.step(v)
            got.append(opt2.param_groups[0]["lr"])
        assert got == want


def test_nonfinite_metric_raises_or_is_ignored() -> None:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = LRScheduler(opt, Plateau(patience=0))
    with pytest.raises(ConfigError, match=r"metric=nan is invalid: expected a finite number"):
        sched.step(float("nan"))
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = LRScheduler(opt, Plateau(patience=0, nonfinite="ignore"))
    for v in (1.0, math.inf, math.nan, math.inf):
        sched.step(v)
    assert opt.param_groups[0]["lr"] == 1.0
    sched.step(torch.tensor(2.0))  # tensors are fine
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1)
    with pytest.raises(ConfigError, match=r"metric='x' is invalid"):
        sched.step("x")


def test_every_restricts_decisions_to_multiples() -> None:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = LRScheduler(opt, Plateau(patience=0, every=3))
    sched.step()
    sched.step()
    sched.step(1.0)
    with pytest.raises(ConfigError, match=r"every 3 steps"):
        sched.step(1.0)


def test_metric_without_plateau_is_not_consulted() -> None:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = LRScheduler(opt, Linear(4))
    sched.step(metric=1.0)
    assert opt.param_groups[0]["lr"] == 0.75


def test_spec_forms() -> None:
    p = Plateau(Warmup(Constant(), steps=5), factor=0.3, patience=2, min_lr=Rel(0.01))
    assert from_dict(to_dict(p)) == p
    assert parse_string("plateau(factor=0.3, patience=0, every=10)") == Plateau(
        factor=0.3, patience=0, every=10)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"factor": 1.0}, r"factor=1.0 is invalid: expected a finite number > 0 and < 1"),
        ({"patience": -1}, r"patience=-1 is invalid: expected an integer >= 0"),
        ({"mode": "avg"}, r"mode='avg' is invalid: expected one of 'min', 'max'"),
        ({"threshold_mode": "pct"}, r"threshold_mode='pct' is invalid"),
        ({"cooldown": 0.5}, r"cooldown=0.5 is invalid"),
        ({"min_lr": -1.0}, r"min_lr=-1.0 is invalid"),
        ({"eps": math.nan}, r"eps=nan is invalid"),
        ({"nonfinite": "skip"}, r"nonfinite='skip' is invalid"),
        ({"every": 0}, r"every=0 is invalid"),
        ({"schedule": 0.1}, r"schedule=0.1 is invalid: expected a Schedule"),
        ({"schedule": Plateau()}, r"schedule=.* is invalid: expected a time-based"),
    ],
)
def test_bad_plateau_arguments(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Plateau(**kwargs)


def test_plateau_only_as_the_outer_lr_schedule() -> None:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0, momentum=0.9)
    with pytest.raises(ConfigError, match=r"momentum\[0\]=.*rate only"):
        LRScheduler(opt, Constant(), momentum=Plateau(Constant(0.9)))
    with pytest.raises(ConfigError, match=r"outermost"):
        LRScheduler(opt, Warmup(Plateau(), steps=3))
    opt2 = torch.optim.SGD([{"params": [torch.nn.Parameter(torch.zeros(1))]}
                            for _ in range(2)], lr=1.0)
    with pytest.raises(ConfigError, match=r"schedule\[1\]=.*Plateau settings equal"):
        LRScheduler(opt2, [Plateau(patience=1), Plateau(patience=2)])
    with pytest.raises(ConfigError, match=r"device=True is invalid"):
        LRScheduler(opt, Plateau(), device=True)
