"""Pictures of schedules: a matplotlib figure (PNG/SVG) and a text rendering for terminals.

matplotlib is an optional dependency (``pip install lrkit[plot]``): it is imported inside
:func:`plot_schedules` only, never when lrkit is imported, and figures are drawn on their
own Agg canvas (no pyplot, so no global figure state and no interactive backend switch).
Both functions evaluate each schedule once, vectorized, at the integer steps
``0, 1, ..., steps``.

Marks: each milestone a schedule names (:meth:`~lrkit.schedules.base.Schedule.milestones`,
e.g. ``warmup_end``; the structural ``join_i`` boundaries of a ``Join`` are left out) is a
dotted vertical line, the peak a triangle and the final value a circle, each labelled. The
labels are placed when the figure is drawn: inside the axes, never over one another or the
legend.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lrkit._validate import bad, check_int, check_number
from lrkit.schedules.base import Schedule

__all__ = ["plot_schedules", "render_terminal"]

_MAX_POINTS = 400_001  # above this many steps, sample evenly (still integer steps)


def _steps_grid(steps: int) -> np.ndarray:
    """Integer steps ``0..steps`` (all of them, or an even sample that keeps both ends)."""
    if steps + 1 <= _MAX_POINTS:
        return np.arange(steps + 1, dtype=np.float64)
    return np.unique(np.round(np.linspace(0.0, float(steps), _MAX_POINTS)))


def _named(schedules: Mapping[str, Schedule] | Sequence[Schedule]) -> list[tuple[str, Schedule]]:
    if isinstance(schedules, Schedule):
        schedules = [schedules]
    if isinstance(schedules, Mapping):
        items = [(str(k), v) for k, v in schedules.items()]
    elif isinstance(schedules, Sequence) and not isinstance(schedules, str):
        items = [
            (f"{type(s).__name__} #{i}" if len(schedules) > 1 else type(s).__name__, s)
            for i, s in enumerate(schedules)
        ]
    else:
        raise bad("schedules", schedules, "a Schedule, a sequence or a mapping of them")
    if not items:
        raise bad("schedules", schedules, "at least one schedule")
    for label, s in items:
        if not isinstance(s, Schedule):
            raise bad(f"schedules[{label!r}]", s, "a Schedule")
    return items


def _milestones(schedule: Schedule, last: float) -> dict[str, float]:
    """Named milestones inside ``[0, last]``, without ``Join``'s ``join_i`` boundaries."""
    return {
        name: float(at)
        for name, at in schedule.milestones().items()
        if not name.startswith("join_") and 0.0 <= at <= last
    }


def plot_schedules(
    schedules: Mapping[str, Schedule] | Sequence[Schedule],
    steps: int,
    base_lr: float = 1.0,
    path: str | Path | None = None,
    log: bool = False,
    mark_milestones: bool = True,
    ax: Any = None,
    title: str | None = None,
    *,
    figsize: tuple[float, float] = (8.0, 4.5),
    dpi: int = 100,
) -> Any:
    r"""Draw value against step for one or more schedules; return the matplotlib Figure.

    Args:
        schedules: ``{label: schedule}``, or a sequence of schedules (labelled by class).
        steps: draw steps ``0..steps`` (an integer >= 1).
        base_lr: the base rate relative values are bound to (1.0: multipliers).
        path: also save there; the suffix picks the format (``.png`` or ``.svg``).
        log: logarithmic value axis (values ``<= 0`` are not drawn).
        mark_milestones: mark milestones, peak and final value (see the module docstring).
        ax: draw into these Axes instead of a new figure.
        title: the Axes title.
        figsize, dpi: size of a new figure, in inches and dots per inch (the default is
            800 x 450 pixels).

    Raises:
        ConfigError: bad ``steps``, ``base_lr``, ``path`` suffix or schedules.

    Lines and markers carry a ``gid`` (found in the Axes, and as an ``id`` in SVG output):
    ``curve:LABEL``, ``milestone:NAME:LABEL``, ``peak:LABEL`` and ``final:LABEL``.

    Example:
        >>> from lrkit.schedules import Poly, Warmup
        >>> fig = plot_schedules({"poly": Warmup(Poly(90, power=0.9), steps=10)}, steps=100)
        >>> sorted(a.get_gid() for a in fig.axes[0].lines)
        ['curve:poly', 'final:poly', 'milestone:warmup_end:poly', 'peak:poly']
    """
    items = _named(schedules)
    n = check_int("steps", steps, low=1)
    base = check_number("base_lr", base_lr, low=0.0)
    out: Path | None = None
    if path is not None:
        out = Path(path)
        if out.suffix.lower() not in (".png", ".svg"):
            raise bad("path", str(path), "a file name ending in .png or .svg")

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if ax is None:
        fig = Figure(figsize=figsize, dpi=dpi)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    x = _steps_grid(n)
    for i, (label, sched) in enumerate(items):
        color = f"C{i % 10}"
        y = np.asarray(sched(x, base=base), dtype=np.float64)
        shown = np.where(y > 0, y, np.nan) if log else y
        (line,) = ax.plot(x, shown, color=color, lw=1.6, label=label)
        line.set_gid(f"curve:{label}")
        if mark_milestones:
            _mark(ax, sched, x, y, label, color, log)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("step (optimizer updates)")
    ax.set_ylabel("learning rate" if base != 1.0 else "learning rate (x base rate)")
    ax.grid(alpha=0.3)
    if title is not None:
        ax.set_title(title)
    if len(items) > 1 or isinstance(schedules, Mapping):
        ax.legend(fontsize=8, loc="best")
    if out is not None:
        fig.tight_layout()
        fig.savefig(out, format=out.suffix.lower()[1:], dpi=dpi)
    return fig


def _mark(
    ax: Any,
    sched: Schedule,
    x: np.ndarray,
    y: np.ndarray,
    label: str,
    color: str,
    log: bool,
) -> None:
    """Milestone lines, a peak triangle and a final circle, each with a text label.

    The labels are placed when the figure is drawn (:class:`_LabelPlacer`), so that none
    overlaps another label or the legend, and each lies inside the axes.
    """
    placer = _LabelPlacer.of(ax)

    def point(kind: str, i: int, marker: str) -> None:
        v = float(y[i])
        if log and v <= 0:
            return
        (m,) = ax.plot([x[i]], [v], marker, color=color, ms=6, mec="black", mew=0.6)
        m.set_gid(f"{kind}:{label}")
        m.set_label(f"_{kind}")  # underscore: kept out of the legend
        placer.add(ax.annotate(f"{kind} {v:.3g} @ {x[i]:g}", (x[i], v), fontsize=7,
                               color=color, gid=f"label:{kind}:{label}",
                               xytext=(0, 0), textcoords="offset points",
                               arrowprops=_leader(color)))

    for name, at in _milestones(sched, float(x[-1])).items():
        line = ax.axvline(at, color=color, ls=":", lw=0.9)
        line.set_gid(f"milestone:{name}:{label}")
        line.set_label(f"_{name}")
        placer.add(ax.annotate(f"{name.replace('_', ' ')} @ {at:g}", (at, 1.0),
                               xycoords=("data", "axes fraction"), fontsize=7, color=color,
                               gid=f"label:milestone:{name}:{label}",
                               xytext=(0, 0), textcoords="offset points",
                               arrowprops=_leader(color)))
    point("peak", int(np.argmax(y)), "^")
    point("final", len(y) - 1, "o")


class _LabelPlacer:
    """Places the mark labels of an Axes each time it is drawn (so after any layout change).

    Each label gets the first position, among candidates around its point (beside it, then
    stacked ever further above and below), whose text lies inside the axes and overlaps
    neither a label placed before it nor the legend; failing that, the free spot of a grid
    over the axes nearest to its point; failing that, it is hidden. A thin leader line joins
    a label to its point when they are apart.
    """

    def __init__(self, ax: Any) -> None:
        from matplotlib.artist import Artist

        self.ax = ax
        self.labels: list[Any] = []
        placer = self

        class _Hook(Artist):  # drawn first (lowest zorder): positions the labels
            def draw(self, renderer: Any) -> None:
                placer.place(renderer)

        hook = _Hook()
        hook.set_zorder(-1e9)
        hook.set_in_layout(False)
        ax.add_artist(hook)

    @classmethod
    def of(cls, ax: Any) -> _LabelPlacer:
        placer: _LabelPlacer | None = getattr(ax, "_lrkit_label_placer", None)
        if placer is None:
            placer = cls(ax)
            ax._lrkit_label_placer = placer
        return placer

    def add(self, text: Any) -> None:
        text.set_in_layout(False)
        text.set_annotation_clip(False)
        self.labels.append(text)

    def place(self, renderer: Any) -> None:
        from matplotlib.text import Text
        from matplotlib.transforms import Bbox, blended_transform_factory

        ax = self.ax
        frame = ax.get_window_extent(renderer).padded(-3)
        taken = []
        legend = ax.get_legend()
        if legend is not None and legend.get_visible():
            taken.append(legend.get_window_extent(renderer).padded(2))
        ink = _ink(ax)  # points along every drawn line, in pixels
        px = renderer.points_to_pixels(1.0)  # pixels per point
        milestone = blended_transform_factory(ax.transData, ax.transAxes)
        for text in self.labels:
            text.set_visible(True)
            transform = ax.transData if text.xycoords == "data" else milestone
            anchor = transform.transform(text.xy)

            def box_at(dx: float, dy: float, ha: str, va: str, text: Any = text) -> Any:
                text.set_ha(ha)
                text.set_va(va)
                text.xyann = (dx, dy)
                text.update_positions(renderer)
                return Text.get_window_extent(text, renderer)  # the text, not the leader

            def free(box: Any, over_lines: bool, anchor: Any = anchor) -> bool:
                if not _inside(box, frame) or any(box.overlaps(t) for t in taken):
                    return False
                # the leader (point to box centre) crosses no other label
                end = np.array([box.x0 + box.x1, box.y0 + box.y1]) / 2
                t = np.linspace(0.0, 1.0, max(2, int(np.hypot(*(end - anchor)) / 2)))
                leader = anchor + t[:, None] * (end - anchor)
                if any(_hits(leader, b) for b in taken):
                    return False
                return over_lines or not _hits(ink, box.padded(2))

            size = box_at(0.0, 0.0, "left", "bottom")

            def candidate(dx: float, dy: float, ha: str, va: str, size: Any = size) -> Any:
                """The text's box at that offset and alignment (its size does not change)."""
                x = size.x0 + dx * px - (size.width if ha == "right" else 0.0)
                y = size.y0 + dy * px - (size.height if va == "top" else 0.0)
                return Bbox.from_bounds(x, y, size.width, size.height)

            def nearest_spot(over_lines: bool, anchor: Any = anchor, size: Any = size) -> Any:
                w, h = size.width, size.height
                spots = [Bbox.from_bounds(gx, gy, w, h)
                         for gx in np.arange(frame.x0, frame.x1 - w, max(w / 4, 4.0))
                         for gy in np.arange(frame.y0, frame.y1 - h, max(h / 2, 4.0))]
                spots.sort(key=lambda b: (b.x0 + w / 2 - anchor[0]) ** 2
                           + (b.y0 + h / 2 - anchor[1]) ** 2)
                spot = next((b for b in spots if free(b, over_lines)), None)
                if spot is None:
                    return None
                return ((spot.x0 - size.x0) / px, (spot.y0 - size.y0) / px, "left", "bottom")

            placed = None
            for over_lines in (False, True):  # keep clear of the curves if there is room
                placed = next((c for c in _CANDIDATES if free(candidate(*c), over_lines)),
                              None) or nearest_spot(over_lines)
                if placed is not None:
                    break
            if placed is None:
                text.set_visible(False)
            else:
                taken.append(box_at(*placed).padded(1))


def _ink(ax: Any) -> np.ndarray:
    """Points (pixels, at most 2 px apart) along the curves, milestone lines and markers."""
    parts = []
    for line in ax.lines:
        xy = line.get_transform().transform(line.get_xydata())
        xy = xy[np.isfinite(xy).all(axis=1)]
        if len(xy) > 1:  # fill in long segments (jumps, straight stretches)
            seg = np.hypot(*np.diff(xy, axis=0).T)
            s = np.concatenate([[0.0], np.cumsum(seg)])
            at = np.linspace(0.0, s[-1], max(2, int(s[-1] / 2)))
            xy = np.column_stack([np.interp(at, s, xy[:, 0]), np.interp(at, s, xy[:, 1])])
        parts.append(xy)
    return np.concatenate(parts) if parts else np.zeros((0, 2))


def _hits(points: np.ndarray, box: Any) -> bool:
    x, y = points[:, 0], points[:, 1]
    return bool(((x >= box.x0) & (x <= box.x1) & (y >= box.y0) & (y <= box.y1)).any())


# (dx, dy) in points from the point, and the alignment: beside it, then stacked ever further
# above and below it
_CANDIDATES = [
    cand
    for k in range(12)
    for cand in ((4.0, 4.0 + 9 * k, "left", "bottom"), (-4.0, 4.0 + 9 * k, "right", "bottom"),
                 (4.0, -4.0 - 9 * k, "left", "top"), (-4.0, -4.0 - 9 * k, "right", "top"))
]


def _leader(color: str) -> dict[str, Any]:
    """A thin line from a label to its point (clipped away when the two touch)."""
    return {"arrowstyle": "-", "color": color, "lw": 0.5, "alpha": 0.6, "shrinkA": 1,
            "shrinkB": 3}


def _inside(box: Any, frame: Any) -> bool:
    return bool(box.x0 >= frame.x0 and box.x1 <= frame.x1 and box.y0 >= frame.y0
                and box.y1 <= frame.y1)


# -- text rendering ----------------------------------------------------------------------

# Braille cells hold 2 x 4 dots; bit of the dot at (column, row) within a cell.
_BRAILLE_BITS = ((0x01, 0x02, 0x04, 0x40), (0x08, 0x10, 0x20, 0x80))


def render_terminal(
    schedule: Schedule,
    steps: int,
    width: int = 72,
    height: int = 16,
    base_lr: float = 1.0,
    *,
    ascii_only: bool = False,
) -> str:
    r"""A text plot of ``schedule`` over steps ``0..steps``: ``height`` lines of ``width``.

    The curve is drawn in Braille dots (2 x 4 per character; ``ascii_only`` draws ``*`` per
    character instead), connected so jumps show as vertical strokes; the value axis is
    labelled with the maximum (top), the minimum (bottom) and the middle value, the step
    axis with ticks at the first, middle and last step. The last two lines are the step axis.

    Args:
        schedule: the schedule to draw.
        steps: the last step drawn (an integer >= 1).
        width: characters per line (>= 24).
        height: lines (>= 5).
        base_lr: the base rate relative values are bound to.
        ascii_only: use ``*`` instead of Braille.

    Raises:
        ConfigError: a bad argument, naming it.

    Example:
        >>> from lrkit.schedules import Linear
        >>> text = render_terminal(Linear(100, start=1.0, end=0.0), 100, width=30, height=6)
        >>> print("\n".join(line.rstrip() for line in text.splitlines()))
          1 ┤⠉⠓⠲⠤⣄⣀⡀
        0.5 ┤      ⠉⠙⠒⠦⠤⣄⣀
            │            ⠈⠉⠓⠒⠦⢤⣀⡀
          0 ┤                   ⠉⠉⠓⠲⠤⣄
            └┬───────────┬───────────┬
             0          50         100
    """
    if not isinstance(schedule, Schedule):
        raise bad("schedule", schedule, "a Schedule")
    n = check_int("steps", steps, low=1)
    width = check_int("width", width, low=24)
    height = check_int("height", height, low=5)
    base = check_number("base_lr", base_lr, low=0.0)

    x = _steps_grid(n)
    y = np.asarray(schedule(x, base=base), dtype=np.float64)
    lo, hi = float(np.min(y)), float(np.max(y))
    labels = [_fmt(hi), _fmt((lo + hi) / 2), _fmt(lo)]
    pad = max(len(s) for s in labels)
    rows, cols = height - 2, width - pad - 2
    dot_rows, dot_cols = 4 * rows, 2 * cols

    # Each dot column covers a range of steps: draw from its lowest to its highest value,
    # joined to the previous column's last value so that drops and jumps stay connected.
    col_of = np.minimum((x / n * dot_cols).astype(np.int64), dot_cols - 1)

    def dot_row(v: float) -> int:
        if hi == lo:
            return dot_rows // 2
        return round((hi - v) / (hi - lo) * (dot_rows - 1))

    grid = np.zeros((rows, cols), dtype=np.int64)
    bounds = np.searchsorted(col_of, np.arange(dot_cols + 1))
    prev: float | None = None
    for c in range(dot_cols):  # a loop over character columns, not over steps
        seg = y[bounds[c] : bounds[c + 1]]
        if seg.size == 0:
            continue
        top, bottom = float(seg.max()), float(seg.min())
        if prev is not None:
            top, bottom = max(top, prev), min(bottom, prev)
        prev = float(seg[-1])
        for r in range(dot_row(top), dot_row(bottom) + 1):
            grid[r // 4, c // 2] |= _BRAILLE_BITS[c % 2][r % 4]

    label_rows = {0: labels[0], rows - 1: labels[2]}
    if rows >= 3 and hi != lo:
        label_rows[(rows - 1) // 2] = labels[1]
    lines = []
    for r in range(rows):
        cells = "".join(
            (" " if not v else "*") if ascii_only else chr(0x2800 + int(v)) if v else " "
            for v in grid[r]
        )
        tag = label_rows.get(r)
        lines.append(f"{tag or '':>{pad}} {'┤' if tag else '│'}{cells}")

    ticks = [(0, "0"), (cols - 1, str(n)), (cols // 2, str(round(n / 2)))]
    axis = "".join("┬" if any(c == t for t, _ in ticks) else "─" for c in range(cols))
    lines.append(f"{'':>{pad}} └{axis}")
    tick_line = [" "] * cols
    for c, text in ticks:  # ends first; the middle label only where it fits
        start = 0 if c == 0 else cols - len(text) if c == cols - 1 else c - len(text) // 2
        span = range(max(start - 1, 0), min(start + len(text) + 1, cols))
        if start < 0 or start + len(text) > cols or any(tick_line[i] != " " for i in span):
            continue
        tick_line[start : start + len(text)] = list(text)
    lines.append(f"{'':>{pad}}  {''.join(tick_line)}")
    return "\n".join(line.ljust(width) for line in lines)


def _fmt(v: float) -> str:
    """A short value label: 3 significant digits (``1e-05``, ``0.005``, ``0.01``)."""
    return f"{v:.3g}" if math.isfinite(v) else f"{v}"
