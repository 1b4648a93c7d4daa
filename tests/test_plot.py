"""lrkit.plot: figures (PNG/SVG, marks) and the terminal rendering."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from lrkit.errors import ConfigError
from lrkit.plot import plot_schedules, render_terminal
from lrkit.schedules import Constant, Linear, Poly, Schedule, Warmup

pytest.importorskip("matplotlib")


def warm_poly() -> Schedule:
    # 10 warmup steps from 0 to 1, then 1 - ((t - 10)/90)^... : peak 1.0 at step 10, 0 at 100.
    return Warmup(Poly(total_steps=90, power=2.0), steps=10)


def gids(fig: object) -> dict[str, object]:
    ax = fig.axes[0]  # type: ignore[attr-defined]
    return {line.get_gid(): line for line in ax.lines}


# -- matplotlib figures --------------------------------------------------------------------
def test_png_has_the_requested_size(tmp_path: Path) -> None:
    import matplotlib.image as mpimg

    out = tmp_path / "s.png"
    fig = plot_schedules({"a": warm_poly(), "b": Linear(120)}, steps=150, path=out)
    img = mpimg.imread(out)
    assert img.shape[:2] == (450, 800)  # default 8 x 4.5 in at 100 dpi
    assert fig.get_size_inches().tolist() == [8.0, 4.5]
    small = tmp_path / "small.PNG"
    plot_schedules([Linear(10)], steps=10, path=small, figsize=(5.0, 3.0), dpi=80)
    assert mpimg.imread(small).shape[:2] == (240, 400)


def test_svg_is_valid_xml_with_marks(tmp_path: Path) -> None:
    out = tmp_path / "s.svg"
    plot_schedules({"warm": warm_poly()}, steps=120, path=out, title="t")
    root = ET.parse(out).getroot()
    assert root.tag.endswith("svg")
    ids = {el.get("id") for el in root.iter()}
    assert {"curve:warm", "milestone:warmup_end:warm", "peak:warm", "final:warm"} <= ids


def test_marks_are_at_the_right_places() -> None:
    fig = plot_schedules({"warm": warm_poly()}, steps=120, base_lr=0.1)
    lines = gids(fig)
    assert set(lines) == {"curve:warm", "milestone:warmup_end:warm", "peak:warm", "final:warm"}
    ms = lines["milestone:warmup_end:warm"]
    assert list(ms.get_xdata()) == [10, 10]  # type: ignore[attr-defined]
    peak = lines["peak:warm"]
    assert list(peak.get_xdata()) == [10.0]  # type: ignore[attr-defined]
    assert list(peak.get_ydata()) == pytest.approx([0.1])  # type: ignore[attr-defined]
    final = lines["final:warm"]
    assert list(final.get_xdata()) == [120.0]  # type: ignore[attr-defined]
    assert list(final.get_ydata()) == [0.0]  # type: ignore[attr-defined]
    curve = lines["curve:warm"]
    x = np.asarray(curve.get_xdata())  # type: ignore[attr-defined]
    y = np.asarray(curve.get_ydata())  # type: ignore[attr-defined]
    assert x.tolist() == list(range(121))
    # values typed from the formula: linear warmup to 0.1, then 0.1 * (1 - (t - 10)/90)^2
    want = np.where(x < 10, 0.1 * x / 10, 0.1 * (1 - np.minimum(x - 10, 90) / 90) ** 2)
    np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-15)
    legend = fig.axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["warm"]


def test_no_marks_and_milestones_outside_the_range() -> None:
    fig = plot_schedules([warm_poly()], steps=50, mark_milestones=False)
    assert set(gids(fig)) == {"curve:Warmup"}
    fig = plot_schedules([warm_poly()], steps=5)  # warmup ends at 10: not drawn
    assert "milestone:warmup_end:Warmup" not in gids(fig)


def test_log_scale_skips_zero_values() -> None:
    fig = plot_schedules({"p": Poly(100, power=1.0)}, steps=120, log=True)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    lines = gids(fig)
    assert "final:p" not in lines  # the final value is 0: nothing to mark on a log axis
    y = np.asarray(lines["curve:p"].get_ydata())  # type: ignore[attr-defined]
    assert np.isnan(y[100:]).all()
    assert np.isfinite(y[:100]).all()


def test_draws_into_given_axes() -> None:
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.add_subplot()
    out = plot_schedules([Constant(0.5), Linear(10)], steps=20, ax=ax, title="two")
    assert out is fig
    assert ax.get_title() == "two"
    assert {"curve:Constant #0", "curve:Linear #1"} <= set(gids(fig))


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"path": "x.pdf"}, "path"),
        ({"steps": 0}, "steps"),
        ({"steps": 2.5}, "steps"),
        ({"base_lr": -1.0}, "base_lr"),
        ({"schedules": []}, "schedules"),
        ({"schedules": {"x": 1.0}}, "schedules"),
    ],
)
def test_plot_bad_arguments(kwargs: dict[str, object], name: str) -> None:
    args: dict[str, object] = {"schedules": [Linear(10)], "steps": 10, **kwargs}
    with pytest.raises(ConfigError, match=rf"^{name}"):
        plot_schedules(**args)  # type: ignore[arg-type]


def test_matplotlib_is_not_imported_with_lrkit() -> None:
    code = "import sys, lrkit, lrkit.plot; sys.exit('matplotlib' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# -- terminal rendering --------------------------------------------------------------------
# Unicode Braille: dots 1-2-3-7 are the left column (bits 0, 1, 2, 6) top to bottom,
# dots 4-5-6-8 the right column (bits 3, 4, 5, 7).
LEFT, RIGHT = (0, 1, 2, 6), (3, 4, 5, 7)


def dot_grid(text: str, height: int) -> tuple[np.ndarray, int]:
    """Decode the plot rows into a boolean dot matrix (rows x 2 * columns)."""
    rows = text.splitlines()[: height - 2]
    start = rows[0].index("┤") + 1
    cells = [r[start:] for r in rows]
    cols = len(cells[0])
    dots = np.zeros((4 * len(rows), 2 * cols), dtype=bool)
    for r, line in enumerate(cells):
        for c, ch in enumerate(line):
            code = ord(ch) - 0x2800 if 0x2800 <= ord(ch) <= 0x28FF else 0
            for i in range(4):
                dots[4 * r + i, 2 * c] = bool(code >> LEFT[i] & 1)
                dots[4 * r + i, 2 * c + 1] = bool(code >> RIGHT[i] & 1)
    return dots, cols


def top_rows(dots: np.ndarray) -> list[int]:
    return [int(np.argmax(col)) for col in dots.T if col.any()]


@pytest.mark.parametrize(("width", "height"), [(72, 16), (24, 5), (100, 30), (40, 8)])
def test_terminal_dimensions(width: int, height: int) -> None:
    text = render_terminal(warm_poly(), 100, width=width, height=height)
    lines = text.split("\n")
    assert len(lines) == height
    assert all(len(line) == width for line in lines)


def test_terminal_decreasing_schedule_renders_decreasing() -> None:
    text = render_terminal(Poly(200, power=0.9, peak=0.01, end=1e-5), 200, base_lr=1.0)
    dots, cols = dot_grid(text, 16)
    tops = top_rows(dots)
    assert len(tops) == 2 * cols  # every dot column has ink
    assert tops == sorted(tops)  # lower (larger row index) from left to right
    assert tops[0] == 0
    assert dots[-1, -1]
    lines = text.splitlines()
    assert lines[0].lstrip().startswith("0.01 ┤")
    assert lines[13].lstrip().startswith("1e-05 ┤")
    assert lines[14].lstrip().startswith("└┬")
    ticks = lines[15].split()
    assert ticks[0] == "0"
    assert ticks[-1] == "200"


def test_terminal_increasing_and_flat() -> None:
    rising = render_terminal(Linear(50, start=0.0, end=1.0), 50, width=40, height=8)
    tops = top_rows(dot_grid(rising, 8)[0])
    assert tops == sorted(tops, reverse=True)
    flat = render_terminal(Constant(0.3), 10, width=30, height=6)
    dots, _ = dot_grid(flat, 6)
    assert set(top_rows(dots)) == {8}  # the middle of the 16 dot rows
    assert flat.splitlines()[0].lstrip().startswith("0.3 ┤")


def test_terminal_shows_segmenter_drop_after_step_0() -> None:
    from lrkit.compat.segmenter import segmenter_schedule

    s = segmenter_schedule(step_size=1, iter_warmup=20, iter_max=100, power=0.9)
    dots, _ = dot_grid(render_terminal(s, 100, width=60), 16)  # 56 dot rows
    # step 0: the base rate (top row); step 1: 0.05 * 0.8**0.9 = 0.041, dot row 53 of 0..55:
    # the first dot columns hold a stroke joining them.
    first = dots[:, :2].any(axis=1)
    assert first[0]
    assert first[53]
    assert first[1:53].all()


def test_terminal_ascii_only() -> None:
    text = render_terminal(warm_poly(), 100, width=40, height=8, ascii_only=True)
    plot_chars = set("".join(line.split("┤")[-1].split("│")[-1] for line in text.split("\n")[:6]))
    assert plot_chars <= {"*", " "}
    assert "*" in plot_chars


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"width": 10}, "width"),
        ({"height": 4}, "height"),
        ({"steps": 0}, "steps"),
        ({"schedule": "poly"}, "schedule"),
        ({"base_lr": float("nan")}, "base_lr"),
    ],
)
def test_terminal_bad_arguments(kwargs: dict[str, object], name: str) -> None:
    args: dict[str, object] = {"schedule": Linear(10), "steps": 10, **kwargs}
    with pytest.raises(ConfigError, match=rf"^{name}="):
        render_terminal(**args)  # type: ignore[arg-type]


# -- label placement -------------------------------------------------------------------------
def _segmenter() -> Schedule:
    from lrkit.compat.segmenter import segmenter_schedule

    return segmenter_schedule(3, 20, 100, 0.9, 1e-3)


README_THREE = {  # the README figure (lrkit plot ... --base-lr 0.01)
    "SETR: poly 0.9": "poly(power=0.9, end=1e-4) over 160000",
    "poly 0.9 + 1500-step warmup": "warmup(1500) then poly(power=0.9, end=1e-5) over 160000",
    "cosine + warmup": "warmup(1500) then cosine(end=1e-5) over 160000",
}


@pytest.mark.parametrize(
    ("case", "steps", "base", "log", "size"),
    [
        ("readme", 160_000, 0.01, False, (9.0, 5.0)),
        ("segmenter", 120, 0.01, False, (8.0, 4.5)),
        ("onecycle", 1000, 0.1, False, (8.0, 4.5)),
        ("tiny-warmup", 1000, 1.0, False, (7.0, 3.2)),
        ("tiny-warmup", 1000, 1.0, True, (5.0, 3.0)),
    ],
)
def test_labels_never_overlap(case: str, steps: int, base: float, log: bool,
                              size: tuple[float, float]) -> None:
    """Every mark label lies inside the axes and overlaps no other text of the figure (other
    labels, the legend, tick and axis labels), measured on the drawn figure."""
    from matplotlib.text import Text
    from matplotlib.transforms import Bbox

    from lrkit.spec import parse

    curves: dict[str, Schedule] = {
        "readme": {k: parse(v) for k, v in README_THREE.items()},
        "segmenter": {"Segmenter": _segmenter(), "poly": parse("warmup(20) then poly over 100")},
        "onecycle": {"onecycle": parse("onecycle over 1000")},
        "tiny-warmup": {"w": parse("warmup(2) then cosine(end=0.5x) over 1000"),
                        "v": parse("warmup(3) then cosine(end=0.5x) over 1000")},
    }[case]
    fig = plot_schedules(curves, steps=steps, base_lr=base, log=log, figsize=size, dpi=100)
    fig.tight_layout()
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    labels = list(ax.texts)  # the mark labels: "peak ...", "final ...", "warmup end ..."
    kinds = {t.get_text().split()[0] for t in labels}
    assert {"peak", "final"} <= kinds
    if case != "onecycle":
        assert {"warmup", "warmup_end"} & kinds
    assert all(t.get_visible() for t in labels)  # room for every one of them here
    boxes = [(t.get_text(), Text.get_window_extent(t, renderer)) for t in labels]
    frame = ax.get_window_extent(renderer)
    for text, box in boxes:
        assert Bbox.union([frame, box]).bounds == frame.bounds, f"{text!r} leaves the axes"
    others = [(t.get_text(), t.get_window_extent(renderer))
              for t in (*ax.get_xticklabels(), *ax.get_yticklabels(), ax.xaxis.label,
                        ax.yaxis.label) if t.get_visible() and t.get_text()]
    legend = ax.get_legend()
    others.append(("legend", legend.get_window_extent(renderer)))
    for i, (a, box_a) in enumerate(boxes):
        for b, box_b in boxes[i + 1:] + others:
            assert not box_a.overlaps(box_b), f"{a!r} overlaps {b!r}"
