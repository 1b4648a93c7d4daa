"""Differential tests: lrkit schedules against the real PyTorch schedulers.

Each test steps a torch scheduler over many seeded random configurations and compares the
rate it writes into the optimizer with the lrkit schedule evaluated at the same steps
(``base`` = the optimizer's lr): relative difference <= 1e-12 wherever torch is right.
Where torch's recursive ("chainable") form drifts or misbehaves the test says so and checks
that the misbehaviour exists and that lrkit follows the closed form instead.
"""

from __future__ import annotations

import functools
import math
import random
import warnings
from collections.abc import Callable
from typing import Any, cast

import numpy as np
import pytest
import torch
from torch.optim import lr_scheduler as L

from lrkit.schedules import (
    Constant,
    Cosine,
    CosineRestarts,
    Cyclic,
    Exponential,
    Linear,
    MultiStep,
    OneCycle,
    Poly,
    Rel,
    StepDecay,
    Warmup,
)

RTOL = 1e-12
N_CONFIGS = 12


def _optimizer(lr: float, kind: str = "sgd") -> torch.optim.Optimizer:
    params = [torch.nn.Parameter(torch.zeros(1))]
    if kind == "adam":
        return torch.optim.Adam(params, lr=lr)
    return torch.optim.SGD(params, lr=lr, momentum=0.9)


def _trace(
    make: Callable[[torch.optim.Optimizer], Any], steps: int, lr: float, kind: str = "sgd"
) -> tuple[np.ndarray, np.ndarray]:
    """The lr (and momentum / beta1) each of ``steps`` updates uses under torch."""
    opt = _optimizer(lr, kind)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "step() before optimizer.step()": no updates here
        sched = make(opt)
        lrs, moms = [], []
        for _ in range(steps):
            group = opt.param_groups[0]
            lrs.append(group["lr"])
            moms.append(group["betas"][0] if "betas" in group else group["momentum"])
            sched.step()
    return np.asarray(lrs), np.asarray(moms)


def _close(ours: np.ndarray, theirs: np.ndarray, rtol: float = RTOL) -> None:
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=0.0)


def _rng(name: str) -> random.Random:
    return random.Random(f"parity-{name}")


def test_step_lr() -> None:
    rng = _rng("step")
    for _ in range(N_CONFIGS):
        lr, size, gamma = rng.uniform(1e-4, 1.0), rng.randint(1, 50), rng.uniform(0.05, 1.0)
        theirs, _ = _trace(lambda o: L.StepLR(o, size, gamma), 600, lr)  # noqa: B023
        _close(StepDecay(size, gamma)(np.arange(600.0), base=lr), theirs)


def test_multistep_lr_with_repeated_milestones() -> None:
    rng = _rng("multistep")
    for _ in range(N_CONFIGS):
        lr, gamma = rng.uniform(1e-4, 1.0), rng.uniform(0.05, 1.0)
        ms = sorted(rng.choices(range(0, 300), k=rng.randint(1, 5)))
        ms.append(ms[-1])  # a repeated milestone applies gamma twice in torch and lrkit
        theirs, _ = _trace(lambda o: L.MultiStepLR(o, ms, gamma), 400, lr)  # noqa: B023
        _close(MultiStep(tuple(ms), gamma)(np.arange(400.0), base=lr), theirs)


def test_exponential_lr() -> None:
    """torch multiplies recursively (lr *= gamma): its drift stays far below 1e-12 here."""
    rng = _rng("exp")
    for _ in range(N_CONFIGS):
        lr, gamma = rng.uniform(1e-4, 1.0), rng.uniform(0.99, 1.0)
        theirs, _ = _trace(lambda o: L.ExponentialLR(o, gamma), 1000, lr)  # noqa: B023
        _close(Exponential(gamma)(np.arange(1000.0), base=lr), theirs)


def test_cosine_annealing_lr_up_to_t_max_then_torch_climbs_back() -> None:
    rng = _rng("cosine")
    for _ in range(N_CONFIGS):
        lr, t_max = rng.uniform(1e-4, 1.0), rng.randint(1, 800)
        eta_min = rng.choice([0.0, rng.uniform(0.0, lr)])
        n = 2 * t_max + 2
        theirs, _ = _trace(lambda o: L.CosineAnnealingLR(o, t_max, eta_min), n, lr)  # noqa: B023
        ours = Cosine(t_max, end=eta_min)(np.arange(float(n)), base=lr)
        # torch's recursive form tracks the closed form over [0, T_max] ...
        _close(ours[: t_max + 1], theirs[: t_max + 1])
        # ... then climbs back up (it is periodic with period 2 T_max); lrkit holds eta_min
        assert np.all(ours[t_max:] == eta_min)
        if lr - eta_min > 1e-6:
            assert theirs[2 * t_max] > eta_min + 0.99 * (lr - eta_min)


@pytest.mark.parametrize("which", ["linear", "exp", "cosine"])
def test_chainable_form_drifts_and_lrkit_does_not(which: str) -> None:
    """torch's recursive ("chainable") forms multiply the previous lr by a ratio each step,
    so rounding accumulates: over 10^4 steps they stray 1e-15..1e-13 from their closed form
    (below the 1e-12 parity tolerance, but growing with the horizon). lrkit evaluates the
    closed form and stays within an ulp or two of it at every step."""
    n = 10_000
    k = np.arange(float(n))
    if which == "linear":
        theirs, _ = _trace(lambda o: L.LinearLR(o, 0.01, 1.0, n), n, 1.0)
        exact = 0.01 + (1.0 - 0.01) * k / n
        ours = Linear(n, Rel(0.01), Rel(1.0))(k)
    elif which == "exp":
        theirs, _ = _trace(lambda o: L.ExponentialLR(o, 0.9999), n, 1.0)
        exact = np.asarray([0.9999**i for i in range(n)])
        ours = Exponential(0.9999)(k)
    else:
        theirs, _ = _trace(lambda o: L.CosineAnnealingLR(o, n, 0.01), n, 1.0)
        exact = np.asarray([0.01 + 0.99 * (1 + math.cos(i / n * math.pi)) / 2 for i in range(n)])
        ours = Cosine(n, end=0.01)(k)
    ours_err = float(np.max(np.abs(ours - exact) / exact))
    torch_err = float(np.max(np.abs(theirs - exact) / exact))
    assert ours_err <= 4e-16
    assert torch_err > max(10 * ours_err, 1e-15)  # the drift exists ...
    assert torch_err < RTOL  # ... and stays inside the parity tolerance at this length


def test_polynomial_lr() -> None:
    rng = _rng("poly")
    for _ in range(N_CONFIGS):
        lr, total, power = rng.uniform(1e-4, 1.0), rng.randint(1, 500), rng.uniform(0.2, 3.0)
        n = total + 20
        theirs, _ = _trace(lambda o: L.PolynomialLR(o, total, power), n, lr)  # noqa: B023
        ours = Poly(total, power)(np.arange(float(n)), base=lr)
        _close(ours[:total], theirs[:total], rtol=1e-11)
        assert np.all(ours[total:] == 0.0)
        assert np.all(theirs[total:] == 0.0)


def test_linear_lr() -> None:
    rng = _rng("linear")
    for _ in range(N_CONFIGS):
        lr, total = rng.uniform(1e-4, 1.0), rng.randint(1, 500)
        a, b = rng.uniform(0.01, 1.0), rng.uniform(0.01, 1.0)
        n = total + 20
        theirs, _ = _trace(lambda o: L.LinearLR(o, a, b, total), n, lr)  # noqa: B023
        _close(Linear(total, Rel(a), Rel(b))(np.arange(float(n)), base=lr), theirs)


def test_constant_lr() -> None:
    rng = _rng("constant")
    for _ in range(N_CONFIGS):
        lr, total, factor = rng.uniform(1e-4, 1.0), rng.randint(1, 100), rng.uniform(0.01, 1.0)
        theirs, _ = _trace(lambda o: L.ConstantLR(o, factor, total), total + 20, lr)  # noqa: B023
        ours = Warmup(Constant(), total, start=Rel(factor), shape="constant")
        _close(ours(np.arange(total + 20.0), base=lr), theirs)


def test_cosine_annealing_warm_restarts() -> None:
    rng = _rng("sgdr")
    for _ in range(N_CONFIGS):
        lr, t0, mult = rng.uniform(1e-4, 1.0), rng.randint(1, 30), rng.randint(1, 3)
        eta_min = rng.choice([0.0, rng.uniform(0.0, lr)])
        make = lambda o: L.CosineAnnealingWarmRestarts(o, t0, mult, eta_min)  # noqa: B023,E731
        theirs, _ = _trace(make, 1500, lr)
        _close(CosineRestarts(t0, mult, end=eta_min)(np.arange(1500.0), base=lr), theirs)


def test_cosine_annealing_warm_restarts_epoch_form_misplaces_a_restart() -> None:
    """torch's ``step(epoch)`` finds the cycle with ``int(math.log(...))``, which rounds
    ``log_3(243) = 4.999...`` down: at step 121 (the start of cycle 5 with T_0=1,
    T_mult=3) it reports the end of cycle 4 (eta_min) instead of the restart (the peak)."""
    assert int(math.log(121 * 2 + 1, 3)) == 4  # the rounding itself
    opt = _optimizer(1.0)
    sched = L.CosineAnnealingWarmRestarts(opt, T_0=1, T_mult=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sched.step(121)
    assert opt.param_groups[0]["lr"] == 0.0  # torch: wrong cycle
    s = CosineRestarts(period=1, period_mult=3)
    assert s.cycle_start(5) == 121.0
    assert s(121) == 1.0
    assert s(120) < 1e-3


@pytest.mark.parametrize("mode", ["triangular", "triangular2", "exp_range"])
def test_cyclic_lr_and_momentum(mode: str) -> None:
    rng = _rng(f"cyclic-{mode}")
    for _ in range(N_CONFIGS):
        low, high = rng.uniform(1e-4, 0.1), rng.uniform(0.1, 1.0)
        up = rng.choice([rng.randint(1, 60), rng.uniform(1.0, 60.0)])
        down = rng.choice([None, rng.randint(1, 60), rng.uniform(1.0, 60.0)])
        gamma = rng.uniform(0.99, 1.0)
        mlo, mhi = rng.uniform(0.7, 0.85), rng.uniform(0.85, 0.99)
        make = functools.partial(
            cast(Any, L.CyclicLR),
            base_lr=low,
            max_lr=high,
            step_size_up=up,
            step_size_down=down,
            mode=mode,
            gamma=gamma,
            base_momentum=mlo,
            max_momentum=mhi,
        )
        theirs, mom = _trace(make, 800, 1.0)
        t = np.arange(800.0)
        _close(Cyclic(low, high, up, down, mode, gamma)(t), theirs)
        # the momentum cycle is the same shape from max_momentum towards base_momentum
        _close(Cyclic(mhi, mlo, up, down, mode, gamma)(t), mom)


@pytest.mark.parametrize("three_phase", [False, True])
@pytest.mark.parametrize("anneal", ["cos", "linear"])
@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_one_cycle_lr_and_momentum(three_phase: bool, anneal: str, kind: str) -> None:
    rng = _rng(f"onecycle-{three_phase}-{anneal}-{kind}")
    for _ in range(N_CONFIGS // 2):
        total = rng.randint(20, 1500)
        pct = rng.uniform(0.1, 0.45)
        max_lr, div, fdiv = rng.uniform(1e-3, 1.0), rng.uniform(2.0, 50.0), rng.uniform(2.0, 1e4)
        mlo, mhi = rng.uniform(0.7, 0.85), rng.uniform(0.85, 0.99)
        make = functools.partial(
            cast(Any, L.OneCycleLR),
            max_lr=max_lr,
            total_steps=total,
            pct_start=pct,
            anneal_strategy=anneal,
            div_factor=div,
            final_div_factor=fdiv,
            three_phase=three_phase,
            base_momentum=mlo,
            max_momentum=mhi,
        )
        theirs, mom = _trace(make, total, 0.123, kind)
        s = OneCycle(total, Rel(1.0), pct, div, fdiv, anneal, three_phase)
        t = np.arange(float(total))
        ours = s(t, base=max_lr)  # the optimizer's own lr is ignored by torch (max_lr rules)
        if anneal == "linear":
            # torch's linear anneal ends a phase at (b - a) * 1 + a, which can miss b by an
            # ulp of a; lrkit lands on b exactly. Compare the last step against a's ulp.
            final = max_lr / div / fdiv
            assert ours[-1] == final
            assert abs(theirs[-1] - final) <= 4 * np.spacing(max_lr)
            ours, theirs = ours[:-1], theirs[:-1]
        _close(ours, theirs)
        _close(s.momentum(mlo, mhi)(t), mom)


def test_one_cycle_lr_past_total_steps() -> None:
    """torch extrapolates at step T (its last phase's fraction passes 1) and raises after;
    lrkit reaches the final value at step T - 1 and holds it."""
    total, max_lr = 100, 1.0
    opt = _optimizer(0.1)
    sched = L.OneCycleLR(opt, max_lr, total_steps=total)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(total):
            sched.step()
        at_t = opt.param_groups[0]["lr"]
        with pytest.raises(ValueError, match="Tried to step"):
            sched.step()
    s = OneCycle(total, max_lr)
    final = max_lr / 25.0 / 1e4
    assert at_t > final  # the cosine climbs back past its end
    assert s(total - 1) == s(total) == s(10 * total) == final
