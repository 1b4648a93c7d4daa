r"""Per-element effective step sizes of torch optimizers, read from their own state.

A learning-rate scheduler sets one number per parameter group, ``group["lr"]`` (the *base
rate*). Adaptive optimizers then rescale it per element, every step, by statistics of past
gradients. This module makes that second number visible.

Every supported update rule is written as

.. math::

    \Delta p = -\eta^{\mathrm{eff}} \odot d - \eta\,\lambda_{\mathrm{dec}}\,p_{\mathrm{old}}

with :math:`\eta` the group's ``lr``, :math:`\eta^{\mathrm{eff}}` the *effective rate*
(per element), :math:`d` the *direction* (the optimizer's numerator) and
:math:`\lambda_{\mathrm{dec}}` the decoupled weight decay (AdamW, and Adam/NAdam/RAdam with
``decoupled_weight_decay=True``; 0 otherwise). Coupled weight decay is part of :math:`d`
(through the gradient :math:`g = \pm\nabla + \lambda p_{\mathrm{old}}`, the sign being
``-`` under ``maximize``). Symbols: :math:`t` the step count stored in the state (after the
last step), :math:`m, v` the first and second moment buffers, :math:`\hat m = m/(1-\beta_1^t)`,
:math:`\hat v = v/(1-\beta_2^t)`, :math:`\epsilon` the group's ``eps``.

Per optimizer (effective rate; direction):

* Adam, AdamW: :math:`\eta / (\sqrt{\hat v} + \epsilon)`; :math:`\hat m`. With ``amsgrad``,
  :math:`v` is ``max_exp_avg_sq``.
* NAdam: :math:`\eta / (\sqrt{\hat v} + \epsilon)`;
  :math:`\frac{1-\mu_t}{1-\Pi_t} g + \frac{\mu_{t+1}}{1-\Pi_t\mu_{t+1}} m`.
* RAdam: :math:`\eta\, r_t / (\sqrt{\hat v} + \epsilon')` if :math:`\rho_t > 5`, else
  :math:`\eta`; :math:`\hat m`.
* Adamax: :math:`\eta / u` (``exp_inf``, which already holds :math:`\epsilon`); :math:`\hat m`.
* RMSprop: :math:`\eta / (\sqrt{v} + \epsilon)`, centered :math:`v - \bar g^2` in place of
  :math:`v`; :math:`g` (with momentum: :math:`b\,(\sqrt{v}+\epsilon)`, see below).
* Adagrad: :math:`\eta / (1 + (t-1)\delta) / (\sqrt{s} + \epsilon)`; :math:`g`.
* SGD: :math:`\eta` (uniform); :math:`g`, with momentum :math:`b`, nesterov
  :math:`g + \mu b`.

Notes per optimizer (matching torch 2.13's arithmetic):

* NAdam: :math:`\mu_k = \beta_1 (1 - \tfrac12 0.96^{k\psi})` with ``momentum_decay``
  :math:`\psi`, :math:`\Pi_t = \prod_{k\le t}\mu_k` (state ``mu_product``).
* RAdam: :math:`\rho_\infty = 2/(1-\beta_2) - 1`,
  :math:`\rho_t = \rho_\infty - 2 t \beta_2^t / (1-\beta_2^t)`, rectification
  :math:`r_t = \sqrt{(\rho_t-4)(\rho_t-2)\rho_\infty /
  ((\rho_\infty-4)(\rho_\infty-2)\rho_t)}`;
  torch adds :math:`\epsilon` to :math:`\sqrt v` *before* the bias correction, so
  :math:`\epsilon' = \epsilon/\sqrt{1-\beta_2^t}`. While :math:`\rho_t \le 5` the step
  is plain momentum SGD and the rate is :math:`\eta` for every element.
* RMSprop with momentum :math:`\mu`: the velocity is
  :math:`b_t = \mu b_{t-1} + g/(\sqrt v+\epsilon)` and the update :math:`-\eta b_t`. The
  effective rate reported is the one the *newest* gradient enters with; the direction is the
  velocity rescaled by it.
* Adagrad: :math:`s` is the ``sum`` accumulator, :math:`\delta` the ``lr_decay``.
* SGD: the rate is the base rate itself; it needs no statistics, so it is returned even
  before the first step (with momentum the buffer must exist). torch's foreach SGD with
  nesterov (no weight decay, no maximize) leaves :math:`g + \mu b` in ``param.grad``; lrkit
  reads it from there in that case (foreach on, or unset on a non-CPU device).

**When is it exact?** The state holds the statistics *after* the last step, so
``effective_rates`` called between ``optimizer.step()`` and ``scheduler.step()`` returns
exactly the rates the last step applied. Called later (after the scheduler changed ``lr``), it
returns the rates the next step would apply if its gradient left the statistics unchanged: the
best available estimate, one gradient stale.

**Realized update.** :func:`last_update` derives :math:`\Delta p` of the last step from the
state, the current parameters and (for NAdam, RMSprop without momentum, Adagrad, plain and
nesterov SGD) ``param.grad``, which must not have been zeroed yet; it solves the rule above for
:math:`p_{\mathrm{old}}`. For an exact difference regardless, keep a snapshot of the parameters
(:class:`lrkit.inspect.Monitor` with ``updates="snapshot"``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "SUPPORTED_OPTIMIZERS",
    "NoStatisticsError",
    "ParamRates",
    "UnsupportedOptimizerError",
    "effective_rates",
    "iter_rates",
    "last_update",
]

Scalar = float | Tensor


class NoStatisticsError(RuntimeError):
    """The optimizer has no statistics yet (no ``optimizer.step()`` has been taken)."""


class UnsupportedOptimizerError(TypeError):
    """The optimizer's update rule is not one lrkit knows; the message lists those it does."""


@dataclass(frozen=True)
class ParamRates:
    """The effective rate of one parameter and the direction it multiplies.

    Attributes:
        param: the parameter.
        group: index of its parameter group.
        lr: the group's base rate (float or 0-d tensor, as stored in the group).
        rate: per-element effective rate; a 0-d tensor when uniform (SGD, RAdam's SGD phase).
        decoupled_decay: :math:`\\eta\\lambda_{\\mathrm{dec}}` (0.0 when none).
        grad_coef: coefficient of the signed, coupled gradient in the direction, or ``None``
            when the direction lives entirely in the state.
        rest: the part of the direction held in the state (``None`` when there is none).
        coupled_decay: the coupled weight decay :math:`\\lambda` that enters :math:`g`.
        sign: ``-1.0`` under ``maximize``, else ``1.0``.
    """

    param: Tensor
    group: int
    lr: Scalar
    rate: Tensor
    decoupled_decay: Scalar
    grad_coef: Scalar | None
    rest: Tensor | None
    coupled_decay: float
    sign: float

    @property
    def needs_grad(self) -> bool:
        """Whether the direction involves the last gradient (``param.grad``)."""
        return self.grad_coef is not None


@dataclass(frozen=True)
class _Ctx:
    group: dict[str, Any]
    state: dict[str, Any]
    param: Tensor
    lr: Scalar
    sign: float


def _lr(group: dict[str, Any]) -> Scalar:
    lr = group["lr"]
    return lr.detach() if isinstance(lr, Tensor) else float(lr)


def _step(state: dict[str, Any]) -> Scalar:
    """The step count: a Python float for CPU state (as torch itself uses), else a tensor."""
    step = state["step"]
    if isinstance(step, Tensor):
        return float(step) if step.device.type == "cpu" else step.to(torch.float64)
    return float(step)


def _need(state: dict[str, Any], *keys: str) -> None:
    missing = [k for k in keys if k not in state]
    if missing:
        raise NoStatisticsError(f"no statistics yet: optimizer state lacks {missing}")
    step = state.get("step")
    if isinstance(step, Tensor) and step.device.type == "cpu" and float(step) == 0.0:
        raise NoStatisticsError("no statistics yet: step is 0")  # Adagrad's state exists early


def _adam(c: _Ctx) -> tuple[Tensor, Scalar | None, Tensor | None]:
    g, s = c.group, c.state
    _need(s, "step", "exp_avg", "exp_avg_sq")
    beta1, beta2 = g["betas"]
    t = _step(s)
    v = s["max_exp_avg_sq"] if g.get("amsgrad", False) else s["exp_avg_sq"]
    denom = (v.sqrt() / (1 - beta2**t) ** 0.5).add_(g["eps"])
    return torch.reciprocal(denom).mul_(c.lr), None, s["exp_avg"] / (1 - beta1**t)


def _nadam_mu(beta1: float, k: Scalar, psi: float) -> Scalar:
    return beta1 * (1.0 - 0.5 * (0.96 ** (k * psi)))


def _nadam(c: _Ctx) -> tuple[Tensor, Scalar | None, Tensor | None]:
    g, s = c.group, c.state
    _need(s, "step", "exp_avg", "exp_avg_sq", "mu_product")
    beta1, beta2 = g["betas"]
    t = _step(s)
    psi = g["momentum_decay"]
    mu, mu_next = _nadam_mu(beta1, t, psi), _nadam_mu(beta1, t + 1, psi)
    prod = s["mu_product"]
    prod = float(prod) if prod.device.type == "cpu" else prod
    denom = s["exp_avg_sq"].div(1 - beta2**t).sqrt_().add_(g["eps"])
    rate = torch.reciprocal(denom).mul_(c.lr)
    rest = s["exp_avg"] * (mu_next / (1.0 - prod * mu_next))
    return rate, (1.0 - mu) / (1.0 - prod), rest


def _radam(c: _Ctx) -> tuple[Tensor, Scalar | None, Tensor | None]:
    g, s = c.group, c.state
    _need(s, "step", "exp_avg", "exp_avg_sq")
    beta1, beta2 = g["betas"]
    t = _step(s)
    bc2 = 1 - beta2**t
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * t * (beta2**t) / bc2
    rest = s["exp_avg"] / (1 - beta1**t)
    v = s["exp_avg_sq"]
    if isinstance(rho_t, float) and rho_t <= 5.0:
        return torch.as_tensor(c.lr, dtype=v.dtype, device=v.device), None, rest
    rho_c = rho_t.clamp(min=5.0 + 1e-6) if isinstance(rho_t, Tensor) else rho_t
    rect = ((rho_c - 4) * (rho_c - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_c)) ** 0.5
    rate = torch.reciprocal(v.sqrt().add_(g["eps"])).mul_(bc2**0.5 * rect).mul_(c.lr)
    if isinstance(rho_t, Tensor):  # device step: both branches, no host sync
        rate = torch.where(rho_t > 5.0, rate, torch.as_tensor(c.lr, dtype=v.dtype))
    return rate, None, rest


def _adamax(c: _Ctx) -> tuple[Tensor, Scalar | None, Tensor | None]:
    g, s = c.group, c.state
    _need(s, "step", "exp_avg", "exp_inf")
    beta1 = g["betas"][0]
    t = _step(s)
    return torch.reciprocal(s["exp_inf"]).mul_(c.lr), None, s["exp_avg"] / (1 - beta1**t)


def _rmsprop(c: _Ctx) -> tuple[Tensor, Scalar | None, Tensor | None]:
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


def _adagrad(c: _Ctx) -> tuple[Tensor, Scalar | None, Tensor | None]:
    g, s = c.group, c.state
    _need(s, "step", "sum")
    clr = c.lr / (1 + (_step(s) - 1) * g["lr_decay"])
    return torch.reciprocal(s["sum"].sqrt().add_(g["eps"])).mul_(clr), 1.0, None


def _sgd(c: _Ctx) -> tuple[Tensor, Scalar | None, Tensor | None]:
    g, s, p = c.group, c.state, c.param
    rate = torch.as_tensor(c.lr, dtype=p.dtype, device=p.device)
    if g["momentum"] == 0:
        return rate, 1.0, None
    buf = s.get("momentum_buffer")
    if buf is None:
        raise NoStatisticsError("no statistics yet: SGD momentum buffer not created")
    if g["nesterov"]:
        if _sgd_overwrites_grad(g, p):
            if p.grad is None:
                raise NoStatisticsError("the last update needs param.grad (call before zero_grad)")
            return rate, None, p.grad.detach()
        return rate, 1.0, buf * g["momentum"]
    return rate, None, buf


def _sgd_overwrites_grad(g: dict[str, Any], p: Tensor) -> bool:
    """torch's foreach SGD adds ``momentum * buf`` into ``.grad`` in place under nesterov."""
    if g.get("fused") or g.get("differentiable") or g["maximize"] or g["weight_decay"] != 0:
        return False
    foreach = g.get("foreach")
    return bool(foreach) or (foreach is None and p.device.type != "cpu")


_Rule = Callable[[_Ctx], tuple[Tensor, "Scalar | None", "Tensor | None"]]

_RULES: dict[type[torch.optim.Optimizer], _Rule] = {
    torch.optim.Adam: _adam,
    torch.optim.AdamW: _adam,
    torch.optim.NAdam: _nadam,
    torch.optim.RAdam: _radam,
    torch.optim.Adamax: _adamax,
    torch.optim.RMSprop: _rmsprop,
    torch.optim.Adagrad: _adagrad,
    torch.optim.SGD: _sgd,
}

#: Names of the optimizers whose effective rates lrkit computes.
SUPPORTED_OPTIMIZERS: tuple[str, ...] = tuple(f"torch.optim.{k.__name__}" for k in _RULES)


def _rule_for(optimizer: torch.optim.Optimizer) -> _Rule:
    rule = _RULES.get(type(optimizer))
    if rule is None:
        raise UnsupportedOptimizerError(
            f"optimizer {type(optimizer).__module__}.{type(optimizer).__qualname__} is not "
            f"supported; supported: {', '.join(SUPPORTED_OPTIMIZERS)}"
        )
    return rule


def _decoupled(optimizer: torch.optim.Optimizer, group: dict[str, Any]) -> bool:
    if isinstance(optimizer, torch.optim.AdamW):
        return True
    return bool(group.get("decoupled_weight_decay", False))


def iter_rates(optimizer: torch.optim.Optimizer) -> Iterator[ParamRates]:
    """Yield :class:`ParamRates` parameter by parameter (lazily, for one-pass summaries).

    Parameters without state (never stepped) are skipped. Raises as :func:`effective_rates`.
    """
    rule = _rule_for(optimizer)
    found = False
    first_error: NoStatisticsError | None = None
    for gi, group in enumerate(optimizer.param_groups):
        lr = _lr(group)
        wd = float(group.get("weight_decay", 0.0))
        decoupled = _decoupled(optimizer, group)
        sign = -1.0 if group.get("maximize", False) else 1.0
        for p in group["params"]:
            if torch.is_complex(p):
                raise UnsupportedOptimizerError("complex parameters are not supported")
            state = optimizer.state.get(p, {})
            try:
                rate, gcoef, rest = rule(_Ctx(group, state, p, lr, sign))
            except NoStatisticsError as err:
                first_error = first_error or err
                continue
            found = True
            yield ParamRates(
                param=p,
                group=gi,
                lr=lr,
                rate=rate,
                decoupled_decay=lr * wd if decoupled else 0.0,
                grad_coef=gcoef,
                rest=rest,
                coupled_decay=0.0 if decoupled else wd,
                sign=sign,
            )
    if not found:
        raise NoStatisticsError(
            f"no statistics yet for {type(optimizer).__name__}: call optimizer.step() first"
            + (f" ({first_error})" if first_error else "")
        )


def effective_rates(optimizer: torch.optim.Optimizer) -> list[ParamRates]:
    """Per-element effective rates of every stepped parameter (definitions: module docstring).

    Args:
        optimizer: one of :data:`SUPPORTED_OPTIMIZERS` (subclasses are not accepted: they may
            change the rule).

    Raises:
        UnsupportedOptimizerError: other optimizers; the message lists the supported ones.
        NoStatisticsError: before the first ``optimizer.step()`` (never zeros).

    Example:
        >>> import torch
        >>> p = torch.nn.Parameter(torch.ones(3))
        >>> opt = torch.optim.Adam([p], lr=0.1)
        >>> p.grad = torch.tensor([1.0, 2.0, 4.0]); opt.step()
        >>> [round(x, 4) for x in effective_rates(opt)[0].rate.tolist()]
        [0.1, 0.05, 0.025]
    """
    return list(iter_rates(optimizer))


def _direction_and_old(pr: ParamRates) -> tuple[Tensor, Tensor]:
    """Solve the update rule for the pre-step parameter; return (direction, p_old)."""
    p = pr.param.detach()
    rest = pr.rest if pr.rest is not None else torch.zeros((), dtype=p.dtype, device=p.device)
    if pr.grad_coef is None:
        gpart = torch.zeros((), dtype=p.dtype, device=p.device)
        wdc: Scalar = 0.0
    else:
        if pr.param.grad is None:
            raise NoStatisticsError(
                "the last update needs param.grad (call before zero_grad) or a snapshot"
            )
        gpart = pr.param.grad.detach() * (pr.sign * pr.grad_coef)
        wdc = pr.coupled_decay * pr.grad_coef
    # p_new = p_old (1 - lr*wd_dec - rate*gcoef*wd_cpl) - rate*(gcoef*s*grad + rest)
    keep = 1.0 - pr.decoupled_decay - pr.rate * wdc
    p_old = (p + pr.rate * (gpart + rest)) / keep
    direction = gpart + rest + p_old * wdc if pr.grad_coef is not None else rest + gpart
    return direction, p_old


def _nonzero(x: Scalar) -> bool:
    return bool(x != 0) if not isinstance(x, Tensor) else True


def last_update(optimizer: torch.optim.Optimizer) -> list[tuple[Tensor, Tensor]]:
    """The parameter change of the last step, derived from state (see module docstring).

    Returns:
        ``(param, delta)`` pairs, with ``delta = p_new - p_old`` computed as
        ``-rate * direction - lr * wd_dec * p_old`` (no cancellation against ``p``).

    Raises:
        NoStatisticsError: before the first step, or when the rule needs ``param.grad`` and it
            is ``None``.
    """
    out = []
    for pr in iter_rates(optimizer):
        if pr.grad_coef is None and pr.rest is not None and not _nonzero(pr.decoupled_decay):
            out.append((pr.param, (pr.rest * pr.rate).neg_()))
            continue
        direction, p_old = _direction_and_old(pr)
        out.append((pr.param, -(pr.rate * direction) - pr.decoupled_decay * p_old))
    return out
