r"""Update rules of third-party optimizers: schedule-free (``schedulefree``) and Prodigy.

Imported only when the optimizer's package is already loaded (the rules are looked up by
class, so a user of these optimizers has imported their package).

**Schedule-free** (``AdamWScheduleFree``, ``SGDScheduleFree``, ``RAdamScheduleFree``) keeps two
sequences and trains at their interpolation :math:`y`: :math:`z \leftarrow z - \gamma_t u` and
:math:`y \leftarrow (1-c)\,y + c\,z_{\mathrm{old}} - \gamma_t(1 - \beta(1-c))\,u`, with
:math:`\gamma_t` the *scheduled* rate (the group's ``lr`` times the optimizer's own warmup,
stored as ``group["scheduled_lr"]``), :math:`c` the averaging weight and :math:`u` the
normalized gradient (plus :math:`\lambda y`). No single per-element rate moves the parameter.
lrkit reports ``rate``: the per-element rate entering :math:`z`
(:math:`\gamma_t/(\sqrt{\hat v}+\epsilon)` for AdamW, :math:`\gamma_t` for SGD, RAdam's
rectified :math:`\gamma_t` over its denominator), and in ``info``: ``scheduled_lr``,
``ckp1`` (:math:`c`) and ``y_factor`` (:math:`1-\beta(1-c)`, so the rate entering :math:`y` is
``rate * y_factor``). :func:`lrkit.inspect.last_update` gives the exact change of the
parameter (train mode). The optimizer overwrites ``param.grad`` with :math:`u`; lrkit reads it
there, so call before ``zero_grad``.

**Prodigy** steps with :math:`d\,\eta` (times its bias correction) where :math:`d` is its
running estimate of the distance to the solution: ``rate`` is
:math:`d_{\mathrm{old}}\,\eta\,b_t/(\sqrt{v}+d_{\mathrm{new}}\epsilon)` and ``info`` holds
``d`` (the :math:`d` the last step used), ``lr_d`` (:math:`\eta d`) and ``d_next``. The step
overwrites ``group["d"]``, so the :math:`d` it used is known only when
:func:`lrkit.inspect.track` (or an attached :class:`lrkit.inspect.Monitor`) recorded it
before the step; otherwise lrkit refuses rather than guess.

**D-Adaptation** (``dadaptation.DAdaptAdam``; its SGD, Adagrad, Lion and Adan variants are not
modelled): the first moment accumulates :math:`r\,d\,\eta\,b_t(1-\beta_1)g` (``r`` the
group's ``layer_scale``), so the rate multiplying the newest gradient's share is
:math:`r\,d\,\eta\,b_t/(\sqrt v+\epsilon)`; ``info`` holds ``d``, ``lr_d`` and ``dlr``
as for Prodigy, and :func:`lrkit.inspect.track` is needed likewise.
"""

from __future__ import annotations

import sys
from typing import Any

import torch
from torch import Tensor

from lrkit.inspect.rules import NoStatisticsError, RuleOut, RuleResult, _Ctx, _need

__all__ = ["thirdparty_rules"]


def _sf_common(c: _Ctx, beta: float, kind: str) -> RuleResult:
    g, s, p = c.group, c.state, c.param
    if not g.get("train_mode", True):
        raise NoStatisticsError(
            "schedule-free optimizer in eval mode: rates are defined in train mode "
            "(call optimizer.train())"
        )
    _need(s, "z")
    if c.grad is None:
        raise NoStatisticsError(
            "schedule-free: the last update needs param.grad (call before zero_grad)"
        )
    k_used = g["k"] - 1
    if k_used < 0:
        raise NoStatisticsError("no statistics yet: schedule-free k is 0")
    lr_s = float(g["scheduled_lr"])
    weight = ((k_used + 1) ** g["r"]) * (g["lr_max"] ** g["weight_lr_power"])
    ckp1 = weight / g["weight_sum"] if g["weight_sum"] else 0.0
    y_factor = 1 - beta * (1 - ckp1)
    gn = c.grad  # the step left the normalized gradient (+ decay * y) in param.grad
    if kind == "sgd":
        rate = torch.tensor(lr_s, dtype=p.dtype, device=p.device)
    else:
        _need(s, "exp_avg_sq")
        beta2 = g["betas"][1]
        bc2 = 1 - beta2 ** (k_used + 1)
        denom = s["exp_avg_sq"].div(bc2).sqrt_().add_(g["eps"])
        rate = torch.reciprocal(denom).mul_(lr_s)
        if kind == "radam":
            rho_inf = 2 / (1 - beta2) - 1
            rho_t = rho_inf - 2 * (k_used + 1) * beta2 ** (k_used + 1) / bc2
            if rho_t <= 4.0:
                rate = torch.tensor(lr_s, dtype=p.dtype, device=p.device)
    z_new = s["z"]
    a = -lr_s * y_factor

    def update() -> Tensor:
        z_old: Tensor = z_new + lr_s * gn
        y = p.detach()
        if ckp1 >= 1.0:  # the first step: y_old was z_old (z starts as a copy of y)
            return y - z_old
        out: Tensor = (y - z_old - a * gn).mul_(-ckp1 / (1 - ckp1)).add_(a * gn)
        return out

    info = {"scheduled_lr": lr_s, "ckp1": ckp1, "y_factor": y_factor}
    return RuleOut(rate, None, gn, decoupled=0.0, coupled=0.0, update=update, info=info)


def _d_step(c: _Ctx, name: str) -> tuple[float, dict[str, float]]:
    """``(dlr, info)`` of the last step of a D-adapting Adam (Prodigy, DAdaptAdam):
    ``dlr = d · lr · bias correction`` with the ``d`` and ``lr`` the step used (recorded by
    :func:`lrkit.inspect.track` before the step: the step overwrites ``group['d']``)."""
    g = c.group
    if not c.state["step"]:
        raise NoStatisticsError(f"no statistics yet: {name} step is 0")
    if c.pre is None or "d" not in c.pre or "lr_max" not in c.pre:
        raise NoStatisticsError(
            f"{name} overwrites group['d'] in its step, so the d the last step used is gone: "
            "call lrkit.inspect.track(optimizer) before training (an attached Monitor does)"
        )
    d_old, lr = float(c.pre["d"]), float(c.pre["lr_max"])
    beta1, beta2 = g["betas"]
    k_used = g["k"] - 1
    bias = 1.0
    if g["use_bias_correction"]:
        bias = ((1 - beta2 ** (k_used + 1)) ** 0.5) / (1 - beta1 ** (k_used + 1))
    dlr = d_old * lr * bias
    return dlr, {"d": d_old, "lr_d": lr * d_old, "d_next": float(g["d"]), "dlr": dlr}


def _prodigy(c: _Ctx) -> RuleResult:
    g, s = c.group, c.state
    _need(s, "step", "exp_avg_sq")
    dlr, info = _d_step(c, "Prodigy")
    d_new = info["d_next"]
    denom = s["exp_avg_sq"].sqrt().add_(d_new * g["eps"])
    rate = torch.reciprocal(denom).mul_(dlr)
    if g["betas"][0] > 0:
        _need(s, "exp_avg")
        rest = s["exp_avg"]
    else:
        if c.grad is None:
            raise NoStatisticsError("Prodigy with beta1=0: the last update needs param.grad")
        rest = c.grad * d_new  # the step added the coupled decay into param.grad
    decay = g["weight_decay"]
    dec = decay * dlr if decay != 0 and g["decouple"] else 0.0
    return RuleOut(rate, None, rest, decoupled=dec, coupled=0.0, info=info)


def _dadapt_adam(c: _Ctx) -> RuleResult:
    g, s, p = c.group, c.state, c.param
    _need(s, "step", "exp_avg", "exp_avg_sq")
    dlr, info = _d_step(c, "DAdaptAdam")
    scale = dlr * g["layer_scale"]
    denom = s["exp_avg_sq"].sqrt().add_(g["eps"])
    m = s["exp_avg"]  # accumulates r * dlr * (1 - beta1) * g: the rates are inside it
    decay = g["weight_decay"]
    dec = decay * dlr if decay != 0 and g["decouple"] else 0.0
    if scale == 0:
        rate = torch.zeros_like(denom)

        def update() -> Tensor:
            step = m / denom
            p_old = (p + step) / (1 - dec)
            out: Tensor = -step - dec * p_old
            return out

        return RuleOut(rate, None, None, decoupled=dec, coupled=0.0, update=update, info=info)
    rate = torch.reciprocal(denom).mul_(scale)
    return RuleOut(rate, None, m / scale, decoupled=dec, coupled=0.0, info=info)


def thirdparty_rules() -> dict[type[Any], Any]:
    """Rules for the third-party optimizer classes whose packages are loaded."""
    out: dict[type[Any], Any] = {}
    sf = sys.modules.get("schedulefree")
    if sf is not None:
        for name, beta_key, kind in (
            ("AdamWScheduleFree", "betas", "adamw"),
            ("RAdamScheduleFree", "betas", "radam"),
            ("SGDScheduleFree", "momentum", "sgd"),
        ):
            cls = getattr(sf, name, None)
            if cls is not None:
                out[cls] = _sf_rule(beta_key, kind)
    pd = sys.modules.get("prodigyopt")
    if pd is not None and hasattr(pd, "Prodigy"):
        out[pd.Prodigy] = _prodigy
    da = sys.modules.get("dadaptation")
    if da is not None and hasattr(da, "DAdaptAdam"):
        out[da.DAdaptAdam] = _dadapt_adam
    return out


def _sf_rule(beta_key: str, kind: str) -> Any:
    def rule(c: _Ctx) -> RuleResult:
        b = c.group[beta_key]
        return _sf_common(c, float(b[0] if isinstance(b, tuple | list) else b), kind)

    return rule


#: Names listed as supported (when their package is installed).
THIRDPARTY_NAMES: tuple[str, ...] = (
    "schedulefree.AdamWScheduleFree",
    "schedulefree.SGDScheduleFree",
    "schedulefree.RAdamScheduleFree",
    "prodigyopt.Prodigy",
    "dadaptation.DAdaptAdam",
)
