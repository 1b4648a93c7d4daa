"""Hooks that keep what an optimizer step overwrites or skips (see :func:`track`)."""

from __future__ import annotations

import weakref
from typing import Any

import torch

__all__ = ["track"]

_TRACKED: weakref.WeakKeyDictionary[torch.optim.Optimizer, dict[str, Any]] = (
    weakref.WeakKeyDictionary()
)


class _Handles:
    def __init__(self, *handles: Any) -> None:
        self.handles = handles

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


def track(optimizer: torch.optim.Optimizer) -> Any:
    """Record, around every ``optimizer.step()``, what the step overwrites or skips.

    Some optimizers overwrite a quantity their step used (Prodigy's ``d``, ASGD's ``eta``):
    a pre-step hook keeps those few scalars. Which parameters a step updated (those with a
    gradient) is read by a post-step hook, so that closures computing the gradients inside
    ``step()`` (Lightning, LBFGS-style loops) count. :func:`effective_rates` and
    :func:`last_update` are then exact afterwards, even after ``zero_grad()``.
    :meth:`lrkit.inspect.Monitor.attach` calls it.

    Returns:
        a handle whose ``.remove()`` stops tracking.
    """

    def pre(opt: torch.optim.Optimizer, *_: Any) -> None:
        groups = [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]
        lr_max = max((float(g["lr"]) for g in opt.param_groups), default=0.0)
        for g in groups:
            g["lr_max"] = lr_max
        state = {}
        for g in opt.param_groups:
            for p in g["params"]:
                st = opt.state.get(p)
                if st and "eta" in st:
                    state[p] = {"eta": float(st["eta"])}
        _TRACKED[opt] = {"groups": groups, "state": state, "stepped": None}

    def post(opt: torch.optim.Optimizer, *_: Any) -> None:
        rec = _TRACKED.setdefault(opt, {"groups": [], "state": {}})
        rec["stepped"] = {p for g in opt.param_groups for p in g["params"] if p.grad is not None}

    return _Handles(optimizer.register_step_pre_hook(pre), optimizer.register_step_post_hook(post))
