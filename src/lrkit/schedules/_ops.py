"""The array operations a schedule formula is written in, for NumPy and for torch.

A schedule writes its formula once, against the small :class:`Ops` interface below. The same
formula then runs on a Python scalar (as a NumPy ``float64`` scalar, so scalar and NumPy-array
results agree bit for bit), on a NumPy array, or on a torch tensor of any device and floating
dtype (with torch operations only: no host-device copy, no sync, nothing a CUDA graph or
``torch.compile`` cannot capture).

torch is imported lazily, only once a tensor is seen, so the core never imports it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["NUMPY", "TORCH", "Ops", "ops_for"]

Array = Any  # np.ndarray | np.float64 | torch.Tensor


class Ops:
    """Elementwise operations on float arrays; ``Array`` is the backend's array type.

    Scalars given where an array may appear (``a``/``b`` in :meth:`where`, ``v`` in
    :meth:`minimum`) are Python floats.
    """

    name = "abstract"

    def cos(self, x: Array) -> Array:
        raise NotImplementedError

    def exp(self, x: Array) -> Array:
        raise NotImplementedError

    def log(self, x: Array) -> Array:
        raise NotImplementedError

    def sqrt(self, x: Array) -> Array:
        raise NotImplementedError

    def floor(self, x: Array) -> Array:
        raise NotImplementedError

    def pow(self, x: Array | float, p: Array | float) -> Array:
        """``x ** p`` elementwise; at least one of them is an array."""
        raise NotImplementedError

    def where(self, cond: Array, a: Array | float, b: Array | float) -> Array:
        raise NotImplementedError

    def minimum(self, x: Array, v: Array | float) -> Array:
        raise NotImplementedError

    def maximum(self, x: Array, v: Array | float) -> Array:
        raise NotImplementedError

    def full_like(self, x: Array, v: float) -> Array:
        raise NotImplementedError

    def count_le(self, boundaries: Sequence[float], x: Array) -> Array:
        """How many of the sorted ``boundaries`` are ``<= x``, as floats."""
        raise NotImplementedError

    def select(self, index: Array, values: Sequence[float]) -> Array:
        """``values[index]`` elementwise for an integral float ``index`` array."""
        raise NotImplementedError

    def clip(self, x: Array, low: float, high: float) -> Array:
        return self.minimum(self.maximum(x, low), high)

    def lerp(self, a: float, b: float, w: Array) -> Array:
        """``a + (b - a) * w`` for ``w`` in ``[0, 1]``: exactly ``a`` at ``w = 0`` and ``b`` at
        ``w = 1``, monotone in ``w`` and never outside ``[min(a, b), max(a, b)]`` (the plain
        formula can miss ``b`` or overshoot it by an ulp)."""
        out = self.where(w >= 1.0, b, a + (b - a) * w)
        return self.clip(out, min(a, b), max(a, b))

    def cos_anneal(self, frac: Array) -> Array:
        """``(1 + cos(pi * frac)) / 2``: 1 at ``frac = 0``, 0 at ``frac = 1``."""
        return (self.cos(frac * math.pi) + 1.0) * 0.5


class _NumpyOps(Ops):
    name = "numpy"

    def cos(self, x: Array) -> Array:
        return np.cos(x)

    def exp(self, x: Array) -> Array:
        return np.exp(x)

    def log(self, x: Array) -> Array:
        return np.log(x)

    def sqrt(self, x: Array) -> Array:
        return np.sqrt(x)

    def floor(self, x: Array) -> Array:
        return np.floor(x)

    def pow(self, x: Array | float, p: Array | float) -> Array:
        return np.power(x, p)

    def clip(self, x: Array, low: float, high: float) -> Array:
        return np.clip(x, low, high)  # one pass; equals minimum(maximum(x, low), high)

    def lerp(self, a: float, b: float, w: Array) -> Array:
        # The base formula, in place on one buffer (temporaries dominate at this size);
        # w * (b - a) + a rounds exactly as a + (b - a) * w (IEEE + and * commute).
        if np.ndim(w) == 0:
            return super().lerp(a, b, w)
        out = np.multiply(w, b - a)
        out += a
        np.copyto(out, b, where=w >= 1.0)
        return np.clip(out, min(a, b), max(a, b), out=out)

    def where(self, cond: Array, a: Array | float, b: Array | float) -> Array:
        return np.where(cond, a, b)

    def minimum(self, x: Array, v: Array | float) -> Array:
        return np.minimum(x, v)

    def maximum(self, x: Array, v: Array | float) -> Array:
        return np.maximum(x, v)

    def full_like(self, x: Array, v: float) -> Array:
        return np.full_like(x, v, dtype=np.float64)

    def count_le(self, boundaries: Sequence[float], x: Array) -> Array:
        return np.searchsorted(np.asarray(boundaries, dtype=np.float64), x, side="right").astype(
            np.float64
        )

    def select(self, index: Array, values: Sequence[float]) -> Array:
        return np.asarray(values, dtype=np.float64)[np.asarray(index, dtype=np.intp)]


class _TorchOps(Ops):
    """torch backend: only elementwise kernels with Python-scalar operands (graph-safe)."""

    name = "torch"

    def cos(self, x: Array) -> Array:
        return x.cos()

    def exp(self, x: Array) -> Array:
        return x.exp()

    def log(self, x: Array) -> Array:
        return x.log()

    def sqrt(self, x: Array) -> Array:
        return x.sqrt()

    def floor(self, x: Array) -> Array:
        return x.floor()

    def pow(self, x: Array | float, p: Array | float) -> Array:
        import torch

        return torch.pow(x, p)  # type: ignore[arg-type]  # one of x, p is a tensor

    def where(self, cond: Array, a: Array | float, b: Array | float) -> Array:
        import torch

        return torch.where(cond, a, b)

    def minimum(self, x: Array, v: Array | float) -> Array:
        import torch

        return torch.minimum(x, v) if isinstance(v, torch.Tensor) else x.clamp(max=v)

    def maximum(self, x: Array, v: Array | float) -> Array:
        import torch

        return torch.maximum(x, v) if isinstance(v, torch.Tensor) else x.clamp(min=v)

    def full_like(self, x: Array, v: float) -> Array:
        import torch

        return torch.full_like(x, v)

    def count_le(self, boundaries: Sequence[float], x: Array) -> Array:
        out = self.full_like(x, 0.0)
        for b in boundaries:  # a loop over boundaries, never over steps
            out = out + (x >= b).to(x.dtype)
        return out

    def select(self, index: Array, values: Sequence[float]) -> Array:
        out = self.full_like(index, float(values[0]))
        for i, v in enumerate(values[1:], start=1):
            out = self.where(index >= i, float(v), out)
        return out


NUMPY: Ops = _NumpyOps()
TORCH: Ops = _TorchOps()


def ops_for(x: Any) -> Ops:
    """The backend for ``x``: torch for tensors, NumPy for everything else."""
    return TORCH if type(x).__module__.startswith("torch") else NUMPY
