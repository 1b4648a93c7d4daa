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
  nesterov (no weight decay, no maximize) leaves :math:`g + \mu b` in ``param.grad``, with
  or without ``differentiable``; lrkit reads it from there in that case (foreach on, or unset
  on a non-CPU device).

**Implementation paths.** torch computes the per-step scalars (bias corrections, step sizes)
in float64 from a Python step on its default paths, but in the step tensor's dtype (float32)
on ``capturable`` paths and, for Adam/AdamW (and NAdam's momentum product), under
``differentiable``. :mod:`lrkit.inspect.rules` repeats each path's scalar arithmetic
operation by operation, so the rates carry torch's own rounding (``docs/effective_lr.md``
states the precision per path).

**Complex parameters and sparse gradients.** torch updates a complex parameter as its real
view (``torch.view_as_real``); so does lrkit: ``rate`` and ``rest`` have the real view's shape
and :func:`last_update` returns a complex delta. Sparse gradients (Adagrad, SGD) are read
densified: elements outside the gradient's indices get a zero direction, hence no move.

**Skipped parameters.** A parameter whose ``.grad`` was ``None`` at the last step is left alone
by torch; :func:`effective_rates` marks it ``skipped`` (its rate is the one its next update
would get), :func:`last_update` reports a zero change for it, and summaries leave it out.

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

import inspect
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from lrkit.inspect import selection
from lrkit.inspect.rules import RULES, NoStatisticsError, RuleOut, RuleResult, Scalar, _Ctx
from lrkit.inspect.rules_more import MORE_RULES, WHOLE_TENSOR_RULES
from lrkit.inspect.rules_thirdparty import THIRDPARTY_NAMES, thirdparty_rules
from lrkit.inspect.selection import BLOCK, parts, piecewise_ok
from lrkit.inspect.tracking import _TRACKED, track
from lrkit.torch.combined import CombinedOptimizer

__all__ = [
    "SUPPORTED_OPTIMIZERS",
    "NoStatisticsError",
    "ParamRates",
    "UnsupportedOptimizerError",
    "effective_rates",
    "iter_rates",
    "last_update",
    "track",
]

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
            For a complex parameter it is over ``torch.view_as_real(param)`` (shape + (2,)),
            as torch updates real and imaginary parts separately.
        decoupled_decay: :math:`\\eta\\lambda_{\\mathrm{dec}}` (0.0 when none).
        grad_coef: coefficient of the signed, coupled gradient in the direction, or ``None``
            when the direction lives entirely in the state.
        rest: the part of the direction held in the state (``None`` when there is none).
        coupled_decay: the coupled weight decay :math:`\\lambda` that enters :math:`g`.
        sign: ``-1.0`` under ``maximize``, else ``1.0``.
        skipped: the last ``optimizer.step()`` left this parameter alone (its ``.grad`` was
            ``None``): ``rate`` is then the rate its *next* update would get, and
            :func:`last_update` reports a zero change.
        grad: the gradient as the rule reads it (dense; real view of a complex gradient),
            or ``None``.
        values: the parameter's values the rule read (real view; the sample or piece).
        take: the function that cut ``values`` from the parameter (a sample or a piece;
            ``None``: the whole parameter); apply it to any tensor shaped like it.
        numel: the number of (real) elements of the parameter on this rank.
        share: the number of the parameter's elements this record stands for: ``numel``,
            or a piece's part of it (see ``chunk`` in :func:`iter_rates`).
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
    skipped: bool = False
    grad: Tensor | None = None
    info: dict[str, Any] = field(default_factory=dict)
    update_fn: Callable[[], Tensor] | None = field(default=None, repr=False)
    values: Tensor | None = field(default=None, repr=False)
    take: Callable[[Tensor], Tensor] | None = field(default=None, repr=False)
    numel: int = 0
    share: float = 0.0

    @property
    def needs_grad(self) -> bool:
        """Whether the direction involves the last gradient (``param.grad``)."""
        return self.grad_coef is not None


def _lr(group: dict[str, Any]) -> Scalar:
    lr = group["lr"]
    return lr.detach() if isinstance(lr, Tensor) else float(lr)


def _real(x: Any) -> Any:
    return torch.view_as_real(x) if isinstance(x, Tensor) and torch.is_complex(x) else x


def _local(x: Any) -> Any:
    """This rank's shard of a DTensor (FSDP2); anything else unchanged."""
    to_local = getattr(x, "to_local", None)
    return to_local() if to_local is not None and type(x).__name__ == "DTensor" else x


def _dense_grad(p: Tensor) -> Tensor | None:
    grad = p.grad
    if grad is None:
        return None
    grad = _local(grad.detach())
    if grad.is_sparse:
        grad = grad.to_dense()  # sums duplicate indices, as torch's coalesce() does
    return torch.view_as_real(grad) if torch.is_complex(grad) else grad


#: Names of the optimizers whose effective rates lrkit computes (the third-party ones when
#: their package is installed and imported).
SUPPORTED_OPTIMIZERS: tuple[str, ...] = (
    *(f"torch.optim.{k.__name__}" for k in (*RULES, *MORE_RULES)),
    *THIRDPARTY_NAMES,
)


def _step_fn(cls: type) -> Any:
    """The class's own ``step``, unwrapped (torch wraps it with hooks on first use)."""
    fn = cls.__dict__.get("step")
    return inspect.unwrap(fn) if fn is not None else None


def _rule_for(optimizer: torch.optim.Optimizer) -> Callable[[_Ctx], RuleResult]:
    rules: dict[type, Callable[[_Ctx], RuleResult]] = {
        **RULES, **MORE_RULES, **thirdparty_rules()
    }
    cls = type(optimizer)
    rule = rules.get(cls)
    if rule is None:  # a subclass is accepted only if it keeps its base's step
        base = next((b for b in cls.__mro__[1:] if b in rules), None)
        overrides = base is not None and any(
            (_step_fn(k) not in (None, _step_fn(base))) or "_init_group" in k.__dict__
            for k in cls.__mro__[: cls.__mro__.index(base)]
        )
        if base is not None and not overrides:
            rule = rules[base]
        else:
            why = (
                f" (a subclass of {base.__module__}.{base.__qualname__} that overrides its "
                "update: lrkit cannot know the new rule)"
                if base is not None
                else ""
            )
            raise UnsupportedOptimizerError(
                f"optimizer {cls.__module__}.{cls.__qualname__} is not supported{why}; "
                f"supported: {', '.join(SUPPORTED_OPTIMIZERS)}"
            )
    return rule


def _groups(
    optimizer: torch.optim.Optimizer,
) -> Iterator[tuple[int, dict[str, Any], torch.optim.Optimizer, Callable[[_Ctx], RuleResult]]]:
    """``(index, group, optimizer that steps it, its rule)`` per group; a
    :class:`~lrkit.torch.CombinedOptimizer` is read part by part, each with its own rule."""
    owners = optimizer.owners() if isinstance(optimizer, CombinedOptimizer) else [(0, optimizer)]
    for start, owner in owners:
        rule = _rule_for(owner)
        for i, group in enumerate(owner.param_groups):
            yield start + i, group, owner, rule


def _decoupled(optimizer: torch.optim.Optimizer, group: dict[str, Any]) -> bool:
    if isinstance(optimizer, torch.optim.AdamW):
        return True
    return bool(group.get("decoupled_weight_decay", False))


def _stepped_set(
    optimizer: torch.optim.Optimizer, stepped: Collection[Tensor] | None
) -> Collection[Tensor] | None:
    """The parameters the last step moved, when known; ``None`` when it cannot be told."""
    if stepped is not None:
        return stepped
    tracked = _TRACKED.get(optimizer)
    if tracked is not None and tracked.get("stepped") is not None:
        return tracked["stepped"]  # type: ignore[no-any-return]
    params = [p for g in optimizer.param_groups for p in g["params"]]
    with_grad = [p for p in params if p.grad is not None]
    return set(with_grad) if with_grad else None  # all None: after zero_grad, unknowable


def iter_rates(
    optimizer: torch.optim.Optimizer,
    *,
    stepped: Collection[Tensor] | None = None,
    sample: int | None = None,
    chunk: int | None = None,
) -> Iterator[ParamRates]:
    """Yield :class:`ParamRates` parameter by parameter (lazily, for one-pass summaries).

    Parameters without state (never stepped) are not yielded. Raises as
    :func:`effective_rates`.

    Args:
        optimizer: a supported optimizer.
        stepped: the parameters the last step updated (those whose ``.grad`` was set). By
            default they are read from ``.grad``: while any parameter has a gradient, those
            without one were skipped (torch leaves them alone). After ``zero_grad()`` every
            gradient is ``None`` and every stateful parameter counts as stepped; pass the set
            (or use :class:`lrkit.inspect.Monitor`, which records it before each step).
        sample: at most about this many elements per parameter: a larger (contiguous)
            parameter is read on a systematic sample, ``ceil(sample / 64)`` blocks of 64
            consecutive elements evenly spaced through it (elementwise rules only: Muon and
            Adafactor always read whole tensors). ``None``: every element.
        chunk: read a parameter whose selected elements (all, or the sample) number more
            than this in pieces of at most about ``chunk`` elements, one :class:`ParamRates`
            per piece, with flat (real) ``rate``, ``rest``, ``values`` and ``grad`` and
            ``share`` the number of the parameter's elements the piece stands for. Only
            elementwise rules on dense, contiguous CPU tensors are cut (the values are those
            of the whole tensor, element by element; see :mod:`lrkit.inspect.selection`);
            ``None``: one record per parameter.
    """
    if chunk is not None and (not isinstance(chunk, int) or chunk < 1):
        raise ValueError(f"chunk={chunk!r} is invalid: expected an integer >= 1 or None")
    moved = _stepped_set(optimizer, stepped)
    tracked = _TRACKED.get(optimizer) or {}  # recorded on the optimizer the user steps
    if type(optimizer).__name__ == "ZeroRedundancyOptimizer":  # this rank's partition
        optimizer = getattr(optimizer, "optim")  # noqa: B009
        tracked = tracked or _TRACKED.get(optimizer) or {}
    pre_groups = tracked.get("groups", [])
    pre_states = tracked.get("state", {})
    found = False
    first_error: NoStatisticsError | None = None
    for gi, group, owner, rule in _groups(optimizer):
        lr = _lr(group)
        wd = float(group.get("weight_decay", 0.0))
        decoupled = _decoupled(owner, group)
        sign = -1.0 if group.get("maximize", False) else 1.0
        for p in group["params"]:
            state = {k: _local(v) for k, v in owner.state.get(p, {}).items()}
            if torch.is_complex(p):
                state = {k: _real(v) for k, v in state.items()}
            grad = _dense_grad(p)
            mask = None
            if p.grad is not None and p.grad.is_sparse:
                mask = _real(torch.zeros_like(p.detach(), dtype=torch.bool))
                mask[tuple(p.grad.detach().coalesce().indices())] = True
            values = _real(_local(p.detach()))
            numel = values.numel()
            elementwise = rule not in WHOLE_TENSOR_RULES
            sampled = (sample is not None and numel > max(int(sample), BLOCK) and elementwise
                       and values.is_contiguous())
            cut = chunk if elementwise and piecewise_ok(
                numel, (values, grad, mask, *state.values())) else None
            pre = pre_groups[gi] if gi < len(pre_groups) else None
            for part in parts(numel, sample if sampled else None, cut):
                take = part.take
                pst = {key: take(v) for key, v in state.items()} if take else state
                pv, pg, pm = (take(values), take(grad), take(mask)) if take else (
                    values, grad, mask)
                ctx = _Ctx(group, pst, pv, lr, sign, pg, pre, pre_states.get(p), pm)
                try:
                    out = rule(ctx)
                except NoStatisticsError as err:  # the same for every piece
                    first_error = first_error or err
                    break
                found = True
                if not isinstance(out, RuleOut):
                    out = RuleOut(*out)
                dec = out.decoupled if out.decoupled is not None else (
                    lr * wd if decoupled else 0.0)
                cpl = out.coupled if out.coupled is not None else (0.0 if decoupled else wd)
                yield ParamRates(
                    param=p,
                    group=gi,
                    lr=lr,
                    rate=out.rate,
                    decoupled_decay=dec,
                    grad_coef=out.grad_coef,
                    rest=out.rest,
                    coupled_decay=cpl,
                    sign=sign,
                    skipped=moved is not None and p not in moved,
                    grad=pg,
                    info=out.info,
                    update_fn=out.update,
                    values=pv,
                    take=take,
                    numel=numel,
                    share=part.share,
                )
    if not found:
        raise NoStatisticsError(
            f"no statistics yet for {type(optimizer).__name__}: call optimizer.step() first"
            + (f" ({first_error})" if first_error else "")
        )


def effective_rates(
    optimizer: torch.optim.Optimizer, *, stepped: Collection[Tensor] | None = None
) -> list[ParamRates]:
    """Per-element effective rates of every stepped parameter (definitions: module docstring).

    Args:
        optimizer: one of :data:`SUPPORTED_OPTIMIZERS` (subclasses are not accepted: they may
            change the rule), or a :class:`~lrkit.torch.CombinedOptimizer` of them (each
            group read with its part's rule).
        stepped: the parameters the last step updated (see :func:`iter_rates`); the others
            are listed with ``skipped=True``.

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
    return list(iter_rates(optimizer, stepped=stepped))


def _direction_and_old(pr: ParamRates) -> tuple[Tensor, Tensor]:
    """Solve the update rule for the pre-step parameter; return (direction, p_old)."""
    p = pr.values if pr.values is not None else _real(pr.param.detach())
    rest = pr.rest if pr.rest is not None else torch.zeros((), dtype=p.dtype, device=p.device)
    if pr.grad_coef is None:
        gpart = torch.zeros((), dtype=p.dtype, device=p.device)
        wdc: Scalar = 0.0
    else:
        if pr.grad is None:
            raise NoStatisticsError(
                "the last update needs param.grad (call before zero_grad) or a snapshot"
            )
        gpart = pr.grad * (pr.sign * pr.grad_coef)
        wdc = pr.coupled_decay * pr.grad_coef
    # p_new = p_old (1 - lr*wd_dec - rate*gcoef*wd_cpl) - rate*(gcoef*s*grad + rest)
    keep = 1.0 - pr.decoupled_decay - pr.rate * wdc
    p_old = (p + pr.rate * (gpart + rest)) / keep
    direction = gpart + rest + p_old * wdc if pr.grad_coef is not None else rest + gpart
    return direction, p_old


def _nonzero(x: Scalar) -> bool:
    return bool(x != 0) if not isinstance(x, Tensor) else True


def _as_param(pr: ParamRates, delta: Tensor) -> Tensor:
    if torch.is_complex(pr.param) and pr.take is None:
        return torch.view_as_complex(delta.contiguous())
    return delta


def update_of(pr: ParamRates) -> Tensor:
    """The last step's change of one parameter, from its :class:`ParamRates`.

    Shaped like the parameter; when sampled, the (real, flat) sampled elements.
    """
    if pr.skipped:
        if pr.values is not None and (pr.take is not None or _local(pr.param) is not pr.param):
            return torch.zeros_like(pr.values)
        return torch.zeros_like(pr.param.detach())
    if pr.update_fn is not None:
        return _as_param(pr, pr.update_fn())
    if (pr.grad_coef is None and pr.rest is not None) or (
            pr.grad_coef is not None and pr.coupled_decay == 0.0):
        return _as_param(pr, _uncoupled_update(pr))
    direction, p_old = _direction_and_old(pr)
    return _as_param(pr, -(pr.rate * direction) - pr.decoupled_decay * p_old)


def _uncoupled_update(pr: ParamRates) -> Tensor:
    """The change without coupled decay: the direction does not depend on ``p_old``.

    The same operations as :func:`_direction_and_old` with its zero terms left out (``x + 0``,
    ``x * 1``, ``0 * p_old``), hence the same values up to the sign of a zero, in two to five
    passes instead of twelve (non-finite rates or parameters aside, where the general form
    spreads NaN through ``rate * 0`` and ``0 * p_old``).
    """
    direction = pr.rest
    if pr.grad_coef is not None:
        if pr.grad is None:
            raise NoStatisticsError(
                "the last update needs param.grad (call before zero_grad) or a snapshot"
            )
        gpart = pr.grad * (pr.sign * pr.grad_coef)
        direction = gpart if pr.rest is None else gpart + pr.rest
    assert direction is not None
    step = pr.rate * direction
    dec = pr.decoupled_decay
    if not _nonzero(dec):
        return step.neg_()
    p = pr.values if pr.values is not None else _real(pr.param.detach())
    keep = 1.0 - dec  # the general form's keep, 1 - dec - rate * 0
    if not isinstance(keep, Tensor):  # true division by a device scalar, as by a tensor
        keep = torch.full((), keep, dtype=torch.float64, device=p.device)
    if selection.on_host(p) and p.shape == step.shape and p.dim() == 1:  # a CPU piece
        out = selection.scratch(p.numel(), torch.result_type(p, step), slot=2)
        p_old = torch.add(p, step, out=out).div_(keep)
    else:
        p_old = (p + step).div_(keep)
    return step.neg_().sub_(p_old.mul_(dec))


def last_update(
    optimizer: torch.optim.Optimizer, *, stepped: Collection[Tensor] | None = None
) -> list[tuple[Tensor, Tensor]]:
    """The parameter change of the last step, derived from state (see module docstring).

    Args:
        optimizer: a supported optimizer.
        stepped: the parameters the last step updated (see :func:`iter_rates`); the others
            get a zero change, as torch leaves them alone.

    Returns:
        ``(param, delta)`` pairs, with ``delta = p_new - p_old`` computed as
        ``-rate * direction - lr * wd_dec * p_old`` (no cancellation against ``p``); complex
        parameters get a complex delta; a sparse gradient's zeros move nothing.

    Raises:
        NoStatisticsError: before the first step, or when the rule needs ``param.grad`` and it
            is ``None``.
    """
    return [(pr.param, update_of(pr)) for pr in iter_rates(optimizer, stepped=stepped)]
