"""Segmenter's PolynomialLR drop-in: a call that raises changes neither it nor the optimizer.

The mutating calls: ``step()``, ``step(epoch)``, ``step_update``, ``load_state_dict`` (hostile
states: corrupt entries, a state of another configuration) and the constructor.
"""

from __future__ import annotations

import copy
import io
import warnings
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lrkit.compat.segmenter import PolynomialLR
from lrkit.errors import ConfigError, StateError
from strategies import HOSTILE_SCALARS

HOSTILE = [*HOSTILE_SCALARS, torch.tensor([1.0, 2.0]), torch.tensor(3.0)]
CFG = {"step_size": 2, "iter_warmup": 3, "iter_max": 20, "power": 0.9, "min_lr": 1e-5}


def _make(steps: int) -> tuple[torch.optim.Optimizer, PolynomialLR]:
    opt = torch.optim.SGD([{"params": [torch.zeros(2, requires_grad=True)], "lr": 0.1},
                           {"params": [torch.zeros(1, requires_grad=True)], "lr": 0.01}])
    sched = PolynomialLR(opt, **CFG)
    for _ in range(steps):
        opt.step()
        sched.step()
    return opt, sched


def _snapshot(opt: torch.optim.Optimizer, sched: PolynomialLR) -> tuple[bytes, Any]:
    buf = io.BytesIO()
    torch.save((sched.state_dict(), opt.state_dict()), buf)
    return buf.getvalue(), (sched.last_epoch, sched.get_last_lr(), repr(vars(sched)))


@settings(max_examples=25, deadline=None)
@given(steps=st.integers(0, 25), call=st.sampled_from(["epoch", "load", "load_key"]),
       data=st.data())
def test_a_failed_call_changes_nothing(steps: int, call: str, data: st.DataObject) -> None:
    opt, sched = _make(steps)
    state = sched.state_dict()
    before = _snapshot(opt, sched)
    value = data.draw(st.sampled_from(HOSTILE))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torch deprecates step(epoch)
            if call == "epoch":
                sched.step(value)
            elif call == "load":
                key = data.draw(st.sampled_from(sorted(state)))
                sched.load_state_dict({**copy.deepcopy(state), key: value})
            else:
                key = data.draw(st.sampled_from(["optimizer", "get_lr", "_schedule", "x"]))
                sched.load_state_dict({**copy.deepcopy(state), key: value})
    except (ConfigError, StateError):
        assert _snapshot(opt, sched) == before
        if call != "epoch":
            with pytest.raises(StateError):  # the documented error: raise again to check
                sched.load_state_dict({**copy.deepcopy(state), "last_epoch": "x"})
    # whatever happened, the scheduler still works and holds its closed-form rates
    opt.step()
    sched.step()
    k = sched.last_epoch
    assert [g["lr"] for g in opt.param_groups] == [sched.rate(k, b) for b in (0.1, 0.01)]


def test_step_with_a_bad_epoch_keeps_the_step() -> None:
    # was: last_epoch took the bad value before the rate computation raised
    _, sched = _make(4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises(ConfigError, match="epoch=-3 is invalid"):
            sched.step(-3)
    assert sched.last_epoch == 4


def test_load_of_a_bad_state_keeps_the_state() -> None:
    # was: the state's entries were taken before its rates were computed
    _, sched = _make(4)
    state = {**sched.state_dict(), "last_epoch": "x"}
    with pytest.raises(StateError, match="last_epoch='x' is invalid"):
        sched.load_state_dict(state)
    assert sched.last_epoch == 4
    with pytest.raises(StateError, match="base_lrs"):
        sched.load_state_dict({**sched.state_dict(), "base_lrs": [0.1, "x"]})
    assert sched.base_lrs == [0.1, 0.01]


@pytest.mark.parametrize("lr", [float("nan"), -1.0, "x", float("inf")])
def test_failed_constructor_leaves_the_optimizer_alone(lr: Any) -> None:
    opt = torch.optim.SGD([{"params": [torch.zeros(2, requires_grad=True)], "lr": 0.1},
                           {"params": [torch.zeros(1, requires_grad=True)], "lr": 0.01}])
    opt.param_groups[1]["lr"] = lr
    with pytest.raises(ConfigError, match=r"lr"):
        PolynomialLR(opt, **CFG)
    assert "initial_lr" not in opt.param_groups[0]  # was recorded before the rate failed
