"""The real peer libraries, loaded for differential tests, and their stepping protocols.

The peers are installed by ``scripts/test.sh`` without their heavy extras
(``pip install --no-deps timm mmengine`` plus ``addict yapf termcolor``). A peer that does
not import fails the test that needs it: these are not optional checks.

timm's package ``__init__`` imports its models (torchvision); its scheduler modules do not.
:func:`timm_scheduler` imports ``timm.scheduler`` under a bare ``timm`` package module (the
real package's directory, without running its ``__init__``) when the real package does not
import.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch

from lrkit import Schedule
from lrkit.torch import LRScheduler


def timm_scheduler() -> types.ModuleType:
    """``timm.scheduler`` (create_scheduler_v2 and the scheduler classes)."""
    if "timm.scheduler" in sys.modules:
        return sys.modules["timm.scheduler"]
    spec = importlib.util.find_spec("timm")
    assert spec is not None, "timm is not installed (scripts/test.sh installs it)"
    assert spec.submodule_search_locations, "timm is not a package"
    try:
        importlib.import_module("timm")
    except ImportError:  # torchvision missing: a bare package module over the same files
        sys.modules.pop("timm", None)
        stub = types.ModuleType("timm")
        stub.__path__ = list(spec.submodule_search_locations)
        stub.__file__ = spec.origin
        sys.modules["timm"] = stub
    return importlib.import_module("timm.scheduler")


def mmengine_lr() -> types.ModuleType:
    """``mmengine.optim.scheduler`` (imports without opencv)."""
    return importlib.import_module("mmengine.optim.scheduler")


def optimizer(lrs: Sequence[float], **extra: Any) -> torch.optim.Optimizer:
    """SGD with one param group per rate (``extra[key][i]`` added to group ``i``)."""
    groups = []
    for i, lr in enumerate(lrs):
        g: dict[str, Any] = {"params": [torch.nn.Parameter(torch.zeros(2))], "lr": lr}
        for key, values in extra.items():
            if values[i] is not None:
                g[key] = values[i]
        groups.append(g)
    return torch.optim.SGD(groups, lr=lrs[0], momentum=0.9)


def rates(opt: torch.optim.Optimizer) -> list[float]:
    return [float(g["lr"]) for g in opt.param_groups]


def lrkit_rates(
    opt: torch.optim.Optimizer,
    schedule: Schedule | Sequence[Schedule],
    updates: int,
    metrics: Callable[[int], float | None] | None = None,
) -> list[list[float]]:
    """The rate of each group at each update under lrkit's LRScheduler: read before the
    update, then ``step(metric)`` with ``metrics(k)`` after update ``k`` (or ``step()``)."""
    sched = LRScheduler(opt, schedule if isinstance(schedule, Schedule) else list(schedule))
    out = []
    for k in range(updates):
        out.append(rates(opt))
        opt.step()
        m = None if metrics is None else metrics(k)
        sched.step() if m is None else sched.step(m)
    return out


def timm_rates(
    make: Callable[[torch.optim.Optimizer], Any],
    opt: torch.optim.Optimizer,
    epochs: int,
    updates_per_epoch: int,
    metrics: Callable[[int], float | None] | None = None,
) -> list[list[float]]:
    """timm's train.py protocol: the scheduler built before training; after update ``n``
    (counted from 1) ``step_update(num_updates=n)``; after epoch ``e``
    ``step(e + 1, metric)``. The rate of each group at each update."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # plateau's deprecation warning
        sched = make(opt)
    out = []
    n = 0
    for epoch in range(epochs):
        for _ in range(updates_per_epoch):
            out.append(rates(opt))
            opt.step()
            n += 1
            sched.step_update(num_updates=n)
        sched.step(epoch + 1, None if metrics is None else metrics(epoch))
    return out


def torch_rates(sched: Any, opt: torch.optim.Optimizer, steps: int) -> list[list[float]]:
    """A torch scheduler stepped once per update; the rate of each group at each update."""
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(steps):
            out.append(rates(opt))
            opt.step()
            sched.step()
    return out


def mmengine_rates(
    cfgs: Sequence[dict[str, Any]], opt: torch.optim.Optimizer, iters: int, epoch_length: int
) -> list[list[float]]:
    """mmengine's runner protocol (ParamSchedulerHook): the schedulers built in list order
    (``convert_to_iter_based`` entries through ``build_iter_from_epoch``); after every
    iteration the iteration-based ones step, after every epoch the epoch-based ones."""
    mm = mmengine_lr()
    scheds = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for c in cfgs:
            kw = dict(c)
            cls = getattr(mm, kw.pop("type"))
            if kw.pop("convert_to_iter_based", False) and kw.get("by_epoch", True):
                scheds.append(cls.build_iter_from_epoch(opt, epoch_length=epoch_length, **kw))
            else:
                scheds.append(cls(opt, **kw))
        out = []
        for it in range(iters):
            out.append(rates(opt))
            opt.step()
            for s in scheds:
                if not s.by_epoch:
                    s.step()
            if (it + 1) % epoch_length == 0:
                for s in scheds:
                    if s.by_epoch:
                        s.step()
    return out
