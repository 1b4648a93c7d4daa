r"""Update rules of torch's other optimizers: Muon, Adafactor, Adadelta, Rprop, ASGD, SparseAdam.

Per optimizer, what lrkit reports (:math:`\eta` the group's ``lr``; :math:`g` the signed,
coupled gradient):

* **Muon** (2-D parameters only): the update is an orthogonalized matrix
  :math:`O = \mathrm{NS}(\tilde B)`, not a per-element rescaling. ``rate`` is the uniform rate
  that multiplies it after torch's shape adjustment, :math:`\eta\sqrt{\max(1, A/B)}`
  (``adjust_lr_fn="original"``) or :math:`0.2\,\eta\sqrt{\max(A, B)}` (``"match_rms_adamw"``);
  the direction is :math:`O`, recomputed with torch's own Newton-Schulz function (with
  nesterov it needs ``param.grad``). ``info`` holds ``adjusted_lr``, ``update_rms`` (RMS of
  ``rate * O``) and ``update_to_weight_rms`` (its ratio to the RMS of the parameter).
  Decay :math:`\eta\lambda` is decoupled.
* **Adafactor**: :math:`\alpha / \max(1, \mathrm{RMS}(U)/d)\; / \sqrt{\hat v}` with
  :math:`\alpha = \max(\epsilon_2, \mathrm{RMS}(p_{\mathrm{old}}))\min(\eta, 1/\sqrt t)`,
  :math:`\hat v` the factored second moment (row/column) or the full one for vectors, and
  :math:`U = g/\sqrt{\hat v}`; direction :math:`g`. The pre-step RMS of the parameter is
  recovered by solving the update for it (a quadratic in that RMS).
* **Adadelta**: :math:`\eta\sqrt{a_{t-1}+\epsilon}/\sqrt{v_t+\epsilon}`; direction :math:`g`.
  The state holds :math:`a_t`; :math:`a_{t-1}` is recovered from it and the gradient (with
  coupled weight decay, by a fixed-point iteration on the pre-step parameter).
* **Rprop**: the per-element step size (parameter units; the group's ``lr`` only sets its
  initial value); direction :math:`\mathrm{sign}(g)`, zero where the sign flipped.
* **ASGD**: the uniform :math:`\eta_t` the step used, with decoupled decay
  :math:`\lambda\eta_t`. torch overwrites :math:`\eta` after the step; lrkit reads the one used
  from :func:`lrkit.inspect.track` when tracking, else recomputes it from the group's current
  ``lr`` (exact while ``lr`` did not change between the last two steps).
* **SparseAdam**: :math:`\eta\sqrt{1-\beta_2^t}/(\sqrt{v}+\epsilon)` (torch does not
  bias-correct :math:`\epsilon`); direction :math:`\hat m` on the gradient's indices, zero
  elsewhere (needs ``param.grad``).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from lrkit.inspect.rules import NoStatisticsError, RuleOut, RuleResult, _Ctx, _need

__all__ = ["MORE_RULES", "WHOLE_TENSOR_RULES"]


def _need_grad(c: _Ctx, who: str) -> Tensor:
    if c.grad is None:
        raise NoStatisticsError(f"{who}: the last update needs param.grad (call before zero_grad)")
    return c.grad


def _rms(x: Tensor) -> float:
    norm = float(torch.linalg.vector_norm(x, dtype=torch.float64))
    return norm / math.sqrt(max(x.numel(), 1))


def _muon(c: _Ctx) -> RuleResult:
    from torch.optim._muon import _adjust_lr, _zeropower_via_newtonschulz

    g, s, p = c.group, c.state, c.param
    _need(s, "momentum_buffer")
    buf = s["momentum_buffer"]
    upd = _need_grad(c, "Muon with nesterov").lerp(buf, g["momentum"]) if g["nesterov"] else buf
    ortho = _zeropower_via_newtonschulz(upd, g["ns_coefficients"], g["ns_steps"], g["eps"])
    lr = float(c.lr)
    adjusted = _adjust_lr(lr, g["adjust_lr_fn"], p.shape)
    rest = ortho.to(p.dtype)
    upd_rms = abs(adjusted) * _rms(rest)
    w_rms = _rms(p)
    info = {
        "adjusted_lr": adjusted,
        "update_rms": upd_rms,
        "update_to_weight_rms": upd_rms / w_rms if w_rms else math.inf,
    }
    rate = torch.tensor(adjusted, dtype=p.dtype, device=p.device)
    return RuleOut(rate, None, rest, decoupled=lr * g["weight_decay"], coupled=0.0, info=info)


def _positive_root(a: float, b: float, cc: float) -> float:
    """The positive root of ``a r^2 + b r + cc = 0`` (``cc <= 0 < a``), without cancellation."""
    disc = math.sqrt(max(b * b - 4 * a * cc, 0.0))
    q = -0.5 * (b + math.copysign(disc, b))
    roots = [r for r in ((q / a) if a else math.inf, (cc / q) if q else math.inf) if r >= 0]
    return min(roots) if roots else 0.0


def _adafactor(c: _Ctx) -> RuleResult:
    g, s, p = c.group, c.state, c.param
    _need(s, "step")
    grad = _need_grad(c, "Adafactor")
    t = float(s["step"])
    eps1, eps2 = g["eps"]
    if eps1 is None:
        eps1 = torch.finfo(p.dtype).eps
    lr = float(c.lr)
    rho = min(lr, 1 / (t**0.5))
    if p.dim() > 1:
        _need(s, "row_var", "col_var")
        row, col = s["row_var"], s["col_var"]
        var = (row @ col).div_(row.mean(dim=-2, keepdim=True).clamp_(min=eps1))
    else:
        _need(s, "variance")
        var = s["variance"].clone()
    scale = var.clamp_(min=eps1 * eps1).rsqrt_()
    g_signed = grad * c.sign
    upd = scale * g_signed
    n = upd.numel()
    denom = max(1.0, float(upd.norm(2)) / ((n**0.5) * g["d"]))
    keep = 1 - lr * g["weight_decay"]
    # p_new = keep * p_old - alpha/denom * upd, alpha = max(eps2, RMS(p_old)) * rho
    cf = rho / denom
    pn = p.to(torch.float64)
    u64 = upd.to(torch.float64)
    a = keep * keep * n - cf * cf * float(u64.square().sum())
    r = _positive_root(a, -2 * cf * float((pn * u64).sum()), -float(pn.square().sum()))
    alpha = max(eps2, r) * rho
    rate = scale.mul_(alpha / denom)
    return RuleOut(rate, 1.0, None, decoupled=lr * g["weight_decay"], coupled=0.0,
                   info={"relative_step": rho, "alpha": alpha, "clip_denominator": denom})


def _adadelta(c: _Ctx) -> RuleResult:
    g, s, p = c.group, c.state, c.param
    _need(s, "step", "square_avg", "acc_delta")
    grad = _need_grad(c, "Adadelta")
    rho, eps, wd, lr = g["rho"], g["eps"], g["weight_decay"], c.lr
    v, acc = s["square_avg"], s["acc_delta"]
    std = v.add(eps).sqrt_()
    gs = grad * c.sign

    def old_acc(gg: Tensor) -> Tensor:  # a_t = rho a + (1-rho) (a+eps) q, q = g^2 / std^2
        q = (gg / std).square_()
        out: Tensor = (acc - (1 - rho) * eps * q) / (rho + (1 - rho) * q)
        return out

    gg = gs if wd == 0 else gs + wd * p
    for _ in range(60 if wd else 1):  # coupled decay: g depends on p_old = p + lr * delta
        ratio = old_acc(gg).add_(eps).sqrt_().div_(std)
        if wd == 0:
            break
        nxt = gs + wd * (p + lr * ratio * gg)
        if torch.equal(nxt, gg):
            break
        gg = nxt
    return RuleOut(ratio.mul_(lr), 1.0, None)


def _rprop(c: _Ctx) -> RuleResult:
    s = c.state
    _need(s, "step", "prev", "step_size")
    return RuleOut(s["step_size"].clone(), None, s["prev"].sign(), decoupled=0.0, coupled=0.0,
                   info={"note": "rate = per-element step size; direction = sign(gradient)"})


def _asgd(c: _Ctx) -> RuleResult:
    g, s, p = c.group, c.state, c.param
    _need(s, "step", "eta", "mu")
    eta_t = s["eta"]
    if c.pre_state is not None and "eta" in c.pre_state:
        eta = float(c.pre_state["eta"])
    else:  # torch's eta for step t, stored in eta's dtype (float32 by default)
        t = float(s["step"])
        lr = float(c.lr)
        eta_f = lr if t <= 1 else lr / ((1 + g["lambd"] * lr * (t - 1)) ** g["alpha"])
        eta = float(torch.tensor(eta_f, dtype=eta_t.dtype))
    rate = torch.tensor(eta, dtype=p.dtype, device=p.device)
    return RuleOut(rate, 1.0, None, decoupled=g["lambd"] * eta, coupled=g["weight_decay"],
                   info={"eta": eta})


def _sparse_adam(c: _Ctx) -> RuleResult:
    g, s, _p = c.group, c.state, c.param
    _need(s, "step", "exp_avg", "exp_avg_sq")
    if c.grad is None:
        raise NoStatisticsError("SparseAdam: the last update needs param.grad (its indices)")
    raw = _sparse_grad_mask(c)
    b1, b2 = g["betas"]
    t = float(s["step"])
    bc1, bc2 = 1 - b1**t, 1 - b2**t
    rate = torch.reciprocal(s["exp_avg_sq"].sqrt().add_(g["eps"])).mul_(c.lr * math.sqrt(bc2))
    rest = (s["exp_avg"] / bc1).mul_(raw)
    return RuleOut(rate, None, rest, decoupled=0.0, coupled=0.0)


def _sparse_grad_mask(c: _Ctx) -> Tensor:
    """1 on the elements the last sparse gradient touched (its indices), else 0."""
    if c.grad_mask is not None:
        return c.grad_mask.to(c.param.dtype)
    assert c.grad is not None
    return torch.ones_like(c.grad)  # a dense gradient touches every element


def more_rules() -> dict[type[torch.optim.Optimizer], Any]:
    """The rules, keyed by the optimizer classes this torch has."""
    import torch.optim as o

    out: dict[type[torch.optim.Optimizer], Any] = {
        o.Adadelta: _adadelta,
        o.Rprop: _rprop,
        o.ASGD: _asgd,
        o.SparseAdam: _sparse_adam,
    }
    for name, rule in (("Muon", _muon), ("Adafactor", _adafactor)):
        cls = getattr(o, name, None)
        if cls is not None:
            out[cls] = rule
    return out


MORE_RULES = more_rules()

#: Rules that need whole tensors (matrix algebra, factored statistics): never subsampled.
WHOLE_TENSOR_RULES = frozenset({_muon, _adafactor})
