"""The per-layer picture as data: one value per (recorded step, named parameter).

A :class:`lrkit.inspect.Monitor` with ``per_param=True`` (and ``named_parameters``) records,
per named parameter and recorded step, the fields of :meth:`lrkit.inspect.Summary.as_dict`;
the per-layer ones are

* ``log10_update_to_weight``: :math:`\\log_{10}` of RMS(Δp)/RMS(p), read against roughly
  :math:`-3` (much higher: the layer moves too fast; much lower: it barely trains);
* ``p50`` and ``p90``: the median and 90th percentile of the effective per-element rate;
* ``update_grad_cosine``: cosine between Δp and the gradient (−1 is plain gradient descent;
  adaptive and momentum methods sit between −1 and 0).

:func:`layer_matrix` arranges one field as a matrix (steps × layers), and :func:`flag_layers`
names the layers whose update-to-weight ratio sits far from the usual value. Both read only
host values, so the compare report and TensorBoard use them without matplotlib.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lrkit.inspect.monitor import Monitor, Record

__all__ = ["LAYER_FIELDS", "LayerFlags", "flag_layers", "layer_matrix"]

#: The per-layer fields a record carries (keys of ``Record.row()``).
LAYER_FIELDS: tuple[str, ...] = ("log10_update_to_weight", "p50", "p90", "update_grad_cosine")


def layer_matrix(
    source: Monitor | Sequence[Record], field: str = "log10_update_to_weight"
) -> tuple[np.ndarray, list[str], np.ndarray]:
    """``(steps, names, values)`` with ``values[i, j]`` = ``field`` of layer ``j`` at step ``i``.

    Only records keyed by a name (``per_param=True``) are layers; missing values are NaN.

    Raises:
        ValueError: no per-parameter records, or an unknown field.
    """
    recs = [r for r in (source.history if isinstance(source, Monitor) else source)
            if isinstance(r.group, str)]
    if not recs:
        raise ValueError(
            "no per-layer records: use Monitor(..., per_param=True, named_parameters=...)"
        )
    rows = [r.row() for r in recs]
    if field not in rows[0]:
        raise ValueError(f"field={field!r} is invalid: expected one of {sorted(rows[0])}")
    steps = sorted({r.step for r in recs})
    names = list(dict.fromkeys(str(r.group) for r in recs))
    si = {s: i for i, s in enumerate(steps)}
    ni = {n: j for j, n in enumerate(names)}
    out = np.full((len(steps), len(names)), np.nan)
    for r, row in zip(recs, rows, strict=True):
        v = row[field]
        out[si[r.step], ni[str(r.group)]] = math.nan if v is None else float(v)
    return np.asarray(steps), names, out


@dataclass(frozen=True)
class LayerFlags:
    """Layers whose median ``log10_update_to_weight`` over the recorded steps is out of range."""

    too_fast: list[str]
    too_slow: list[str]
    median: dict[str, float]


def flag_layers(
    source: Monitor | Sequence[Record], *, fast: float = -2.0, slow: float = -4.0
) -> LayerFlags:
    """Flag layers updating far too fast (median log10 ratio > ``fast``) or too slowly (<
    ``slow``); the usual value is about −3 (updates about 1/1000 of the weights per step)."""
    if not slow < fast:
        raise ValueError(f"slow={slow!r}, fast={fast!r} is invalid: expected slow < fast")
    _, names, vals = layer_matrix(source, "log10_update_to_weight")
    med = {}
    for j, n in enumerate(names):
        col = vals[:, j][np.isfinite(vals[:, j])]
        med[n] = float(np.median(col)) if col.size else math.nan
    return LayerFlags(
        too_fast=[n for n, m in med.items() if m > fast],
        too_slow=[n for n, m in med.items() if m < slow],
        median=med,
    )
