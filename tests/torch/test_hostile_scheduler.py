"""LRScheduler under hostile input: corrupt states, bad metrics, odd optimizer groups.

Each case ends in a documented exception (ConfigError / StateError, both ValueError) or in
correct behaviour (finite rates >= 0), never an internal error, a hang or a NaN rate. The
regression cases name the bug they caught (each failed before its fix).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lrkit import ConfigError, Constant, Linear, Poly, Rel, StateError, Warmup
from lrkit.torch import LRScheduler, Plateau
from strategies import HOSTILE_SCALARS, corrupt_tree, time_limit

HOSTILE = [*HOSTILE_SCALARS, torch.tensor([1.0, 2.0]), torch.tensor(3), torch.tensor(math.nan)]



def _make(plateau: bool, *, tensor_lr: bool = False, keep: bool = False
          ) -> tuple[torch.optim.Optimizer, LRScheduler]:
    lr: Any = torch.tensor(0.1) if tensor_lr else 0.1
    opt = torch.optim.SGD([{"params": [torch.zeros(2, requires_grad=True)], "lr": lr},
                           {"params": [torch.zeros(3, requires_grad=True)], "lr": 0.01}],
                          momentum=0.9)
    sched = (Plateau(Warmup(Linear(30), steps=3), factor=0.5, patience=1) if plateau
             else Warmup(Poly(total_steps=20, end=Rel(0.1)), steps=3))
    return opt, LRScheduler(opt, sched, momentum=Linear(30, start=0.95, end=0.85),
                            on_mismatch="keep_new" if keep else "raise")


def _sound(opt: torch.optim.Optimizer) -> None:
    for g in opt.param_groups:
        for key in ("lr", "momentum"):
            v = g[key]
            x = float(v) if not isinstance(v, torch.Tensor) else float(v.reshape(-1)[0])
            assert math.isfinite(x), (key, v)
            assert x >= 0, (key, v)



@settings(max_examples=250, deadline=None)
@given(plateau=st.booleans(), steps=st.integers(0, 25), tensor_lr=st.booleans(),
       keep=st.booleans(), data=st.data())
def test_corrupt_states_raise_state_error_or_load_soundly(
        plateau: bool, steps: int, tensor_lr: bool, keep: bool, data: st.DataObject) -> None:
    _, s = _make(plateau)
    for i in range(steps):
        s.step(1.0 / (1 + i % 4) if plateau else None)
    state = corrupt_tree(s.state_dict(), data, HOSTILE, max_edits=3)
    opt, s2 = _make(plateau, tensor_lr=tensor_lr, keep=keep)
    with time_limit(5.0):
        try:
            s2.load_state_dict(state)
        except StateError:
            return
        _sound(opt)
        for _ in range(3):
            s2.step(0.5 if plateau else None)
            _sound(opt)
        s2.get_last_lr()
        s2.state_dict()


@pytest.mark.parametrize(("metric", "match"), ids=lambda v: repr(v)[:20], argvalues=[
    (math.nan, r"metric=nan is invalid: expected a finite number"),
    (math.inf, r"metric=inf is invalid"),
    (torch.tensor(math.nan), r"metric=tensor\(nan\) is invalid"),
    ("0.5", r"metric='0.5' is invalid: expected a real number"),  # was accepted via float()
    (b"1", r"metric=b'1' is invalid"),
    (1j, r"metric=1j is invalid"),
    (True, r"metric=True is invalid"),
    (None, None),  # no metric: no decision
    (torch.ones(3), r"metric='Tensor\(shape=\(3,\)\)' is invalid: expected a real number or"),
    (torch.ones(10**6), r"metric='Tensor\(shape=\(1000000,\)\)' is invalid"),
    (np.ones((2, 2)), r"metric='ndarray\(shape=\(2, 2\)\)' is invalid"),
    ([0.5], r"metric=\[0.5\] is invalid"),
    ({"loss": 0.5}, r"metric=\{'loss': 0.5\} is invalid"),
    (10**400, r"metric='1000.*\.\.\.' is invalid"),  # was OverflowError
    (object(), r"metric=<object object"),
])
def test_bad_metrics(metric: Any, match: str | None) -> None:
    opt, s = _make(True)
    if match is None:
        s.step(metric)
        assert s.last_epoch == 1
        return
    with pytest.raises(ConfigError, match=match):
        s.step(metric)
    _sound(opt)


@pytest.mark.parametrize("metric", [0.5, 3, np.float32(0.5), np.int64(2), torch.tensor(0.5),
                                    torch.tensor([[0.5]]), np.array([0.5]),
                                    torch.tensor(0.5, dtype=torch.bfloat16)])
def test_good_metrics(metric: Any) -> None:
    opt, s = _make(True)
    s.step(metric)
    s.step(metric)
    s.step(metric)  # two bad metrics after the first: patience 1 -> one reduction
    # step 3: the warmup (3 steps) has reached 0.1; one reduction by 0.5
    assert opt.param_groups[0]["lr"] == pytest.approx(0.5 * 0.1, rel=1e-12)


def test_plateau_nonfinite_ignore() -> None:
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    s = LRScheduler(opt, Plateau(factor=0.5, patience=0, nonfinite="ignore"))
    for m in (1.0, math.nan, math.inf, -math.inf, 2.0):
        s.step(m)
    assert opt.param_groups[0]["lr"] == 0.5  # only 2.0 was worse


def test_huge_saved_reduction_count_does_not_hang() -> None:
    # hang: Plateau.reduced() multiplied once per reduction, 2**63 times
    _, s = _make(True)
    state = s.state_dict()
    state["plateau"]["reductions"] = [3, 2**63]
    opt, s2 = _make(True)
    with time_limit(5.0):
        s2.load_state_dict(state)
        s2.step()
    assert opt.param_groups[1]["lr"] == 0.0
    # step 1 of a 3-step warmup to 0.1, three reductions by 0.5
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * (1 / 3) * 0.5**3, rel=1e-12)


@pytest.mark.parametrize(("edit", "match"), [
    ({"format": np.array([1.0, 2.0])}, r"state_dict\['format'\]=array"),  # was ValueError
    ({"version": np.array([1, 1])}, r"state_dict\['version'\]=array"),
    ({"version": True}, r"state_dict\['version'\]=True"),
    ({"step": 2**64}, r"state_dict\['step'\]=.* of at most 2\*\*63"),
    ({"step": -1}, r"state_dict\['step'\]=-1"),
    ({"plateau": {"best": "x"}}, r"plateau"),
])
def test_bad_state_headers(edit: dict[str, Any], match: str) -> None:
    _, s = _make(True)
    state = {**s.state_dict(), **edit}
    with pytest.raises(StateError, match=match):
        _make(True)[1].load_state_dict(state)
    with pytest.raises(StateError, match=r"state_dict=list is invalid: expected a dict"):
        s.load_state_dict([])  # type: ignore[arg-type]


@pytest.mark.parametrize(("value", "match"), [
    (10**400, r"\['lr'\]=1000.* is invalid: expected a finite number >= 0"),  # OverflowError
    (torch.tensor(1), r"\['lr'\]=tensor\(1\) is invalid: expected .*floating-point tensor"),
    (torch.tensor(True), r"floating-point tensor"),  # rates were truncated to 0 / True
    (torch.tensor(0.1 + 0j), r"floating-point tensor"),  # complex rates were written
    (torch.tensor([0.1, 0.2]), r"one-element floating-point tensor"),
    (math.nan, r"\['lr'\]=nan is invalid"),
    (-1.0, r"\['lr'\]=-1.0 is invalid"),
    ("0.1", r"\['lr'\]='0.1' is invalid"),
    (None, r"\['lr'\]=None is invalid"),
])
def test_bad_group_rates(value: Any, match: str) -> None:
    opt = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.1)
    opt.param_groups[0]["lr"] = value
    with pytest.raises(ConfigError, match=match):
        LRScheduler(opt, Linear(10))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_tensor_and_float_rates(dtype: torch.dtype) -> None:
    opt = torch.optim.Adam([{"params": [torch.zeros(2, requires_grad=True)],
                             "lr": torch.tensor(0.1, dtype=dtype)},
                            {"params": [torch.zeros(2, requires_grad=True)], "lr": 0.2}],
                           foreach=False)
    s = LRScheduler(opt, Warmup(Linear(10), steps=2))
    t = opt.param_groups[0]["lr"]
    s.step()
    assert opt.param_groups[0]["lr"] is t  # written in place, dtype kept
    assert t.dtype == dtype
    assert float(t) == pytest.approx(0.05, rel=1e-2)
    assert opt.param_groups[1]["lr"] == pytest.approx(0.1, rel=1e-12)


def test_empty_and_late_groups() -> None:
    opt = torch.optim.SGD([{"params": [torch.zeros(2, requires_grad=True)]},
                           {"params": []}], lr=0.1)
    s = LRScheduler(opt, Linear(10))
    s.step()
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.09, 0.09], rel=1e-12)
    opt.add_param_group({"params": [torch.zeros(1, requires_grad=True)], "lr": 0.5})
    s.step()
    assert opt.param_groups[2]["lr"] == pytest.approx(0.5 * 0.8, rel=1e-12)
    opt.param_groups.pop()
    opt.param_groups.pop()
    with pytest.raises(StateError, match="has 1 groups: expected at least the 3"):
        s.step()
    opt2 = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.1)
    s2 = LRScheduler(opt2, [Linear(10)])
    opt2.add_param_group({"params": [torch.zeros(1, requires_grad=True)]})
    with pytest.raises(ConfigError, match="added after the scheduler was built"):
        s2.step()
    s3 = LRScheduler(torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.1),
                     Constant(0.1), new_groups="raise")
    s3.optimizer.add_param_group({"params": [torch.zeros(1, requires_grad=True)]})
    with pytest.raises(ConfigError, match="new_groups='schedule'"):
        s3.step()


@pytest.mark.parametrize("step", [2**53, 2**62, 2**63])
def test_huge_steps_are_sound(step: int) -> None:
    # IndexError: np.arange(start, start + 64) has fewer entries once steps are inexact
    opt = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.1)
    s = LRScheduler(opt, Warmup(Linear(10), steps=2))
    assert s.lr_at(step) == [0.0]
    s.set_step(step)
    assert opt.param_groups[0]["lr"] == 0.0
    with pytest.raises(ConfigError, match=r"step=.* of at most 2\*\*63"):
        s.set_step(2**64)
