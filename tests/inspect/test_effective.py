"""Ground truth: a real optimizer.step() moves each element by -rate * direction (+ decay).

The direction is typed here from the optimizer's state after the step, the parameters before
it and the gradient (independently of lrkit); the rate comes from lrkit. Their product must
equal the measured parameter change element by element.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch

from lrkit.inspect import (
    SUPPORTED_OPTIMIZERS,
    NoStatisticsError,
    UnsupportedOptimizerError,
    effective_rates,
    last_update,
)

DT = torch.float64
WARM = 6  # steps before the checked one, so the bias corrections are far from 1 and 0

_IMPLS = {"loop": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}
_FUSED = {"Adam", "AdamW", "Adagrad", "SGD"}

_OPTIONS: dict[str, list[dict[str, Any]]] = {
    "Adam": [
        {},
        {"amsgrad": True},
        {"maximize": True},
        {"weight_decay": 0.1},
        {"weight_decay": 0.1, "decoupled_weight_decay": True},
        {"amsgrad": True, "maximize": True, "weight_decay": 0.05},
        {"betas": (0.8, 0.95), "eps": 1e-3},
    ],
    "AdamW": [{}, {"amsgrad": True}, {"maximize": True, "weight_decay": 0.2}],
    "NAdam": [
        {},
        {"weight_decay": 0.1},
        {"weight_decay": 0.1, "decoupled_weight_decay": True},
        {"maximize": True, "momentum_decay": 0.01},
    ],
    "RAdam": [
        {},
        {"weight_decay": 0.1},
        {"weight_decay": 0.1, "decoupled_weight_decay": True},
        {"maximize": True},
        {"betas": (0.9, 0.9)},  # rho_t > 5 sooner: both branches across the warm-up counts
    ],
    "Adamax": [{}, {"weight_decay": 0.1}, {"maximize": True}],
    "RMSprop": [
        {},
        {"centered": True},
        {"momentum": 0.9},
        {"centered": True, "momentum": 0.5},
        {"weight_decay": 0.1},
        {"maximize": True, "weight_decay": 0.1, "momentum": 0.3},
    ],
    "Adagrad": [
        {},
        {"lr_decay": 0.1},
        {"weight_decay": 0.1},
        {"maximize": True, "initial_accumulator_value": 0.5},
    ],
    "SGD": [
        {},
        {"momentum": 0.9},
        {"momentum": 0.9, "dampening": 0.3},
        {"momentum": 0.9, "nesterov": True},
        {"weight_decay": 0.1},
        {"momentum": 0.5, "nesterov": True, "weight_decay": 0.1, "maximize": True},
    ],
}


def _cases() -> list[Any]:
    out = []
    for name, options in _OPTIONS.items():
        for impl, ikw in _IMPLS.items():
            if impl == "fused" and name not in _FUSED:
                continue
            for i, opt in enumerate(options):
                for tensor_lr in (False, True):
                    if tensor_lr and impl == "foreach":
                        continue  # torch: a tensor lr with foreach needs capturable
                    tag = f"{name}-{impl}-{i}{'-tlr' if tensor_lr else ''}"
                    out.append(pytest.param(name, {**ikw, **opt}, tensor_lr, id=tag))
    return out


def _setup(name: str, kw: dict[str, Any], tensor_lr: bool) -> tuple[Any, list[torch.Tensor]]:
    gen = torch.Generator().manual_seed(0)
    params = [
        torch.nn.Parameter(torch.randn(6, 5, generator=gen, dtype=DT)),
        torch.nn.Parameter(torch.randn(5, generator=gen, dtype=DT)),
        torch.nn.Parameter(torch.randn(3, 4, generator=gen, dtype=DT)),
    ]
    lr0, lr1 = (0.01, 0.03) if name != "SGD" else (0.1, 0.2)
    lr: Any = torch.tensor(lr0, dtype=DT) if tensor_lr else lr0
    groups = [{"params": params[:2], "lr": lr}, {"params": params[2:], "lr": lr1}]
    opt = getattr(torch.optim, name)(groups, **kw)
    return opt, params


def _grads(params: list[torch.Tensor], gen: torch.Generator) -> None:
    for p in params:  # gradients spanning several orders of magnitude
        p.grad = torch.randn(p.shape, generator=gen, dtype=DT) * 10 ** (
            torch.rand(p.shape, generator=gen, dtype=DT) * 4 - 2
        )


def _direction(name: str, group: dict[str, Any], st: dict[str, Any], old: dict[str, Any],
               p_old: torch.Tensor, grad: torch.Tensor, rate: torch.Tensor) -> torch.Tensor:
    """The optimizer's numerator, typed from torch's documented algorithms."""
    wd = group["weight_decay"]
    decoupled = name == "AdamW" or group.get("decoupled_weight_decay", False)
    g = -grad if group["maximize"] else grad
    if wd and not decoupled:
        g = g + wd * p_old
    if name in ("Adam", "AdamW", "RAdam", "Adamax"):
        t = float(st["step"])
        return st["exp_avg"] / (1 - group["betas"][0] ** t)
    if name == "NAdam":
        t = float(st["step"])
        b1, psi = group["betas"][0], group["momentum_decay"]
        mu = b1 * (1 - 0.5 * 0.96 ** (t * psi))
        mu1 = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * psi))
        prod = float(st["mu_product"])
        return (1 - mu) / (1 - prod) * g + mu1 / (1 - prod * mu1) * st["exp_avg"]
    if name == "RMSprop":
        if group["momentum"]:  # b_t = mu b_{t-1} + g/denom; update -lr b_t
            lr = group["lr"]
            return lr * group["momentum"] * old["momentum_buffer"] / rate + g
        return g
    if name == "Adagrad":
        return g
    if name == "SGD":
        if not group["momentum"]:
            return g
        buf = st["momentum_buffer"]
        return g + group["momentum"] * buf if group["nesterov"] else buf
    raise AssertionError(name)


@pytest.mark.parametrize(("name", "kw", "tensor_lr"), _cases())
def test_step_matches_prediction(name: str, kw: dict[str, Any], tensor_lr: bool) -> None:
    opt, params = _setup(name, kw, tensor_lr)
    gen = torch.Generator().manual_seed(1)
    for _ in range(WARM):
        _grads(params, gen)
        opt.step()
    _grads(params, gen)
    p_old = [p.detach().clone() for p in params]
    grads = [p.grad.clone() for p in params]  # foreach nesterov SGD overwrites .grad
    old_state = copy.deepcopy({i: opt.state[p] for i, p in enumerate(params)})
    opt.step()

    rates = effective_rates(opt)
    assert [r.param for r in rates] == params
    derived = dict(last_update(opt))
    for i, (p, pr) in enumerate(zip(params, rates, strict=True)):
        group = opt.param_groups[pr.group]
        delta = p.detach() - p_old[i]
        d = _direction(name, group, opt.state[p], old_state[i], p_old[i], grads[i], pr.rate)
        decoupled = name == "AdamW" or group.get("decoupled_weight_decay", False)
        lam = group["weight_decay"] if decoupled else 0.0
        predicted = -pr.rate * d - float(group["lr"]) * lam * p_old[i]
        torch.testing.assert_close(predicted, delta, rtol=1e-9, atol=1e-13)
        torch.testing.assert_close(derived[p], delta, rtol=1e-9, atol=1e-13)
        assert bool((pr.rate > 0).all())


def test_radam_both_branches() -> None:
    """Early RAdam steps are SGD-like (uniform rate lr), later ones rectified."""
    p = torch.nn.Parameter(torch.ones(4, dtype=DT))
    opt = torch.optim.RAdam([p], lr=0.1)
    seen = set()
    for t in range(1, 9):
        p.grad = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=DT)
        opt.step()
        rate = effective_rates(opt)[0].rate
        b2 = 0.999
        rho_inf = 2 / (1 - b2) - 1
        rho = rho_inf - 2 * t * b2**t / (1 - b2**t)
        seen.add(rho > 5)
        if rho <= 5:
            assert rate.dim() == 0
            assert float(rate) == pytest.approx(0.1)
        else:
            assert rate.shape == (4,)
            assert len(set(rate.tolist())) == 4
    assert seen == {True, False}


def test_adam_rate_formula_typed() -> None:
    """Adam: lr / (sqrt(v / (1 - b2^t)) + eps), typed here for a constant gradient."""
    p = torch.nn.Parameter(torch.zeros(3, dtype=DT))
    opt = torch.optim.Adam([p], lr=0.5, betas=(0.9, 0.99), eps=1e-3)
    g = torch.tensor([0.1, 1.0, 10.0], dtype=DT)
    for _ in range(4):
        p.grad = g.clone()
        opt.step()
    v = (1 - 0.99**4) * g**2  # sum_k (1-b2) b2^k g^2
    want = 0.5 / (torch.sqrt(v / (1 - 0.99**4)) + 1e-3)
    torch.testing.assert_close(effective_rates(opt)[0].rate, want)


def test_unsupported_lists_supported() -> None:
    p = torch.nn.Parameter(torch.ones(2))
    with pytest.raises(UnsupportedOptimizerError, match=r"supported: torch\.optim\.Adam") as info:
        effective_rates(torch.optim.LBFGS([p]))
    for name in SUPPORTED_OPTIMIZERS:
        assert name in str(info.value)


@pytest.mark.parametrize("name", ["Adam", "AdamW", "NAdam", "RAdam", "Adamax", "RMSprop",
                                  "Adagrad"])
def test_no_statistics_before_first_step(name: str) -> None:
    p = torch.nn.Parameter(torch.ones(2))
    opt = getattr(torch.optim, name)([p])
    with pytest.raises(NoStatisticsError, match="no statistics yet"):
        effective_rates(opt)


def test_sgd_before_first_step() -> None:
    p = torch.nn.Parameter(torch.ones(2))
    assert float(effective_rates(torch.optim.SGD([p], lr=0.3))[0].rate) == pytest.approx(0.3)
    with pytest.raises(NoStatisticsError):
        effective_rates(torch.optim.SGD([p], lr=0.3, momentum=0.9))


def test_derived_update_needs_grad() -> None:
    p = torch.nn.Parameter(torch.ones(2))
    opt = torch.optim.Adagrad([p])
    p.grad = torch.ones(2)
    opt.step()
    opt.zero_grad()
    with pytest.raises(NoStatisticsError, match=r"param\.grad"):
        last_update(opt)
