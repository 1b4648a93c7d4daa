"""Figures: the scheduler's base rate against the optimizer's effective-rate band.

matplotlib is imported on first use, with the Agg backend when no backend was chosen yet.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from lrkit.inspect.monitor import Monitor, Record

__all__ = ["plot_effective_lr", "plot_histograms", "plot_layer_heatmap"]


def _plt() -> Any:
    import matplotlib

    if "matplotlib.pyplot" not in __import__("sys").modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _records(src: Monitor | Sequence[Record]) -> list[Record]:
    recs = list(src.history if isinstance(src, Monitor) else src)
    if not recs:
        raise ValueError("no records to plot: run the monitor for at least one step")
    return recs


def _by_key(recs: list[Record]) -> dict[int | str, list[Record]]:
    out: dict[int | str, list[Record]] = {}
    for r in recs:
        out.setdefault(r.group, []).append(r)
    return out


def _save(fig: Any, path: str | os.PathLike[str] | None, dpi: int) -> None:
    if path is not None:
        fig.savefig(os.fspath(path), dpi=dpi)


def plot_effective_lr(
    source: Monitor | Sequence[Record],
    path: str | os.PathLike[str] | None = None,
    *,
    figsize: tuple[float, float] = (8.0, 4.5),
    dpi: int = 100,
) -> Any:
    """Base rate (line) and effective-rate band (p10-p90 shaded, median) over training.

    One panel per group (or per parameter for per-parameter monitors), log y-axis. The gap
    between the line and the band is what the optimizer adds to the schedule.

    Args:
        source: a :class:`~lrkit.inspect.Monitor` or its ``history``.
        path: write the figure there (format from the suffix) when given.

    Returns:
        The matplotlib ``Figure``.
    """
    plt = _plt()
    groups = _by_key(_records(source))
    fig, axes = plt.subplots(len(groups), 1, figsize=figsize, squeeze=False, sharex=True)
    for ax, (key, recs) in zip(axes[:, 0], groups.items(), strict=True):
        steps = np.array([r.step for r in recs])
        lr = np.array([float(r.lr) for r in recs])
        q = np.array([[r.summary.quantile(x) for x in (0.1, 0.5, 0.9)] for r in recs])
        ax.fill_between(steps, q[:, 0], q[:, 2], alpha=0.3, label="effective p10-p90")
        ax.plot(steps, q[:, 1], label="effective median")
        ax.plot(steps, lr, color="black", label="scheduler lr (base)")
        ax.set_yscale("log")
        ax.set_ylabel(f"rate ({key})" if isinstance(key, str) else f"rate (group {key})")
        ax.legend(loc="best", fontsize="small")
    axes[-1, 0].set_xlabel("optimizer step")
    fig.tight_layout()
    _save(fig, path, dpi)
    return fig


def plot_histograms(
    source: Monitor | Sequence[Record],
    steps: Sequence[int],
    path: str | os.PathLike[str] | None = None,
    *,
    group: int | str = 0,
    figsize: tuple[float, float] = (8.0, 4.5),
    dpi: int = 100,
) -> Any:
    """Histogram of the effective rates at the recorded steps nearest to ``steps``.

    The base rate at each step is marked with a vertical line of the same colour.
    """
    plt = _plt()
    recs = [r for r in _records(source) if r.group == group]
    if not recs:
        raise ValueError(f"group={group!r} is invalid: expected one of the recorded keys")
    fig, ax = plt.subplots(figsize=figsize)
    for s in steps:
        r = min(recs, key=lambda rec: abs(rec.step - s))
        h = r.summary.histogram
        nz = np.nonzero(h.counts)[0]
        lo, hi = nz.min(), nz.max() + 1
        line = ax.stairs(h.counts[lo:hi], h.edges[lo : hi + 1], label=f"step {r.step}")
        ax.axvline(float(r.lr), color=line.get_edgecolor(), linestyle="--")
    ax.set_xscale("log")
    ax.set_xlabel("effective rate (dashed: scheduler lr)")
    ax.set_ylabel("elements")
    ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    _save(fig, path, dpi)
    return fig


def plot_layer_heatmap(
    source: Monitor | Sequence[Record],
    path: str | os.PathLike[str] | None = None,
    *,
    field: str = "log10_update_to_weight",
    fast: float = -2.0,
    slow: float = -4.0,
    figsize: tuple[float, float] | None = None,
    dpi: int = 100,
) -> Any:
    """Heat map of one per-layer field over training, too-fast and too-slow layers flagged.

    Rows are named parameters (layers), columns recorded steps (data:
    :func:`lrkit.inspect.layers.layer_matrix`). Layers whose median
    ``log10_update_to_weight`` exceeds ``fast`` are labelled "▲ fast", below ``slow``
    "▼ slow" (:func:`lrkit.inspect.layers.flag_layers`), whatever field is drawn.

    Args:
        source: a per-parameter :class:`~lrkit.inspect.Monitor` or its ``history``.
        path: write the figure there when given.
        field: ``log10_update_to_weight`` (default), ``p50``, ``p90`` (drawn as log10) or
            ``update_grad_cosine``.

    Returns:
        The matplotlib ``Figure``.
    """
    from lrkit.inspect.layers import flag_layers, layer_matrix

    plt = _plt()
    steps, names, vals = layer_matrix(source, field)
    flags = flag_layers(source, fast=fast, slow=slow)
    shown = np.log10(vals) if field in ("p50", "p90") else vals
    label = {"p50": "log10 median rate", "p90": "log10 p90 rate"}.get(field, field)
    size = figsize or (8.0, max(2.5, 0.35 * len(names) + 1.5))
    fig, ax = plt.subplots(figsize=size)
    cmap = "coolwarm" if field == "log10_update_to_weight" else "viridis"
    kw = {"vmin": -5.0, "vmax": -1.0} if field == "log10_update_to_weight" else {}
    im = ax.imshow(shown.T, aspect="auto", interpolation="nearest", cmap=cmap, **kw)
    ax.set_yticks(range(len(names)))
    marks = ["▲ fast " if n in flags.too_fast else "▼ slow " if n in flags.too_slow else ""
             for n in names]
    ax.set_yticklabels([m + n for m, n in zip(marks, names, strict=True)], fontsize="small")
    for tick, m in zip(ax.get_yticklabels(), marks, strict=True):
        if m:
            tick.set_color("red" if m.startswith("▲") else "blue")
    idx = np.linspace(0, len(steps) - 1, min(len(steps), 8)).astype(int)
    ax.set_xticks(idx)
    ax.set_xticklabels([str(steps[i]) for i in idx])
    ax.set_xlabel("optimizer step")
    fig.colorbar(im, ax=ax, label=label)
    fig.tight_layout()
    _save(fig, path, dpi)
    return fig
