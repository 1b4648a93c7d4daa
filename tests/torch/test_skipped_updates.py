"""Updates skipped by AMP's GradScaler: the documented ``skipped`` policy, no warnings."""

from __future__ import annotations

import warnings

import pytest
import torch

from lrkit import ConfigError, Linear
from lrkit.torch import LRScheduler, Plateau

INF_AT = (1, 2, 5)  # these iterations produce inf gradients: the scaler skips the update


def _run(skipped: str, iters: int = 8) -> tuple[list[float], list[int]]:
    """The rate each real update used, and the scheduler's step after each iteration."""
    p = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.SGD([p], lr=0.1)
    sched = LRScheduler(opt, Linear(20), skipped=skipped)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**8)
    used, steps = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning (e.g. torch's step-order one) fails
        for i in range(iters):
            opt.zero_grad()
            loss = (p * (float("inf") if i in INF_AT else 1.0)).sum()
            scaler.scale(loss).backward()
            before, lr = p.detach().clone(), opt.param_groups[0]["lr"]
            scaler.step(opt)
            scaler.update()
            if not torch.equal(before, p.detach()):  # a real update: the rate it used
                used.append(lr)
            sched.step()
            steps.append(sched.last_epoch)
    assert scaler.get_scale() < 2.0**8  # the scaler did see the inf gradients
    return used, steps


def test_skip_counts_real_updates_only() -> None:
    used, steps = _run("skip")
    real = [i for i in range(8) if i not in INF_AT]
    assert len(used) == len(real)
    assert used == pytest.approx([0.1 * (1 - k / 20) for k in range(len(real))], rel=1e-12)
    want, k = [], 0
    for i in range(8):
        k += i not in INF_AT
        want.append(k)
    assert steps == want


def test_count_counts_every_call() -> None:
    used, steps = _run("count")
    assert steps == list(range(1, 9))
    # the rates of the real updates skip the values of the skipped iterations
    real = [i for i in range(8) if i not in INF_AT]
    assert used == pytest.approx([0.1 * (1 - i / 20) for i in real], rel=1e-12)


def test_plateau_metric_on_a_skipped_update_is_taken() -> None:
    p = torch.nn.Parameter(torch.ones(1))
    opt = torch.optim.SGD([p], lr=1.0)
    s = LRScheduler(opt, Plateau(factor=0.5, patience=0, every=2), skipped="skip")
    p.grad = torch.ones(1)
    opt.step()
    s.step()
    s.step(1.0)  # no optimizer.step() since: the schedule stays at 1, the metric counts
    assert s.last_epoch == 1
    opt.step()
    s.step()
    s.step(2.0)  # worse: a reduction (patience 0)
    assert s.last_epoch == 2
    assert opt.param_groups[0]["lr"] == 0.5


def test_skipped_policy_is_checked() -> None:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=1.0)
    with pytest.raises(ConfigError, match=r"skipped='never' is invalid: expected one of"):
        LRScheduler(opt, Linear(10), skipped="never")
