"""Agreement across the processes of ``torch.distributed``: one metric, one rate.

A plateau decides on a metric, and each process usually measures its own (the loss of its
shard). :func:`reduce_metric` gathers every rank's value and reduces them the same way on
every rank (``mean``, ``max`` or ``min``, in rank order, so every rank gets the bit-identical
result), which :class:`lrkit.torch.LRScheduler` does before each plateau decision when a
process group is initialized. :func:`check_same_rates` verifies that all ranks hold the same
rates. Both are collective calls: every rank must make them at the same point.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import torch

from lrkit._validate import bad
from lrkit.errors import StateError

__all__ = ["REDUCTIONS", "check_same_rates", "is_distributed", "metric_value", "reduce_metric"]

#: How a plateau combines the ranks' metrics (``"none"``: each rank its own).
REDUCTIONS = ("mean", "max", "min", "none")


def is_distributed() -> bool:
    """Whether a ``torch.distributed`` process group is initialized (with more than one rank
    or not)."""
    import torch.distributed as dist

    return bool(dist.is_available() and dist.is_initialized())


def metric_value(metric: Any) -> float:
    """``metric`` as a float: a real number, or a tensor / array with exactly one element.

    Raises:
        ConfigError: a bool, a string, a complex number or anything else that is not one
            real number (NaN and infinities are returned: the plateau's ``nonfinite`` policy
            decides on them).
    """
    allowed = "a real number or a one-element tensor"
    if isinstance(metric, (bool, str, bytes)) or (isinstance(metric, numbers.Complex) and not \
            isinstance(metric, numbers.Real)):
        raise bad("metric", metric, allowed)
    if isinstance(metric, torch.Tensor):
        if metric.numel() != 1 or metric.is_complex() or metric.dtype == torch.bool:
            raise bad("metric", _short(metric), allowed)
        return float(metric.detach().reshape(()).double().cpu())
    try:
        import numpy as np

        if isinstance(metric, np.ndarray | np.generic):
            arr = np.asarray(metric)
            if arr.size != 1 or not np.issubdtype(arr.dtype, np.number) or \
                    np.issubdtype(arr.dtype, np.complexfloating):
                raise bad("metric", _short(metric), allowed)
            return float(arr.reshape(()))
        return float(metric)
    except (TypeError, ValueError, RuntimeError, OverflowError):
        raise bad("metric", _short(metric), allowed) from None


def _short(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return f"tensor(shape={tuple(value.shape)}, dtype={value.dtype})"
    shape = getattr(value, "shape", None)
    if shape is not None:
        return f"{type(value).__name__}(shape={tuple(shape)}, dtype={getattr(value, 'dtype', '?')})"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _device() -> torch.device:
    import torch.distributed as dist

    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _gather(row: Sequence[float]) -> torch.Tensor:
    """Every rank's ``row`` (same length on every rank), stacked in rank order."""
    import torch.distributed as dist

    t = torch.tensor(list(row), dtype=torch.float64, device=_device())
    out = [torch.empty_like(t) for _ in range(dist.get_world_size())]
    dist.all_gather(out, t)
    return torch.stack(out).cpu()


def reduce_metric(metric: Any, how: str = "mean") -> float:
    """Combine the ranks' metrics (collective); without a process group the metric itself.

    Every rank calls it with its own metric and gets the same float: the mean (summed in rank
    order), max or min (NaN if any rank has NaN). An invalid metric on any rank raises
    :class:`~lrkit.errors.ConfigError` on every rank (so no rank waits forever).

    Example:
        >>> reduce_metric(0.25)  # no process group: the value itself
        0.25
    """
    if how not in REDUCTIONS:
        raise bad("reduce", how, "one of " + ", ".join(repr(r) for r in REDUCTIONS))
    if how == "none" or not is_distributed():
        return metric_value(metric)
    try:
        value, error = metric_value(metric), None
    except ValueError as exc:
        value, error = math.nan, exc
    rows = _gather([value, 0.0 if error is None else 1.0])
    if error is not None:
        raise error
    bad_ranks = [r for r in range(rows.shape[0]) if rows[r, 1] != 0]
    if bad_ranks:
        raise bad("metric", f"<invalid on rank {bad_ranks[0]}>",
                  "a real number or a one-element tensor on every rank")
    values = [float(v) for v in rows[:, 0]]
    if any(math.isnan(v) for v in values):
        return math.nan
    if how == "max":
        return max(values)
    if how == "min":
        return min(values)
    total = 0.0
    for v in values:
        total += v
    return total / len(values)


def check_same_rates(values: Sequence[float], what: str = "rates") -> None:
    """Raise :class:`~lrkit.errors.StateError` on every rank unless all ranks hold the same
    ``values`` (collective; a no-op without a process group).

    Example:
        >>> check_same_rates([0.1, 0.01])  # no process group: nothing to compare
    """
    if not is_distributed():
        return
    n = _gather([float(len(values))])
    if not bool((n == n[0]).all()):
        raise StateError(f"{what} differ across ranks: ranks hold {n[:, 0].tolist()} values")
    rows = _gather([float(v) for v in values])
    for r in range(1, rows.shape[0]):
        same = all(a == b or (math.isnan(a) and math.isnan(b))
                   for a, b in zip(rows[0].tolist(), rows[r].tolist(), strict=True))
        if not same:
            raise StateError(f"{what} differ across ranks: rank 0 holds {rows[0].tolist()}, "
                             f"rank {r} holds {rows[r].tolist()}")
