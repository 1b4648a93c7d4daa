"""The update rules of torch's eight classic optimizers, path by path, as torch rounds them.

Each rule returns ``(rate, grad_coef, rest)`` for one parameter (definitions:
:mod:`lrkit.inspect.effective`). torch computes the per-step *scalars* (bias corrections,
step sizes, NAdam's momentum cache, RAdam's rectification) differently on its paths:

* the single-tensor and foreach paths without ``capturable`` read the step as a Python float
  and compute the scalars in float64 (``_get_value``); so does the fused kernel;
* ``capturable=True`` (and, for Adam/AdamW, ``differentiable=True``; for NAdam's momentum
  product, ``differentiable=True``) computes them with tensor operations on the step tensor,
  in its dtype: float32 unless the default dtype is float64.

Every rule below recomputes the scalars with the very operations, in the very order and dtype,
of the path torch takes, so they are bit-identical to torch's; only the final per-element
products are associated differently (rate times direction), which costs a few units in the
last place of the parameter's dtype (``docs/effective_lr.md`` states the tested bound).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

Scalar = float | Tensor


class NoStatisticsError(RuntimeError):
    """The optimizer has no statistics yet (no ``optimizer.step()`` has been taken)."""


@dataclass(frozen=True)
class RuleOut:
    """What a rule found for one parameter, beyond ``(rate, grad_coef, rest)``.

    ``decoupled`` overrides the group's decoupled decay coefficient (``lr * weight_decay``);
    ``coupled`` the coupled one; ``update`` computes the last change itself (optimizers whose
    change is not ``-rate * direction - decay * p_old``); ``info`` holds the per-optimizer
    quantities a per-element rate does not capture (Muon's adjusted rate, Prodigy's ``d``).
    """

    rate: Tensor
    grad_coef: Scalar | None
    rest: Tensor | None
    decoupled: Scalar | None = None
    coupled: float | None = None
    update: Callable[[], Tensor] | None = None
    info: dict[str, Any] = field(default_factory=dict)


RuleResult = tuple[Tensor, "Scalar | None", "Tensor | None"] | RuleOut

__all__ = [
    "RULES",
    "NoStatisticsError",
    "RuleOut",
    "RuleResult",
    "Scalar",
    "_Ctx",
    "uses_foreach",
]


@dataclass(frozen=True)
class _Ctx:
    group: dict[str, Any]
    state: dict[str, Any]  # complex tensors already viewed as real
    param: Tensor  # the real view of a complex parameter
    lr: Scalar
    sign: float
    grad: Tensor | None  # dense, real view; None when absent
    pre: dict[str, Any] | None = None  # the group as it was before the last step (track())
    pre_state: dict[str, Any] | None = None  # this parameter's scalars before the last step
    grad_mask: Tensor | None = None  # a sparse gradient's support (bool), else None


def _need(state: dict[str, Any], *keys: str) -> None:
    missing = [k for k in keys if k not in state]
    if missing:
        raise NoStatisticsError(f"no statistics yet: optimizer state lacks {missing}")
    step = state.get("step")
    if isinstance(step, Tensor) and step.device.type == "cpu" and float(step) == 0.0:
        raise NoStatisticsError("no statistics yet: step is 0")  # Adagrad's state exists early


def _float_step(state: dict[str, Any]) -> Scalar:
    """The step as torch's non-capturable paths read it (``.item()``; a tensor off-host)."""
    step = state["step"]
    if isinstance(step, Tensor):
        return float(step) if step.device.type == "cpu" else step.to(torch.float64)
    return float(step)


def _foreach_devices() -> list[str]:
    import torch.optim.optimizer as base

    f = getattr(base, "_get_foreach_kernels_supported_devices", None)
    return list(f()) if f is not None else ["cuda"]


def uses_foreach(group: dict[str, Any], p: Tensor, *, differentiable_blocks: bool = True) -> bool:
    """Whether torch runs the foreach implementation for this group (its default rule)."""
    if group.get("fused"):
        return False
    foreach = group.get("foreach")
    if foreach is not None:
        return bool(foreach)
    if differentiable_blocks and group.get("differentiable"):
        return False
    return type(p) in (Tensor, torch.nn.Parameter) and p.device.type in _foreach_devices()


def _tensor_step(c: _Ctx) -> Tensor | None:
    """The step tensor when torch's path computes with it (capturable), else ``None``."""
    step = c.state["step"]
    if c.group.get("capturable") and not c.group.get("fused") and isinstance(step, Tensor):
        return step
    return None


def _raw_lr(group: dict[str, Any]) -> Scalar:
    lr = group["lr"]
    if isinstance(lr, Tensor):
        lr = lr.detach()
        return lr.reshape(()) if lr.numel() == 1 else lr
    return float(lr)


def _adam(c: _Ctx) -> RuleResult:
    g, s = c.group, c.state
    _need(s, "step", "exp_avg", "exp_avg_sq")
    b1, b2 = g["betas"]
    eps = g["eps"]
    v = s["max_exp_avg_sq"] if g.get("amsgrad", False) else s["exp_avg_sq"]
    m = s["exp_avg"]
    step = s["step"]
    tensor_path = isinstance(step, Tensor) and not g.get("fused") and (
        g.get("capturable") or g.get("differentiable")
    )
    if tensor_path and uses_foreach(g, c.param):  # _multi_tensor_adam, capturable
        lr = _raw_lr(g)
        bc1n = torch.pow(b1, step) - 1  # beta1^t - 1 = -(bias correction 1)
        ss = torch.reciprocal(bc1n / lr)  # -lr / (1 - beta1^t)
        bc2s = (torch.pow(b2, step) - 1).neg_().sqrt_()
        den = v.sqrt().div_(bc2s).add_(eps)  # torch then divides by ss: delta = m / (den/ss)
        return torch.reciprocal(den).mul_(ss).mul_(bc1n), None, m / bc1n.neg()
    if tensor_path:  # _single_tensor_adam, capturable or differentiable
        lr = _raw_lr(g)
        bc1 = 1 - b1**step
        bc2 = 1 - b2**step
        ssn = (lr / bc1).neg()
        big = bc2.sqrt() * ssn
        d = v.sqrt().div_(big).add_(eps / ssn)  # torch's (negative) denominator
        return torch.reciprocal(d.neg_()).mul_(bc1), None, m / bc1
    t = _float_step(s)
    denom = v.sqrt().div_((1 - b2**t) ** 0.5).add_(eps)  # in place: one fresh tensor, not 3
    return denom.reciprocal_().mul_(c.lr), None, m / (1 - b1**t)


def _nadam_mu(beta1: float, k: Scalar, psi: float) -> Scalar:
    return beta1 * (1.0 - 0.5 * (0.96 ** (k * psi)))


def _per_lr(k: Scalar, lr: Scalar, fallback: Scalar, dtype: torch.dtype) -> Scalar:
    """``-k / lr``: a step size of torch's divided back into a coefficient of the rate."""
    if isinstance(k, Tensor):
        k = k.to(dtype)  # the division must not round to the step's float32
    if isinstance(lr, Tensor) or lr != 0:
        return -k / lr
    return fallback


def _nadam(c: _Ctx) -> RuleResult:
    g, s = c.group, c.state
    _need(s, "step", "exp_avg", "exp_avg_sq", "mu_product")
    b1, b2 = g["betas"]
    psi, eps, lr = g["momentum_decay"], g["eps"], _raw_lr(g)
    v, m, prod = s["exp_avg_sq"], s["exp_avg"], s["mu_product"]
    tstep = _tensor_step(c)
    if uses_foreach(g, c.param):
        if tstep is not None:
            expo = tstep * psi
            mu = (torch.pow(0.96, expo) * -0.5 + 1.0) * b1
            mu_next = (torch.pow(0.96, expo + psi) * -0.5 + 1.0) * b1
            bcs = (torch.pow(b2, tstep) - 1.0).neg_().sqrt_()
            k1: Scalar = ((mu - 1.0) * lr) / (prod - 1.0).neg()
            k2: Scalar = (mu_next * lr) / (prod * mu_next - 1.0)
        else:
            t = _float_step(s)
            fp = float(prod) if prod.device.type == "cpu" else prod
            bcs = (1 - b2**t) ** 0.5
            mu, mu_next = _nadam_mu(b1, t, psi), _nadam_mu(b1, t + 1, psi)
            k1 = (c.lr * (1.0 - mu) / (1.0 - fp)) * -1
            k2 = (c.lr * mu_next / (1.0 - fp * mu_next)) * -1
        denom = v.sqrt().div_(bcs).add_(eps)
    else:
        step: Scalar = tstep if tstep is not None else _float_step(s)
        mu, mu_next = _nadam_mu(b1, step, psi), _nadam_mu(b1, step + 1, psi)
        denom = v.div(1 - b2**step).sqrt_().add_(eps)
        if g.get("differentiable") or tstep is not None:
            k1 = -lr * (1.0 - mu) / (1.0 - prod)
            k2 = -lr * mu_next / (1.0 - prod * mu_next)
        else:
            fp = float(prod) if prod.device.type == "cpu" else prod
            k1 = -c.lr * (1.0 - mu) / (1.0 - fp)
            k2 = (-c.lr * mu_next) / (1.0 - fp * mu_next)
    fp = float(prod) if prod.device.type == "cpu" else prod
    mu_f = _nadam_mu(b1, _float_step(s), psi)
    mu_nf = _nadam_mu(b1, _float_step(s) + 1, psi)
    gc = _per_lr(k1, c.lr, (1.0 - mu_f) / (1.0 - fp), v.dtype)
    rc = _per_lr(k2, c.lr, mu_nf / (1.0 - fp * mu_nf), v.dtype)
    return torch.reciprocal(denom).mul_(c.lr), gc, m * rc


def _radam(c: _Ctx) -> RuleResult:
    g, s = c.group, c.state
    _need(s, "step", "exp_avg", "exp_avg_sq")
    b1, b2 = g["betas"]
    eps, lr = g["eps"], _raw_lr(g)
    v, m = s["exp_avg_sq"], s["exp_avg"]
    rho_inf = 2 / (1 - b2) - 1
    tstep = _tensor_step(c)
    if uses_foreach(g, c.param):  # delta = m * (1 / ((sqrt(v) + eps) / S2) + U)
        if tstep is not None:
            bc2 = torch.pow(b2, tstep).neg_().add_(1)
            rho = (torch.pow(b2, tstep) * tstep * 2).div_(bc2).neg_().add_(rho_inf)
            num = (rho - 4) * (rho - 2) * rho_inf
            rect = num.div_(rho * ((rho_inf - 4) * (rho_inf - 2))).sqrt_()
            rect = torch.where(rho > 5.0, rect, 0.0)
            unrect = torch.where(rect > 0, 0.0, 1.0) * lr
            bc1: Scalar = torch.pow(b1, tstep).neg_().add_(1)
            u: Scalar = (unrect / bc1).neg_()
            s2: Scalar = (bc2.sqrt() * lr * rect).neg_() / bc1
        else:
            t = _float_step(s)
            rho_f = rho_inf - 2 * t * (b2**t) / (1 - b2**t)
            rect_f = (
                ((rho_f - 4) * (rho_f - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_f))
                ** 0.5
                if rho_f > 5
                else 0
            )
            bc1 = 1 - b1**t
            u = (lr * (0 if rect_f > 0 else 1.0) / bc1) * -1
            s2 = ((1 - b2**t) ** 0.5) * (lr * rect_f / bc1) * -1
        buf = torch.reciprocal(v.sqrt().add_(eps).div_(s2)).add_(u)
        return buf.mul_(-bc1), None, m / bc1
    if tstep is not None:  # _single_tensor_radam, capturable
        bc1 = 1 - b1**tstep
        bc2 = 1 - b2**tstep
        rho = rho_inf - 2 * tstep * (b2**tstep) / bc2
        rect = ((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho)) ** 0.5
        adaptive = (bc2**0.5) / v.sqrt().add(eps)
        update = torch.where(rho > 5.0, rect * adaptive, 1.0)
        return update * lr, None, m / bc1
    t = _float_step(s)
    bc2f = 1 - b2**t
    rho_t = rho_inf - 2 * t * (b2**t) / bc2f
    rest = m / (1 - b1**t)
    if isinstance(rho_t, float) and rho_t <= 5.0:
        return torch.as_tensor(c.lr, dtype=v.dtype, device=v.device), None, rest
    rho_c = rho_t.clamp(min=5.0 + 1e-6) if isinstance(rho_t, Tensor) else rho_t
    rect_t = ((rho_c - 4) * (rho_c - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_c)) ** 0.5
    rate = torch.reciprocal(v.sqrt().add_(eps)).mul_(bc2f**0.5).mul_(rect_t).mul_(c.lr)
    if isinstance(rho_t, Tensor):  # device step: both branches, no host sync
        rate = torch.where(rho_t > 5.0, rate, torch.as_tensor(c.lr, dtype=v.dtype))
    return rate, None, rest


def _adamax(c: _Ctx) -> RuleResult:
    g, s = c.group, c.state
    _need(s, "step", "exp_avg", "exp_inf")
    b1 = g["betas"][0]
    u, m = s["exp_inf"], s["exp_avg"]
    tstep = _tensor_step(c)
    if tstep is not None:  # both paths: delta = m / (u * ((beta1^t - 1) / lr))
        nbc = (b1**tstep - 1) / _raw_lr(g)
        bc1 = (b1**tstep - 1).neg()
        return torch.reciprocal(u * nbc.neg()).mul_(bc1), None, m / bc1
    t = _float_step(s)
    return torch.reciprocal(u).mul_(c.lr), None, m / (1 - b1**t)


def _rmsprop(c: _Ctx) -> RuleResult:
    g, s = c.group, c.state
    _need(s, "step", "square_avg")
    v = s["square_avg"]
    if g["centered"]:
        _need(s, "grad_avg")
        v = v.addcmul(s["grad_avg"], s["grad_avg"], value=-1)
    denom = v.sqrt().add_(g["eps"])
    rate = torch.reciprocal(denom).mul_(c.lr)
    if g["momentum"] > 0:
        _need(s, "momentum_buffer")
        return rate, None, s["momentum_buffer"] * denom
    return rate, 1.0, None


def _adagrad(c: _Ctx) -> RuleResult:
    g, s = c.group, c.state
    _need(s, "step", "sum")
    clr = c.lr / (1 + (_float_step(s) - 1) * g["lr_decay"])
    return torch.reciprocal(s["sum"].sqrt().add_(g["eps"])).mul_(clr), 1.0, None


def _sgd(c: _Ctx) -> RuleResult:
    g, s, p = c.group, c.state, c.param
    rate = torch.as_tensor(c.lr, dtype=p.dtype, device=p.device)
    if g["momentum"] == 0:
        return rate, 1.0, None
    buf = s.get("momentum_buffer")
    if buf is None:
        raise NoStatisticsError("no statistics yet: SGD momentum buffer not created")
    if buf.is_sparse:
        buf = buf.to_dense()
    if g["nesterov"]:
        if sgd_overwrites_grad(g, p):
            if c.grad is None:
                raise NoStatisticsError("the last update needs param.grad (call before zero_grad)")
            return rate, None, c.grad
        return rate, 1.0, buf * g["momentum"]
    return rate, None, buf


def sgd_overwrites_grad(g: dict[str, Any], p: Tensor) -> bool:
    """torch's foreach SGD adds ``momentum * buf`` into ``.grad`` in place under nesterov.

    That happens on the foreach path (chosen regardless of ``differentiable``) when the
    gradient list is ``.grad`` itself: no ``maximize`` (which negates into a copy) and no
    weight decay (which adds into a copy).
    """
    if g["maximize"] or g["weight_decay"] != 0:
        return False
    return uses_foreach(g, p, differentiable_blocks=False)


_Rule = Callable[[_Ctx], RuleResult]

RULES: dict[type[torch.optim.Optimizer], _Rule] = {
    torch.optim.Adam: _adam,
    torch.optim.AdamW: _adam,
    torch.optim.NAdam: _nadam,
    torch.optim.RAdam: _radam,
    torch.optim.Adamax: _adamax,
    torch.optim.RMSprop: _rmsprop,
    torch.optim.Adagrad: _adagrad,
    torch.optim.SGD: _sgd,
}
