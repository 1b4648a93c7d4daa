"""lrkit.torch.LRScheduler on real optimizers: values, groups, fields, semantics, errors."""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import Any

import numpy as np
import pytest
import torch

from lrkit import ConfigError, Constant, Cosine, Linear, Poly, Rel, Schedule, Warmup
from lrkit.schedules._ops import Array, Ops
from lrkit.torch import LRScheduler


def _params(n: int = 1) -> list[torch.nn.Parameter]:
    return [torch.nn.Parameter(torch.zeros(2)) for _ in range(n)]


def _sgd(*lrs: float, **kw: Any) -> torch.optim.SGD:
    return torch.optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(_params(len(lrs)), lrs,
                                                                        strict=True)], **kw)


def _adamw(*lrs: float, **kw: Any) -> torch.optim.AdamW:
    return torch.optim.AdamW([{"params": [p], "lr": lr} for p, lr in zip(_params(len(lrs)), lrs,
                                                                          strict=True)], **kw)


def _lrs(opt: torch.optim.Optimizer) -> list[float]:
    return [float(g["lr"]) for g in opt.param_groups]


# -- values and time ---------------------------------------------------------------------------

def test_per_group_relative_and_absolute_floor() -> None:
    """Backbone 1e-4, head 1e-3, cosine to an absolute floor of 1e-5: each group decays from
    its own base to the same absolute floor."""
    opt = _adamw(1e-4, 1e-3)
    total = 100
    sched = LRScheduler(opt, Cosine(total_steps=total, end=1e-5))
    for k in range(total + 3):
        frac = min(k, total) / total
        want = [1e-5 + (b - 1e-5) * (1 + math.cos(math.pi * frac)) / 2 for b in (1e-4, 1e-3)]
        assert _lrs(opt) == pytest.approx(want, rel=1e-12, abs=0)
        opt.step()
        sched.step()
    assert _lrs(opt) == [1e-5, 1e-5]


def test_relative_end_is_per_group() -> None:
    opt = _sgd(0.1, 0.01)
    sched = LRScheduler(opt, Linear(10, end=Rel(0.5)))
    sched.set_step(10)
    assert _lrs(opt) == [0.05, 0.005]


def test_get_last_lr_is_the_rate_the_last_update_used() -> None:
    opt = _sgd(1.0)
    sched = LRScheduler(opt, Linear(10, start=1.0, end=0.0))
    assert sched.get_last_lr() == [1.0]  # before any step: step 0
    assert sched.get_lr() == [1.0]
    used = []
    for _ in range(5):
        used.append(_lrs(opt)[0])
        opt.step()
        sched.step()
        assert sched.get_last_lr() == [used[-1]]
    assert sched.last_epoch == 5
    assert sched.get_lr() == [0.5] == _lrs(opt)
    assert sched.get_last_lr() == [0.6]


def test_last_epoch_counts_steps_and_sets_the_step() -> None:
    opt = _sgd(1.0)
    sched = LRScheduler(opt, Linear(10, start=1.0, end=0.0))
    assert sched.last_epoch == 0
    sched.last_epoch = 7
    assert _lrs(opt) == [pytest.approx(0.3)]
    sched.step()
    assert sched.last_epoch == 8


def test_random_access_and_set_step() -> None:
    opt = _sgd(0.1, 0.2)
    s = Warmup(Poly(total_steps=90, power=2.0), steps=10)
    sched = LRScheduler(opt, s)
    for k in (0, 5, 10, 55, 100, 10**6):
        want = [s(k, base=0.1), s(k, base=0.2)]
        assert sched.lr_at(k) == want
        sched.set_step(k)
        assert _lrs(opt) == want
        assert sched.last_epoch == k


def test_unscheduled_groups_are_left_alone() -> None:
    opt = _sgd(0.1, 0.2, 0.3)
    sched = LRScheduler(opt, [Constant(0.5), None, Linear(2)])
    assert _lrs(opt) == [0.5, 0.2, 0.3]
    sched.step()
    assert _lrs(opt) == [0.5, 0.2, 0.15]
    assert sched.get_lr() == [0.5, 0.2, 0.15]
    assert sched.values_at(1) == [0.5, None, 0.15]


def test_mapping_form() -> None:
    opt = _sgd(0.1, 0.2)
    sched = LRScheduler(opt, {1: Linear(2)})
    sched.step()
    assert _lrs(opt) == [0.1, 0.1]


def test_shared_schedule_evaluated_once_per_step() -> None:
    calls = []

    @dataclasses.dataclass(frozen=True)
    class Counting(Schedule):
        def _eval(self, t: Array, ops: Ops) -> Array:
            calls.append(1)
            return ops.full_like(t, 0.5)

    opt = _sgd(*([0.1] * 50))
    sched = LRScheduler(opt, Counting())
    n = len(calls)
    for _ in range(200):
        sched.step()
    assert len(calls) - n <= 200 // 64 + 1  # one NumPy evaluation per block of steps
    assert _lrs(opt) == [0.5] * 50


def test_closed_form_equals_stepping_without_drift() -> None:
    s = Warmup(Cosine(total_steps=2 * 10**6, end=Rel(0.01)), steps=1000)
    opt = _sgd(0.1)
    sched = LRScheduler(opt, s)
    n = 100_000
    got = np.empty(n)
    group = opt.param_groups[0]
    for k in range(n):
        got[k] = group["lr"]
        sched.step()
    want = s(np.arange(n, dtype=np.float64), base=0.1)
    np.testing.assert_array_equal(got, want)
    far = np.arange(10**6 - 5, 10**6 + 5)
    np.testing.assert_array_equal([sched.lr_at(int(k))[0] for k in far], s(far, base=0.1))
    t = 1000 + np.minimum(far - 1000, 2e6)  # independent formula
    formula = 0.001 + (0.1 - 0.001) * (1 + np.cos(np.pi * (t - 1000) / 2e6)) / 2
    np.testing.assert_allclose(s(far, base=0.1), formula, rtol=1e-12)


def test_plain_training_loop_with_a_real_model() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    s = Warmup(Cosine(total_steps=40), steps=5)
    sched = LRScheduler(opt, s)
    x, y = torch.randn(16, 4), torch.randn(16, 1)
    used = []
    for _ in range(45):
        used.append(opt.param_groups[0]["lr"])
        loss = torch.nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    assert used == [s(k, base=1e-2) for k in range(45)]
    assert math.isfinite(loss.item())


def test_construction_has_no_side_effects_beyond_step_zero() -> None:
    opt = _sgd(0.1, momentum=0.9)
    step_fn = opt.step
    before = {k: v for k, v in opt.param_groups[0].items() if k != "params"}
    LRScheduler(opt, Linear(10, start=Rel(0.5)))
    after = {k: v for k, v in opt.param_groups[0].items() if k != "params"}
    assert opt.step == step_fn  # not wrapped, unlike torch's schedulers
    assert after == {**before, "lr": 0.05, "initial_lr": 0.1}


def test_is_a_torch_lr_scheduler() -> None:
    opt = _sgd(0.1)
    sched = LRScheduler(opt, Linear(10))
    assert isinstance(sched, torch.optim.lr_scheduler.LRScheduler)
    assert sched.optimizer is opt
    assert sched.base_lrs == [0.1]


# -- fields ------------------------------------------------------------------------------------

def test_sgd_momentum_and_weight_decay() -> None:
    opt = _sgd(0.1, 0.2, momentum=0.9, weight_decay=1e-2)
    sched = LRScheduler(opt, Constant(), momentum=Linear(4, start=0.95, end=0.85),
                        weight_decay=Linear(4, end=Rel(0.0)))
    sched.step()
    for g in opt.param_groups:
        assert g["momentum"] == pytest.approx(0.925)
        assert g["weight_decay"] == pytest.approx(0.0075)
    assert sched.values_at(1, "momentum") == [0.95 - 0.025] * 2


def test_adam_momentum_means_beta1_and_beta2() -> None:
    opt = _adamw(1e-3, betas=(0.9, 0.999))
    sched = LRScheduler(opt, None, momentum=Constant(0.8), beta2=Linear(2, end=Rel(0.99)))
    assert opt.param_groups[0]["betas"] == (0.8, 0.999)
    sched.step()
    assert opt.param_groups[0]["betas"] == (0.8, 0.999 - 0.5 * 0.999 * 0.01)
    assert opt.param_groups[0]["lr"] == 1e-3  # not scheduled
    opt2 = _adamw(1e-3)
    LRScheduler(opt2, None, beta1=Constant(0.7))
    assert opt2.param_groups[0]["betas"][0] == 0.7


def test_momentum_and_beta1_together_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"beta1=.*momentum"):
        LRScheduler(_adamw(1e-3), None, momentum=Constant(0.8), beta1=Constant(0.8))


def test_field_a_group_does_not_hold() -> None:
    with pytest.raises(ConfigError, match=r"param_groups\[0\].*betas"):
        LRScheduler(_sgd(0.1), None, beta2=Constant(0.9))


def test_beta_of_one_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"momentum=1\.0 at step 0 .*< 1"):
        LRScheduler(_adamw(1e-3), None, beta1=Constant(1.0))


# -- groups added later ------------------------------------------------------------------------

def test_groups_added_later_are_scheduled_relative_to_their_own_lr() -> None:
    opt = _sgd(0.1)
    sched = LRScheduler(opt, Linear(10))
    sched.step()
    opt.add_param_group({"params": _params(), "lr": 1.0})
    sched.step()
    assert _lrs(opt) == [pytest.approx(0.08), pytest.approx(0.8)]
    assert sched.base_lrs == [0.1, 1.0]


def test_groups_added_later_rejected_on_request() -> None:
    opt = _sgd(0.1)
    sched = LRScheduler(opt, Linear(10), new_groups="raise")
    opt.add_param_group({"params": _params(), "lr": 1.0})
    with pytest.raises(ConfigError, match=r"param_groups\[1\] was added"):
        sched.step()


def test_groups_added_later_with_per_group_schedules_raise() -> None:
    opt = _sgd(0.1)
    sched = LRScheduler(opt, [Linear(10)])
    opt.add_param_group({"params": _params(), "lr": 1.0})
    with pytest.raises(ConfigError, match=r"schedule= was given per group"):
        sched.step()


# -- bad input ---------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class _Bad(Schedule):
    value: float = 0.0
    after: float = 3.0

    def _eval(self, t: Array, ops: Ops) -> Array:
        return ops.where(t >= self.after, self.value, 0.1)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1e-3])
def test_bad_computed_values_never_reach_the_optimizer(value: float) -> None:
    opt = _sgd(0.1)
    sched = LRScheduler(opt, _Bad(value))
    sched.step()
    sched.step()
    with pytest.raises(ConfigError, match=r"lr=.* at step 3 is invalid"):
        sched.step()
    assert _lrs(opt) == [0.1]
    with pytest.raises(ConfigError, match="at step 7"):
        sched.lr_at(7)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"optimizer": "sgd"}, r"optimizer='sgd' is invalid: expected a torch.optim.Optimizer"),
        ({"schedule": 0.1}, r"schedule=0.1 is invalid: expected a Schedule, a sequence"),
        ({"schedule": [Linear(2), Linear(2)]}, r"schedule=.*2 schedules.* each of the 1"),
        ({"schedule": [0.1]}, r"schedule\[0\]=0.1 is invalid: expected a Schedule or None"),
        ({"schedule": {3: Linear(2)}}, r"schedule key=3 is invalid: expected a group index"),
        ({"schedule": None}, r"schedule=None is invalid: expected a Schedule for at least"),
        ({"new_groups": "yes"}, r"new_groups='yes' is invalid: expected one of 'schedule'"),
        ({"on_mismatch": "x"}, r"on_mismatch='x' is invalid: expected one of 'raise'"),
        ({"tensor": 1}, r"tensor=1 is invalid: expected True or False"),
        ({"momentum": "0.9"}, r"momentum='0.9' is invalid"),
    ],
)
def test_bad_arguments_name_parameter_value_and_allowed(kwargs: dict[str, Any],
                                                        match: str) -> None:
    args: dict[str, Any] = {"optimizer": _sgd(0.1), "schedule": Linear(2), **kwargs}
    with pytest.raises(ConfigError, match=match):
        LRScheduler(**args)


def test_bad_step_and_field_arguments() -> None:
    sched = LRScheduler(_sgd(0.1), Linear(2))
    with pytest.raises(ConfigError, match=r"step=-1 is invalid"):
        sched.set_step(-1)
    with pytest.raises(ConfigError, match=r"step=1.5 is invalid"):
        sched.lr_at(1.5)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"field='alpha' is invalid"):
        sched.values_at(0, "alpha")


def test_lr_scale_under_one_schedule_is_refused_not_ignored() -> None:
    # timm's layer-wise decay puts lr_scale in the groups; one shared schedule would drop it
    from lrkit.convert import from_timm

    head, body = torch.zeros(1, requires_grad=True), torch.zeros(1, requires_grad=True)
    opt = torch.optim.AdamW([{"params": [head]}, {"params": [body], "lr_scale": 0.5}], lr=3e-5)
    before = copy.deepcopy(opt.state_dict())
    with pytest.raises(ConfigError, match=r"param_groups\[1\]\['lr_scale'\]=0.5.*from_timm"):
        LRScheduler(opt, Cosine(100))
    assert opt.state_dict() == before  # the failed constructor changed nothing
    LRScheduler(opt, from_timm("cosine", num_epochs=10, optimizer=opt))  # per group: applied
    assert [g["lr"] for g in opt.param_groups] == [3e-5, 1.5e-5]


def test_scheduling_an_optimizer_that_reads_the_rate_differently_warns() -> None:
    from lrkit.inspect import ScheduleAdviceWarning

    p = torch.zeros(3, requires_grad=True)
    with pytest.warns(ScheduleAdviceWarning, match="initial step size"):
        LRScheduler(torch.optim.Rprop([p], lr=0.01), Cosine(100))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # plain SGD: nothing to say
        LRScheduler(torch.optim.SGD([p], lr=0.01), Cosine(100))
