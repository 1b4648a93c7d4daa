"""Sharded and distributed training: each rank summarises its shard, summaries merge.

Under DDP with :class:`torch.distributed.optim.ZeroRedundancyOptimizer` each rank's local
optimizer holds the state of its partition of the parameters; under FSDP2 (``fully_shard``)
parameters, gradients and optimizer states are DTensors and each rank holds a shard of each.
lrkit reads only local data (the local optimizer, ``DTensor.to_local()``): no collective while
computing rates. :func:`merge_summaries` then combines the ranks' summaries with one
``all_gather`` of one packed float64 vector per record (the first record, and any after the
keys change, exchange a 2-number layout header before it, so that ranks with mismatched
layouts fail together), each waited for with a timeout: histogram
counts, element counts, sums and the update/gradient sums add; minima and maxima reduce.
Every rank gets the merged summaries, equal to those of one process holding the whole model
up to the order of the additions: the test (two gloo ranks, float64, ``sample=None``) checks
counts exactly, means, extremes, update ratios and cosines to 1e-9 relative, the median to
the histogram's bin, and allows a rate exactly on a bin edge to land one bin over. With the
default sampling each rank samples its own shard, so the merged sample differs from a single
process's (same estimates, different elements).

Where torch runs: FSDP2 (``fully_shard``) and ZeRO both run on CPU with gloo (tested);
CUDA-only FSDP2 features (mixed-precision policies with reduce dtypes, CPU offload policy) are
untested here.

Records must therefore happen at the same steps on every rank (the :class:`Monitor` hook does
that); a rank that does not join within ``timeout`` makes the others raise instead of hanging.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from lrkit.inspect.effective import UnsupportedOptimizerError
from lrkit.inspect.summary import Summary

__all__ = ["is_sharded", "local_optimizer", "merge_summaries"]

_ADD = ("n", "sum", "upd_sq", "w_sq", "has_upd", "ug", "g_sq", "has_grad")


def local_optimizer(optimizer: Any) -> Any:
    """The optimizer holding this rank's state (``ZeroRedundancyOptimizer.optim``), else itself."""
    if type(optimizer).__name__ == "ZeroRedundancyOptimizer" and hasattr(optimizer, "optim"):
        return optimizer.optim
    return optimizer


def is_sharded(optimizer: Any) -> bool:
    """Whether the optimizer shards state across ranks (ZeRO) or holds DTensor parameters."""
    if local_optimizer(optimizer) is not optimizer:
        return True
    try:
        from torch.distributed.tensor import DTensor
    except ImportError:  # pragma: no cover - torch without distributed
        return False
    return any(isinstance(p, DTensor) for g in optimizer.param_groups for p in g["params"])


def _fingerprint(keys: Sequence[Any], bins: int) -> float:
    text = repr((list(map(str, keys)), bins)).encode()
    return float(int(hashlib.sha1(text).hexdigest()[:12], 16))


def _wait(work: Any, timeout: float) -> None:
    if not work.wait(timeout=datetime.timedelta(seconds=timeout)):  # pragma: no cover
        raise RuntimeError(f"ranks did not join the summary merge within {timeout} s")


def merge_summaries(
    summaries: dict[Any, Summary],
    keys: Sequence[Any],
    *,
    bins: int,
    low: float,
    bpd: int,
    group: Any = None,
    timeout: float = 300.0,
    check_layout: bool = True,
) -> dict[Any, Summary]:
    """Merge every rank's summaries for ``keys`` (the same list on every rank).

    One ``all_gather`` of the packed summaries, waited for at most ``timeout``; with
    ``check_layout`` (the :class:`Monitor` does it on its first record and whenever its keys
    change) a 2-number header (layout fingerprint and length) is exchanged first, so that
    ranks with mismatched layouts fail together instead of exchanging vectors of unequal
    length.

    Args:
        summaries: this rank's summaries (keys it holds no elements of may be missing).
        keys: every key any rank may report, in the same order on every rank.
        bins, low, bpd: the histogram layout (must match across ranks).
        group: the process group (default: the world).
        timeout: seconds to wait for the other ranks.

    Raises:
        UnsupportedOptimizerError: no initialised process group, or the ranks' keys or
            histogram layouts differ (mismatched shards): raised on every rank alike.
        RuntimeError: a rank did not join within ``timeout``.
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        raise UnsupportedOptimizerError(
            "a sharded optimizer (ZeroRedundancyOptimizer or DTensor parameters) needs an "
            "initialised torch.distributed process group to merge its ranks' summaries"
        )
    width = bins + len(_ADD) + 2
    packed = torch.zeros(1 + len(keys) * width, dtype=torch.float64)
    packed[0] = _fingerprint(keys, bins)
    for i, key in enumerate(keys):
        row = packed[1 + i * width : 1 + (i + 1) * width]
        s = summaries.get(key)
        if s is None:
            row[-2] = -torch.inf  # -min
            row[-1] = -torch.inf  # max
            continue
        t = {k: v.detach().to("cpu", torch.float64) for k, v in s.tensors.items()}
        if t["counts"].numel() != bins:
            raise UnsupportedOptimizerError(
                f"mismatched histogram: {t['counts'].numel()} bins here, {bins} expected"
            )
        row[:bins] = t["counts"]
        for j, k in enumerate(_ADD):
            row[bins + j] = t[k]
        row[-2] = -t["min"]
        row[-1] = t["max"]
    world = dist.get_world_size(group)
    # a 2-number header first (fixed size whatever the layout), so that ranks whose layouts
    # differ all learn it and raise together instead of exchanging vectors of unequal length
    head = torch.tensor([packed[0], float(packed.numel())], dtype=torch.float64)
    heads = [head]
    if check_layout:
        heads = [torch.empty_like(head) for _ in range(world)]
        _wait(dist.all_gather(heads, head, group=group, async_op=True), timeout)
    if any(not torch.equal(h, head) for h in heads):
        raise UnsupportedOptimizerError(
            "mismatched shards: the ranks report different parameter sets or histogram layouts "
            "(same model, same named_parameters and bins_per_decade on every rank expected)"
        )
    out = [torch.empty_like(packed) for _ in range(world)]
    _wait(dist.all_gather(out, packed, group=group, async_op=True), timeout)
    stack = torch.stack(out)[:, 1:].reshape(world, len(keys), width)
    total = stack.sum(0)
    lo = stack[:, :, -2].max(0).values.neg()
    hi = stack[:, :, -1].max(0).values
    merged: dict[Any, Summary] = {}
    for i, key in enumerate(keys):
        n = float(total[i, bins])
        if n == 0:
            continue
        tensors: dict[str, Tensor] = {"counts": total[i, :bins].clone()}
        for j, k in enumerate(_ADD):
            tensors[k] = total[i, bins + j].clone()
        tensors["min"], tensors["max"] = lo[i].clone(), hi[i].clone()
        merged[key] = Summary(key, low, bpd, tensors)
    return merged
