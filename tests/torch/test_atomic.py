"""Every public mutating call of LRScheduler completes or changes nothing.

After a call that raises, ``state_dict()`` of the scheduler and of the optimizer (bytes of
``torch.save``), the rates the groups hold and ``get_lr()`` / ``get_last_lr()`` are exactly
those of before. The calls: the constructor, ``step()``, ``step(metric)``, ``set_step``,
the ``last_epoch`` setter and ``load_state_dict``, fed hostile arguments, values that turn
invalid (a beta reaching 1), off-cadence metrics and added groups that cannot be scheduled.
"""

from __future__ import annotations

import copy
import io
import math
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lrkit import ConfigError, Linear, StateError, Warmup
from lrkit.torch import LRScheduler, Plateau
from strategies import HOSTILE_SCALARS, corrupt_tree

ERRORS = (ConfigError, StateError)
HOSTILE = [*HOSTILE_SCALARS, torch.tensor([1.0, 2.0]), torch.tensor(math.nan)]


def _optimizer(tensor_lr: bool) -> torch.optim.Optimizer:
    lr: Any = torch.tensor(0.1) if tensor_lr else 0.1
    return torch.optim.Adam([{"params": [torch.zeros(2, requires_grad=True)], "lr": lr},
                             {"params": [torch.zeros(3, requires_grad=True)], "lr": 0.01}],
                            betas=(0.9, 0.99), foreach=False)


def _make(plateau: bool, skip: bool, tensor_lr: bool) -> tuple[torch.optim.Optimizer,
                                                                LRScheduler]:
    opt = _optimizer(tensor_lr)
    lr = (Plateau(Warmup(Linear(30), steps=3), factor=0.5, patience=0, every=2) if plateau
          else Warmup(Linear(30), steps=3))
    # beta1 climbs from 0.9 by 0.01 a step: 1.0 (invalid) at step 10
    sched = LRScheduler(opt, lr, beta1=Linear(100, start=0.9, end=1.9),
                        skipped="skip" if skip else "count")
    return opt, sched


def _snapshot(opt: torch.optim.Optimizer, sched: LRScheduler) -> tuple[bytes, Any, Any]:
    buf = io.BytesIO()
    torch.save((sched.state_dict(), opt.state_dict()), buf)
    held = [repr((g["lr"], g["betas"])) for g in opt.param_groups]
    return buf.getvalue(), held, (sched.get_lr(), sched.get_last_lr(), sched.last_epoch)


def _advance(opt: torch.optim.Optimizer, sched: LRScheduler, steps: int, plateau: bool) -> None:
    for i in range(steps):
        if i % 3 != 2:  # every third update "skipped" (matters with skipped="skip")
            for g in opt.param_groups:
                for p in g["params"]:
                    p.grad = torch.ones_like(p)
            opt.step()
        sched.step((1.0 + i % 3) if plateau and (i + 1) % 2 == 0 else None)


CALLS = ["step", "step_metric", "set_step", "last_epoch", "load", "load_far", "add_group"]


@settings(max_examples=60, deadline=None)
@given(plateau=st.booleans(), skip=st.booleans(), tensor_lr=st.booleans(),
       steps=st.integers(0, 9), call=st.sampled_from(CALLS), data=st.data())
def test_a_failed_call_changes_nothing(plateau: bool, skip: bool, tensor_lr: bool,
                                       steps: int, call: str, data: st.DataObject) -> None:
    opt, sched = _make(plateau, skip, tensor_lr)
    _advance(opt, sched, steps, plateau)
    saved = sched.state_dict()
    if call == "add_group":  # a group the scheduler cannot schedule (the user's change)
        opt.add_param_group({"params": [torch.zeros(1, requires_grad=True)],
                             "lr": data.draw(st.sampled_from(HOSTILE))})
    before = _snapshot(opt, sched)
    assert _snapshot(opt, sched) == before  # the comparison itself is stable
    try:
        if call == "step":
            sched.set_step(9)
            before = _snapshot(opt, sched)
            sched.step()  # beta1 would reach 1.0 at step 10
        elif call == "step_metric":
            sched.step(data.draw(st.sampled_from(HOSTILE)))
        elif call == "set_step":
            sched.set_step(data.draw(st.one_of(st.sampled_from(HOSTILE), st.integers(10, 200))))
        elif call == "last_epoch":
            sched.last_epoch = data.draw(st.sampled_from(HOSTILE))
        elif call == "load":
            sched.load_state_dict(corrupt_tree(saved, data, HOSTILE, max_edits=2))
        elif call == "load_far":  # a well-formed state whose step gives beta1 >= 1
            sched.load_state_dict({**saved, "step": data.draw(st.integers(10, 10**6))})
        else:
            sched.step()
    except (ConfigError, StateError) as exc:
        raised: Exception | None = exc
    else:
        raised = None
    if raised is None:
        return  # the call completed: nothing to compare
    if call in ("load", "load_far"):  # the documented error of load_state_dict
        assert isinstance(raised, StateError), raised
    assert _snapshot(opt, sched) == before
    if call == "add_group":
        opt.param_groups.pop()
    sched.set_step(min(sched.last_epoch, 5))  # and the scheduler still works from there


def test_invalid_value_on_step_keeps_the_step() -> None:
    # was: the step advanced (and get_lr moved) although step() raised
    opt, sched = _make(False, False, False)
    sched.set_step(9)
    with pytest.raises(ConfigError, match=r"momentum=1.0 at step 10 is invalid"):
        sched.step()
    assert sched.last_epoch == 9
    assert opt.param_groups[0]["betas"][0] == pytest.approx(0.99, rel=1e-12)


def test_bad_metric_keeps_the_step() -> None:
    # was: step("x") on a plateau raised ConfigError but last_epoch had advanced
    _, sched = _make(True, False, False)
    with pytest.raises(ConfigError, match="metric='x' is invalid"):
        sched.step("x")
    assert sched.last_epoch == 0
    assert sched.get_lr() == [0.0, 0.0]


def test_set_step_to_an_invalid_value_keeps_the_step() -> None:
    opt, sched = _make(False, False, False)
    with pytest.raises(ConfigError, match="at step 10 is invalid"):
        sched.set_step(10)
    assert sched.last_epoch == 0
    assert opt.param_groups[0]["betas"][0] == 0.9


def test_load_of_a_state_with_invalid_values_raises_state_error() -> None:
    # was: ConfigError, after the new step and plateau state had been taken
    _, sched = _make(True, False, False)
    sched.step()
    state = {**sched.state_dict(), "step": 50}
    _, sched2 = _make(True, False, False)
    with pytest.raises(StateError, match=r"state_dict\['step'\]=50 is invalid here"):
        sched2.load_state_dict(state)
    assert sched2.last_epoch == 0


def test_failed_constructor_leaves_the_optimizer_alone() -> None:
    opt = _optimizer(False)
    before = copy.deepcopy(opt.state_dict())
    with pytest.raises(ConfigError, match=r"at step 0 is invalid"):  # beta1 1.5 at step 0
        LRScheduler(opt, Linear(10), beta1=Linear(10, start=1.5, end=0.5), skipped="skip")
    assert opt.state_dict() == before  # no initial_lr / initial_beta1 recorded
    assert "initial_lr" not in opt.param_groups[0]
    assert not opt._optimizer_step_post_hooks  # no step hook left behind
