"""The study's ``muon`` choice: Muon for the hidden weight matrices, AdamW for the rest.

torch's ``Muon`` takes 2-D parameters only and is meant for the matrices of hidden layers;
practitioners train everything else with AdamW. :func:`muon_split` decides, from the model
alone, which parameters go where:

* **Muon**: every 2-D parameter of the model, except
* **AdamW**: the weights of ``nn.Embedding`` / ``nn.EmbeddingBag`` modules (also when an
  output layer shares them: tied embeddings), the *output head*, every parameter that is not
  2-D (biases, norm gains, 1-D; convolution kernels stay whole on AdamW, they are not
  flattened into matrices) and parameters the model does not own.

Which matrix is the output head cannot be known in general. Without the task saying so, the
rule is: the last module, in the order ``model.named_modules()`` lists them, that holds
parameters of its own is the head when it is an ``nn.Linear`` (a classifier or an LM head
registered last), and its weight stays on AdamW. A task overrides this with a
``muon_exclude`` attribute: parameter names (``fnmatch`` patterns such as ``"head.*"`` or
``"pos"``) kept on AdamW besides the embeddings; given, it replaces the head rule
(``muon_exclude = ()`` puts every 2-D non-embedding parameter on Muon). A bare 2-D
``nn.Parameter`` used as a table (learned positions) is a matrix to this rule: name it there.

:func:`make_muon` builds the :class:`~lrkit.torch.CombinedOptimizer`: each of the task's
groups is split in a Muon part and an AdamW part, which keep the group's own options
(``weight_decay``); all Muon groups come first, so group 0 (the rate a run file records) is
Muon's. One lrkit schedule then drives both base rates.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import nn

from lrkit._validate import bad
from lrkit.errors import ConfigError
from lrkit.torch.combined import CombinedOptimizer

__all__ = ["make_muon", "muon_split", "output_head"]

_EMBEDDINGS = (nn.Embedding, nn.EmbeddingBag)


def output_head(model: nn.Module) -> str | None:
    """The name of the weight taken as the output head (module doc), or ``None``."""
    last: tuple[str, nn.Module] | None = None
    for name, module in model.named_modules():
        if any(True for _ in module.parameters(recurse=False)):
            last = (name, module)
    if last is None or not isinstance(last[1], nn.Linear):
        return None
    return f"{last[0]}.weight" if last[0] else "weight"


def muon_split(model: nn.Module, exclude: Sequence[str] | None = None) -> tuple[
        list[str], list[str]]:
    """(names of the parameters Muon trains, names of those AdamW trains), in the order of
    ``model.named_parameters()`` (see the module doc for the rule).

    Raises:
        ConfigError: a pattern of ``exclude`` that names no parameter.
    """
    named = list(model.named_parameters())
    names = [n for n, _ in named]
    embedded = {id(m.weight) for m in model.modules() if isinstance(m, _EMBEDDINGS)}
    if exclude is None:
        head = output_head(model)
        kept = {head} if head is not None else set()
    else:
        kept = set()
        for pattern in exclude:
            hits = fnmatch.filter(names, pattern)
            if not hits:
                raise bad("muon_exclude", pattern, "a pattern naming parameters of the model "
                          "(fnmatch; they are " + ", ".join(names) + ")")
            kept.update(hits)
    muon = [n for n, p in named if p.dim() == 2 and id(p) not in embedded and n not in kept]
    chosen = set(muon)
    return muon, [n for n in names if n not in chosen]


def _groups(params: Any) -> list[dict[str, Any]]:
    """The task's ``param_groups()`` as torch reads them: a list of dicts."""
    if isinstance(params, torch.Tensor):
        raise bad("param_groups", type(params).__name__, "an iterable of tensors or dicts")
    groups = list(params)
    if groups and not isinstance(groups[0], dict):
        groups = [{"params": groups}]
    out = []
    for g in groups:
        ps = g["params"]
        out.append({**g, "params": [ps] if isinstance(ps, torch.Tensor) else list(ps)})
    return out


def make_muon(
    params: Iterable[Any],
    model: nn.Module,
    *,
    lr: float,
    weight_decay: float,
    adamw_lr: float,
    adamw_weight_decay: float,
    exclude: Sequence[str] | None = None,
) -> CombinedOptimizer:
    """Muon (``lr``, ``weight_decay``, torch's other defaults: momentum 0.95, Nesterov, the
    ``"original"`` shape adjustment) on the matrices :func:`muon_split` picks, AdamW
    (``adamw_lr``, ``adamw_weight_decay``) on the rest, as one optimizer.

    Raises:
        ConfigError: no parameter for Muon; a group of ``params`` with its own ``lr`` (the
            two parts need rates of their own); a bad ``exclude`` pattern.
    """
    muon_names, _ = muon_split(model, exclude)
    by_name = dict(model.named_parameters())
    hidden = {id(by_name[n]) for n in muon_names}
    groups = _groups(params)
    muon_groups: list[dict[str, Any]] = []
    adamw_groups: list[dict[str, Any]] = []
    for i, g in enumerate(groups):
        if "lr" in g:
            raise bad(f"param_groups()[{i}]['lr']", g["lr"], "no lr of the group's own with "
                      "optimizer='muon' (Muon's matrices and AdamW's rest each take their "
                      "base rate: --lr muon=..., --lr adamw=...)")
        options = {k: v for k, v in g.items() if k != "params"}
        mine = [p for p in g["params"] if id(p) in hidden]
        rest = [p for p in g["params"] if id(p) not in hidden]
        if mine:
            muon_groups.append({**options, "params": mine})
        if rest:
            adamw_groups.append({**options, "params": rest})
    if not muon_groups:
        shapes = ", ".join(f"{n} {tuple(p.shape)}" for n, p in by_name.items()) or "none"
        head = output_head(model) if exclude is None else None
        kept = f"the output head {head!r}, " if head else ""
        raise ConfigError(
            "optimizer='muon' is invalid for this model: no parameter for Muon (it takes the "
            f"2-D weights of hidden layers; embeddings, {kept}parameters that are not 2-D "
            "and those of the task's muon_exclude stay on AdamW). Parameters: "
            f"{shapes}. Use adamw, or name in the task's muon_exclude what AdamW keeps (() "
            "puts the output head on Muon too)")
    parts: list[torch.optim.Optimizer] = [
        torch.optim.Muon(muon_groups, lr=lr, weight_decay=weight_decay)]
    if adamw_groups:
        parts.append(torch.optim.AdamW(adamw_groups, lr=adamw_lr,
                                       weight_decay=adamw_weight_decay))
    return CombinedOptimizer(*parts)
