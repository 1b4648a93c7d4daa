"""Which elements of a parameter a read covers: all, a systematic sample, and in what pieces.

A *selection* is every element of a parameter (exact) or a systematic sample of it:
``ceil(sample / 64)`` blocks of 64 consecutive elements, evenly spaced (each element then
stands for ``stride = numel / selected`` elements). A selection larger than ``chunk``
elements is read in *pieces* of at most about ``chunk`` elements (whole 64-element blocks
when sampled): elementwise rules computed piece by piece give the same per-element values
as on the whole tensor, while their intermediates stay small enough to remain in cache and
to reuse freed memory instead of faulting in fresh pages (on CPU a fresh 80 MB temporary
costs about twice reading it).

Each piece is a ``take`` function, applied to every tensor shaped like the parameter (state,
values, gradient, mask): a 1-D contiguous view of an exact piece, a small copy of a sampled
one; other objects (0-d step counts, factored statistics) pass through unchanged.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

__all__ = ["BLOCK", "CHUNK", "Part", "on_host", "parts", "piecewise_ok", "scratch", "spans"]

BLOCK = 64  #: elements per contiguous block of a sample (whole cache lines)

#: Elements per piece on the CPU (1 MB of float32): :func:`lrkit.inspect.summarize` reads
#: larger parameters in pieces of this size, and :class:`lrkit.inspect.Summarizer` larger
#: tensors. Devices read whole tensors (one kernel each; their allocator reuses memory).
CHUNK = 1 << 18

Take = Callable[[Any], Any]


def on_host(t: Tensor) -> bool:
    """Whether ``t`` is read the host way: in pieces, with reused buffers and host-side
    checks (CPU tensors). Device tensors are read whole, without host synchronisation."""
    return t.device.type == "cpu"


@dataclass(frozen=True)
class Part:
    """One read of a parameter: ``take`` (``None``: the whole tensor as it is) and ``share``,
    the number of the parameter's elements the read stands for."""

    take: Take | None
    share: float


def _sample_rows(numel: int, budget: int) -> tuple[int, int, int]:
    """``(blocks, step, rows)``: the sample is rows ``0, step, ...`` (``rows`` of them) of
    the parameter viewed as ``blocks`` rows of :data:`BLOCK` elements."""
    blocks = numel // BLOCK
    want = max(1, -(-budget // BLOCK))
    step = max(1, blocks // want)
    return blocks, step, len(range(0, blocks, step)[:want])


def _sampled(numel: int, blocks: int, step: int, rows: int, lo: int, hi: int) -> Take:
    whole = lo == 0 and hi == rows

    def take(t: Any) -> Any:
        if isinstance(t, Tensor) and t.dim() > 0 and t.numel() == numel:
            flat = t.reshape(-1)[: blocks * BLOCK].view(blocks, BLOCK)[::step][:rows]
            return (flat if whole else flat[lo:hi]).reshape(-1)
        return t

    return take


def _sliced(numel: int, lo: int, hi: int) -> Take:
    def take(t: Any) -> Any:
        if isinstance(t, Tensor) and t.dim() > 0 and t.numel() == numel:
            return t.reshape(-1)[lo:hi]
        return t

    return take


def parts(numel: int, sample: int | None, chunk: int | None) -> list[Part]:
    """The reads covering a parameter of ``numel`` elements.

    Args:
        numel: the parameter's (local, real-view) element count.
        sample: the per-parameter element budget, or ``None`` for every element (the caller
            decides whether a tensor may be sampled at all).
        chunk: at most about this many elements per piece (``None``: one piece).

    Returns:
        One :class:`Part` per piece, in element order; a single part with ``take=None`` for
        an unsampled tensor read whole. The shares add up to ``numel`` (exactly when not
        sampled).
    """
    if sample is None:
        width, rows, stride = 1, numel, 1.0
    else:
        blocks, step, rows = _sample_rows(numel, int(sample))
        width, stride = BLOCK, numel / (rows * BLOCK)
    per = rows if chunk is None else max(1, int(chunk) // width)
    if per >= rows:
        if sample is None:
            return [Part(None, float(numel))]
        return [Part(_sampled(numel, blocks, step, rows, 0, rows), float(numel))]
    out = []
    for lo in range(0, rows, per):
        hi = min(lo + per, rows)
        take = _sliced(numel, lo, hi) if sample is None else (
            _sampled(numel, blocks, step, rows, lo, hi))
        share = float(hi - lo) if sample is None else (hi - lo) * width * stride
        out.append(Part(take, share))
    return out


def piecewise_ok(numel: int, tensors: Iterable[Any]) -> bool:
    """Whether every tensor shaped like the parameter can be cut into views cheaply: dense,
    contiguous and on the CPU (elsewhere one kernel over the whole tensor is faster)."""
    for t in tensors:
        if isinstance(t, Tensor) and t.dim() > 0 and t.numel() == numel and (
            t.layout != torch.strided or not t.is_contiguous() or not on_host(t)
        ):
            return False
    return True


def spans(t: Tensor) -> list[tuple[int, int]]:
    """``(start, end)`` of the pieces of a flat tensor: :data:`CHUNK` elements on the CPU,
    else the whole tensor."""
    n = t.numel()
    step = CHUNK if on_host(t) else max(n, 1)
    return [(a, min(a + step, n)) for a in range(0, n, step)]


_SCRATCH = threading.local()


def scratch(n: int, dtype: torch.dtype, slot: int = 0) -> Tensor:
    """A reused CPU buffer of ``n`` elements (uninitialised; this thread's, per dtype and
    slot) for intermediates of a piece: warm in cache, where a fresh tensor of a piece's size
    costs about as much again in page faults and cold misses. The callers use a few slots,
    so a thread holds a few MB; above :data:`CHUNK` elements a fresh tensor is returned."""
    if n > CHUNK:
        return torch.empty(n, dtype=dtype)
    bufs: dict[tuple[torch.dtype, int], Tensor] = _SCRATCH.__dict__.setdefault("bufs", {})
    buf = bufs.get((dtype, slot))
    if buf is None or buf.numel() < n:
        buf = bufs[(dtype, slot)] = torch.empty(CHUNK, dtype=dtype)
    return buf[:n]
