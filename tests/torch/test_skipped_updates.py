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


@pytest.mark.parametrize("skipped", ["skip", "count"])
def test_skipped_updates_keep_the_metric_cadence(skipped: str) -> None:
    # was (skip): "ConfigError: expected no metric at step 4 ... (Plateau.every)" as soon as
    # the real GradScaler skipped an update mid-epoch
    p = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.SGD([p], lr=0.1)
    per_epoch, inf_at = 5, {1, 7, 8}
    sched = LRScheduler(opt, Plateau(Linear(100), factor=0.5, patience=0, every=per_epoch),
                        skipped=skipped)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**8)
    metrics = [1.0, 2.0, 0.5]  # better, worse (reduce: patience 0), better
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for epoch, metric in enumerate(metrics):
            for b in range(per_epoch):
                i = epoch * per_epoch + b
                opt.zero_grad()
                scaler.scale((p * (float("inf") if i in inf_at else 1.0)).sum()).backward()
                scaler.step(opt)
                scaler.update()
                sched.step(metric if b == per_epoch - 1 else None)
    assert scaler.get_scale() < 2.0**8
    steps = 15 - len(inf_at) if skipped == "skip" else 15
    assert sched.last_epoch == steps
    assert opt.param_groups[0]["lr"] == pytest.approx(0.5 * 0.1 * (1 - steps / 100), rel=1e-12)
    # a metric off the cadence is still refused, and changes nothing
    with pytest.raises(ConfigError, match=r"every 5 steps only \(Plateau.every\)"):
        sched.step(1.0)
    assert sched.last_epoch == steps
    # the cadence survives a save and load
    opt2 = torch.optim.SGD([torch.nn.Parameter(torch.ones(3))], lr=0.1)
    again = LRScheduler(opt2, Plateau(Linear(100), factor=0.5, patience=0, every=per_epoch),
                        skipped=skipped)
    again.load_state_dict(sched.state_dict())
    for _ in range(per_epoch - 1):
        again.step()
    again.step(0.1)


def test_skipped_policy_is_checked() -> None:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=1.0)
    with pytest.raises(ConfigError, match=r"skipped='never' is invalid: expected one of"):
        LRScheduler(opt, Linear(10), skipped="never")
