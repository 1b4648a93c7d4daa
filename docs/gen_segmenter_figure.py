"""Generate docs/img/segmenter_vs_lrkit.png: Segmenter's PolynomialLR next to lrkit's warmups.

Run from the repository root: ``python docs/gen_segmenter_figure.py [OUT.png]``.
A short run (iter_max=100) so the quirks are visible: the full-rate step 0, the warmup that
climbs to the polynomial's value at iter_warmup, the step_size staircase and the hold at the
last multiple of step_size <= iter_max.
"""

from __future__ import annotations

import sys
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from lrkit.compat.segmenter import segmenter_schedule
from lrkit.plot import plot_schedules
from lrkit.schedules import Poly, Warmup

BASE, MIN_LR = 0.01, 1e-3
STEP_SIZE, WARMUP, ITER_MAX, POWER = 3, 20, 100, 0.9


def main(out: Path) -> None:
    # Labels are short; docs/segmenter.md spells the three configurations out.
    schedules = {
        "Segmenter PolynomialLR (lrkit.compat drop-in)": segmenter_schedule(
            STEP_SIZE, WARMUP, ITER_MAX, POWER, MIN_LR
        ),
        'lrkit Warmup(Poly(100), 20, mode="overlap")': Warmup(
            Poly(total_steps=ITER_MAX, power=POWER, end=MIN_LR),
            steps=WARMUP,
            start=MIN_LR,
            mode="overlap",
        ),
        'lrkit Warmup(Poly(80), 20, mode="prefix")': Warmup(
            Poly(total_steps=ITER_MAX - WARMUP, power=POWER, end=MIN_LR),
            steps=WARMUP,
            start=MIN_LR,
            mode="prefix",
        ),
    }
    fig = Figure(figsize=(11.0, 5.0), dpi=100)
    FigureCanvasAgg(fig)
    whole, zoom = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    plot_schedules(schedules, steps=ITER_MAX + 10, base_lr=BASE, ax=whole, title="whole run")
    plot_schedules(
        schedules, steps=30, base_lr=BASE, ax=zoom, mark_milestones=False, title="first 30 steps"
    )
    for ax in (whole, zoom):
        for line in ax.lines:
            if (line.get_gid() or "").startswith("curve:"):
                line.set_drawstyle("steps-post")  # rates are per step: draw them as such
    handles, labels = whole.get_legend_handles_labels()
    for ax in (whole, zoom):
        ax.get_legend().remove()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0.0, 0.06, 1.0, 1.0))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(
        Path(sys.argv[1])
        if len(sys.argv) > 1
        else Path(__file__).parent / "img" / "segmenter_vs_lrkit.png"
    )
