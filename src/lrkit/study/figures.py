"""The figures of a study report (matplotlib, PNG at 100 dpi, at most 1100 px wide).

Each figure is drawn at the size the report shows it (no down-scaling in a 1150 px page),
and no text is smaller than 11 pt: about 15 px at that size, still 10 px in an 800 px
window. Legends sit outside the axes (they never hide a
curve), metric axes zoom to the range the ranking is decided in, and log axes span at most
four decades below their top.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["DPI", "FONT_PT", "MAX_WIDTH_PX", "coinciding", "draw_all"]

DPI = 100
MAX_WIDTH_PX = 1100
FONT_PT = 11
_DECADES = 4.0


_RC: dict[str, Any] = {"font.size": FONT_PT, "axes.titlesize": FONT_PT + 1,
                       "legend.fontsize": FONT_PT, "xtick.labelsize": FONT_PT,
                       "ytick.labelsize": FONT_PT, "axes.labelsize": FONT_PT}


def _figure(nrows: int, ncols: int, size: tuple[float, float], **kw: Any) -> tuple[Any, Any]:
    """A figure and its axes grid, without pyplot (no backend switch, no global state)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=size)
    return fig, fig.subplots(nrows, ncols, squeeze=False, **kw)


def _colors(names: Sequence[str]) -> dict[str, Any]:
    import matplotlib

    cmap = matplotlib.colormaps["tab10"]
    return {n: cmap(i % 10) for i, n in enumerate(dict.fromkeys(names))}


def _first_seed(runs: Sequence[Any], opt: str) -> dict[str, Any]:
    """schedule -> its run with the lowest seed, for optimizer ``opt``."""
    out: dict[str, Any] = {}
    for r in sorted(runs, key=lambda r: r.config.seed):
        if r.config.optimizer == opt and r.lr:
            out.setdefault(r.config.schedule.name, r)
    return out


def coinciding(runs: Sequence[Any], opt: str, rtol: float = 1e-9) -> dict[str, str]:
    """Schedules whose rates equal an earlier schedule's at every step within ``rtol`` of the
    peak rate (lowest seed's records): ``{later: earlier}``."""
    first = _first_seed(runs, opt)
    names = list(first)
    out: dict[str, str] = {}
    for i, b in enumerate(names):
        for a in names[:i]:
            if a in out:
                continue
            x, y = np.asarray(first[a].lr), np.asarray(first[b].lr)
            if len(x) == len(y) and len(x) and np.all(
                    np.abs(x - y) <= rtol * max(float(np.max(np.abs(x))), 1e-300)):
                out[b] = a
                break
    return out


def _log_floor(ax: Any, values: Sequence[np.ndarray]) -> None:
    pos = [v[v > 0] for v in values if np.any(v > 0)]
    if not pos:
        return
    top = max(float(v.max()) for v in pos)
    low = min(float(v.min()) for v in pos)
    ax.set_ylim(max(low, top / 10**_DECADES) / 1.3, top * 1.3)


def _lr_figure(runs: Sequence[Any], opts: list[str], colors: dict[str, Any], path: Path) -> None:
    fig, axes = _figure(len(opts), 2, (11, 3.4 * len(opts)))
    for i, opt in enumerate(opts):
        first = _first_seed(runs, opt)
        same = coinciding(runs, opt)
        near = {k: v for k, v in coinciding(runs, opt, 0.01).items() if k not in same}
        for j, scale in enumerate(("linear", "log")):
            ax = axes[i][j]
            for name, r in first.items():
                dup = name in same or name in near
                label = (f"{name} (= {same[name]})" if name in same else
                         f"{name} (≈ {near[name]})" if name in near else name)
                ax.plot(np.arange(len(r.lr)), r.lr, color=colors[name], lw=2.4 if not dup
                        else 1.4, ls=(0, (4, 3)) if dup else "-", label=label)
            ax.set_yscale(scale)
            if scale == "log":
                _log_floor(ax, [np.asarray(r.lr) for r in first.values()])
            ax.set(xlabel="step (optimizer updates)", ylabel="learning rate",
                   title=f"{opt}: rate used ({scale} axis)")
            ax.grid(alpha=0.3)
        axes[i][1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)


def _ema(x: np.ndarray, beta: float = 0.9) -> np.ndarray:
    out = np.empty_like(x)
    m = 0.0
    for i, v in enumerate(x):
        m = beta * m + (1 - beta) * v
        out[i] = m / (1 - beta ** (i + 1))
    return out


def _training_figure(runs: Sequence[Any], opts: list[str], colors: dict[str, Any],
                     metric: str, higher: bool, path: Path) -> None:
    fig, axes = _figure(len(opts), 2, (11, 3.6 * len(opts)))
    for i, opt in enumerate(opts):
        mine = [r for r in runs if r.config.optimizer == opt and r.status == "finished"]
        ax_loss, ax_m = axes[i]
        finals, tails = [], []
        for name in dict.fromkeys(r.config.schedule.name for r in mine):
            group = [r for r in mine if r.config.schedule.name == name]
            n = min(len(r.train_loss) for r in group)
            loss = _ema(np.mean([r.train_loss[:n] for r in group], axis=0))
            ax_loss.plot(np.arange(n), loss, color=colors[name], lw=1.6, label=name)
            tails.append(loss[n // 4:])
            k = min(len(r.evals.get(metric, [])) for r in group)
            if k == 0:
                continue
            steps = np.asarray(group[0].evals["step"][:k])
            vals = np.asarray([r.evals[metric][:k] for r in group])
            ax_m.plot(steps, vals.mean(0), color=colors[name], lw=1.8, marker="o", ms=3,
                      label=name)
            if len(group) > 1:
                ax_m.fill_between(steps, vals.min(0), vals.max(0), color=colors[name],
                                  alpha=0.12, lw=0)
            finals.extend(vals[:, -1].tolist())
            half = vals[:, k // 2:]
            tails.append(np.asarray([]))
            finals.extend(half.ravel().tolist())
        flat = np.concatenate([t for t in tails if t.size]) if any(t.size for t in tails) \
            else np.asarray([])
        if flat.size:
            lo, hi = float(np.min(flat)), float(np.quantile(flat, 0.98))
            ax_loss.set_ylim(lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo) + 1e-12)
        fin = np.asarray([v for v in finals if math.isfinite(v)])
        if fin.size:  # the range the ranking is decided in (second half of training)
            lo, hi = float(fin.min()), float(fin.max())
            pad = 0.08 * (hi - lo) + 1e-9
            ax_m.set_ylim(lo - pad, hi + pad)
        ax_loss.set(xlabel="step", ylabel="training loss (mean over seeds, smoothed)",
                    title=f"{opt}: training loss (zoomed past the first quarter)")
        arrow = "higher is better" if higher else "lower is better"
        ax_m.set(xlabel="step", ylabel=f"{metric} ({arrow})",
                 title=f"{opt}: {metric}, mean and seed range (zoomed)")
        for ax in (ax_loss, ax_m):
            ax.grid(alpha=0.3)
        ax_m.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)


def _metric_figure(verdicts: Sequence[Any], colors: dict[str, Any], path: Path) -> None:
    """Per optimizer: the ranked metric of every seed (dots) and the mean (bar), best first."""
    n = len(verdicts)
    height = max(2.6, 0.42 * max(len(v.rows) for v in verdicts) + 1.2)
    fig, axes = _figure(1, n, (11, height))
    for ax, v in zip(axes[0], verdicts, strict=True):
        rows = list(v.rows)
        for y, row in enumerate(rows):
            vals = [x for x in row.values.values() if math.isfinite(x)]
            c = colors.get(row.schedule, "gray")
            if vals:
                ax.scatter(vals, [y] * len(vals), color=c, s=28, zorder=3)
                ax.plot([np.mean(vals)] * 2, [y - 0.3, y + 0.3], color=c, lw=2.5)
        ax.set_yticks(range(len(rows)))
        ax.set_yticklabels([f"{r.schedule} ({r.verdict})" for r in rows])
        ax.invert_yaxis()
        arrow = "→ better" if v.higher_is_better else "← better"
        ax.set(xlabel=f"final {v.metric} ({arrow})", title=f"{v.optimizer}: every seed")
        ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)


def _band_figure(runs: Sequence[Any], colors: dict[str, Any], path: Path) -> bool:
    banded = [r for r in runs if r.band is not None and r.band.get("median")]
    first: dict[tuple[str, str], Any] = {}
    for r in sorted(banded, key=lambda r: r.config.seed):
        first.setdefault((r.config.optimizer, r.config.schedule.name), r)
    if not first:
        return False
    items = list(first.values())
    ncols = min(4, len(items))
    nrows = -(-len(items) // ncols)
    fig, axes = _figure(nrows, ncols, (11, 2.9 * nrows + 0.6), sharey=True)
    for ax, r in zip(axes.flat, items, strict=False):
        b = r.band
        steps = np.arange(len(b["median"]))
        c = colors[r.config.schedule.name]
        ax.fill_between(steps, b["low"], b["high"], color=c, alpha=0.3, lw=0)
        ax.plot(steps, b["median"], color=c, ls="--", lw=1.2)
        ax.plot(np.arange(len(r.lr)), r.lr, color="black", lw=1.4)
        ax.set_yscale("log")
        ax.set_title(f"{r.config.schedule.name} / {r.config.optimizer}")
        ax.grid(alpha=0.3)
    # the axis holds the base rate and the effective median (what the figure compares), a
    # decade around them; the band may run off the axis where v̂ is tiny (rate -> lr/ε)
    core = np.concatenate([np.asarray(v, dtype=float) for r in items
                           for v in (r.lr, r.band["median"])])
    core = core[np.isfinite(core) & (core > 0)]
    if core.size:
        hi = float(core.max()) * 10
        lo = max(float(core.min()) / 10, hi / 10**(_DECADES + 1))
        axes[0][0].set_ylim(lo, hi)
    for ax in list(axes.flat)[len(items):]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("step")
    for row in axes:
        row[0].set_ylabel("rate")
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [Line2D([], [], color="black", lw=1.4, label="scheduler's base rate"),
               Line2D([], [], color="gray", ls="--", label="effective median"),
               Patch(color="gray", alpha=0.3, label="effective p10-p90")]
    fig.legend(handles=handles, loc="upper center", ncol=3, frameon=False,
               bbox_to_anchor=(0.5, 1.0))
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.45 / (2.9 * nrows + 0.6)))
    fig.savefig(path, dpi=DPI)
    return True


def draw_all(folder: Path, runs: Sequence[Any], verdicts: Sequence[Any], metric: str,
             higher: bool) -> list[str]:
    """Draw every figure that has data into ``folder``; return their file names."""
    import matplotlib

    with matplotlib.rc_context(_RC):  # type: ignore[arg-type]
        return _draw_all(folder, runs, verdicts, metric, higher)


def _draw_all(folder: Path, runs: Sequence[Any], verdicts: Sequence[Any], metric: str,
              higher: bool) -> list[str]:
    ok = [r for r in runs if r.lr]
    if not ok:
        return []
    opts = list(dict.fromkeys(r.config.optimizer for r in ok))
    colors = _colors([r.config.schedule.name for r in runs])
    out = []
    if any(v.rows for v in verdicts):
        _metric_figure(verdicts, colors, folder / "metric.png")
        out.append("metric.png")
    _training_figure(ok, opts, colors, metric, higher, folder / "training.png")
    _lr_figure(ok, opts, colors, folder / "lr.png")
    out += ["training.png", "lr.png"]
    if _band_figure(ok, colors, folder / "effective_lr.png"):
        out.append("effective_lr.png")
    return out
