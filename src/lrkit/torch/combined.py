"""``CombinedOptimizer``: several torch optimizers over disjoint parameters, used as one.

The usual way to train with Muon is two optimizers: ``torch.optim.Muon`` for the hidden
weight matrices and AdamW for everything else. Schedulers, checkpoints and monitors expect
*one* optimizer; :class:`CombinedOptimizer` is that one. It is a real
``torch.optim.Optimizer`` whose ``param_groups`` are its parts' groups, in order (the same
dict objects, so a scheduler writing ``group["lr"]`` writes the part's rate), whose
``step()`` steps every part, and whose ``state_dict()`` / ``load_state_dict()`` are torch's
own, over all groups. Hence:

* one :class:`lrkit.torch.LRScheduler` drives every part: each group keeps its own base rate
  (``initial_lr``) and a relative schedule multiplies each base, so Muon at 0.02 and AdamW
  at 3e-3 follow the same curve;
* a checkpoint is one ``state_dict`` and a resumed run continues bit for bit;
* :mod:`lrkit.inspect` reads each group with its part's update rule (Muon's adjusted rate,
  AdamW's per-element rates); :func:`lrkit.inspect.advice` gives the parts' notes.

The parts' step functions run unchanged (torch's arithmetic, torch's state), one after
another in the order given; a closure is evaluated once, before the parts step. Each part
keeps its own ``state`` dict (its own ``state_dict()`` keeps working); the combined ``state``
holds the same per-parameter entries (brought up to date by ``step()`` and
``state_dict()``). Groups cannot be added after combining: add them to
a part first.

Example:
    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2))
    >>> hidden = model[0].weight
    >>> rest = [p for p in model.parameters() if p is not hidden]
    >>> opt = CombinedOptimizer(torch.optim.Muon([hidden], lr=0.02),
    ...                         torch.optim.AdamW(rest, lr=3e-3))
    >>> [g["lr"] for g in opt.param_groups]
    [0.02, 0.003]
    >>> model(torch.ones(3, 4)).sum().backward()
    >>> opt.step(); opt.zero_grad()
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

import torch

from lrkit._validate import bad

__all__ = ["CombinedOptimizer"]


class CombinedOptimizer(torch.optim.Optimizer):
    """Step, schedule, save and inspect several optimizers as one (see the module doc).

    Args:
        *optimizers: the parts, each a ``torch.optim.Optimizer`` (not itself combined); no
            parameter may belong to two parts. Their groups become ``param_groups`` in this
            order.

    Attributes:
        parts: the optimizers, in the order given.

    Raises:
        ConfigError: no part, a part that is not an optimizer (or is combined), or a
            parameter held by two parts.
    """

    def __init__(self, *optimizers: torch.optim.Optimizer) -> None:
        self._parts: tuple[torch.optim.Optimizer, ...] = ()
        if not optimizers:
            raise bad("optimizers", optimizers, "at least one torch.optim.Optimizer")
        owner: dict[int, int] = {}
        for i, opt in enumerate(optimizers):
            if not isinstance(opt, torch.optim.Optimizer) or isinstance(opt, CombinedOptimizer):
                raise bad(f"optimizers[{i}]", opt, "a torch.optim.Optimizer that is not a "
                          "CombinedOptimizer (give its parts directly)")
            for group in opt.param_groups:
                for p in group["params"]:
                    j = owner.setdefault(id(p), i)
                    if j != i:
                        raise bad(f"optimizers[{i}]", type(opt).__name__,
                                  "an optimizer of parameters no other part holds (a "
                                  f"parameter of shape {tuple(p.shape)} is also in "
                                  f"optimizers[{j}])")
        # the parts' own group dicts: a write to param_groups[i] is a write to the part
        super().__init__([g for opt in optimizers for g in opt.param_groups], {})
        self._parts = tuple(optimizers)
        self._sync()
        self.register_load_state_dict_post_hook(_relink, prepend=True)

    @property
    def parts(self) -> tuple[torch.optim.Optimizer, ...]:
        return self._parts

    def owners(self) -> list[tuple[int, torch.optim.Optimizer]]:
        """``(index of its first group in param_groups, part)`` for every part, in order."""
        out, start = [], 0
        for opt in self._parts:
            out.append((start, opt))
            start += len(opt.param_groups)
        return out

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Used while combining; afterwards refused (the group would belong to no part)."""
        if self._parts:
            raise bad("param_group", {k: v for k, v in param_group.items() if k != "params"},
                      "a group added to one of the parts before combining (a "
                      "CombinedOptimizer cannot tell which part a new group belongs to)")
        super().add_param_group(param_group)

    def _sync(self) -> None:
        """Make ``state`` hold every part's per-parameter entries (the same dicts)."""
        for opt in self._parts:
            self.state.update(opt.state)

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """Step every part in order (``closure``, if given, is evaluated once first)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for opt in self._parts:
            opt.step()
        self._sync()
        return loss

    def state_dict(self) -> dict[str, Any]:
        """torch's optimizer state over all groups (the parts' groups in order)."""
        self._sync()
        return super().state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """torch's loading, after checking that each saved group is of its part's kind.

        Raises:
            ValueError: torch's errors (other group count or sizes), or a saved group that
                lacks the hyperparameters of the part it would go to (saved from another
                combination).
        """
        saved = state_dict.get("param_groups") if isinstance(state_dict, dict) else None
        if isinstance(saved, list) and len(saved) == len(self.param_groups):
            for start, opt in self.owners():
                for i in range(start, start + len(opt.param_groups)):
                    missing = sorted(set(opt.defaults) - set(saved[i]))
                    if missing:
                        raise ValueError(
                            f"state_dict['param_groups'][{i}] is invalid: expected a group "
                            f"of {type(opt).__name__} (part {self._parts.index(opt)}); it "
                            f"lacks {', '.join(missing)}: saved from another combination")
        super().load_state_dict(state_dict)

    def _relink(self) -> None:
        """After torch loaded new groups and state: hand each part its groups and state."""
        for start, opt in self.owners():
            groups = self.param_groups[start:start + len(opt.param_groups)]
            mine = {p for g in groups for p in g["params"]}
            state: defaultdict[torch.Tensor, Any] = defaultdict(dict)
            state.update((p, s) for p, s in self.state.items() if p in mine)
            opt.__setstate__({"state": state, "param_groups": groups})

    def __repr__(self) -> str:
        spans = ", ".join(
            f"{type(opt).__name__}: groups {start}-{start + len(opt.param_groups) - 1}"
            for start, opt in self.owners())
        return f"CombinedOptimizer({spans})"


def _relink(optimizer: torch.optim.Optimizer) -> None:
    """The post-load hook (first of them) of a :class:`CombinedOptimizer`."""
    if isinstance(optimizer, CombinedOptimizer):
        optimizer._relink()
