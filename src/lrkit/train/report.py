"""The comparison report: PNG figures, results.json/results.csv/summary.csv and report.html.

Everything lands in one folder; report.html refers to the figures beside it by relative
path and loads nothing from the network, so the folder can be opened from disk, zipped or
attached as a CI artifact. Every number drawn in a figure is in results.json and
results.csv.
"""

from __future__ import annotations

import csv
import html
import json
import math
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lrkit.train.runner import RunResult, TaskConfig

__all__ = ["FIGURES", "write_report"]

#: The figures of a report: file name -> caption.
FIGURES = {
    "lr.png": "Learning rate applied at each step, per optimizer (top: linear, bottom: log).",
    "training.png": "Training loss (per step, faint; epoch mean, solid) and validation "
    "accuracy after each epoch.",
    "effective_lr.png": "Adam-type optimizers: the scheduler's base rate against the band of "
    "effective per-element rates lr/(√v̂+ε) (10th-90th percentile, median dashed).",
}

_SUMMARY_FIELDS = (
    "schedule",
    "optimizer",
    "seed",
    "base_lr",
    "best_val_acc",
    "final_val_acc",
    "final_train_loss",
    "final_val_loss",
    "wall_time_s",
    "diverged",
)


def _colors(names: Sequence[str]) -> dict[str, Any]:
    import matplotlib

    cmap = matplotlib.colormaps["tab10"]
    return {n: cmap(i % 10) for i, n in enumerate(dict.fromkeys(names))}


def _optimizers(runs: Sequence[RunResult]) -> list[str]:
    return list(dict.fromkeys(r.config.optimizer for r in runs))


def _lr_figure(runs: Sequence[RunResult], path: Path) -> None:
    import matplotlib.pyplot as plt

    opts = _optimizers(runs)
    colors = _colors([r.config.schedule.name for r in runs])
    fig, axes = plt.subplots(2, len(opts), figsize=(5.5 * len(opts), 7), squeeze=False)
    for j, opt in enumerate(opts):
        for row, scale in enumerate(("linear", "log")):
            ax = axes[row][j]
            for r in runs:
                if r.config.optimizer != opt:
                    continue
                first = r.config.seed == min(
                    q.config.seed for q in runs if q.config.schedule == r.config.schedule
                )
                ax.plot(
                    range(len(r.lr)),
                    r.lr,
                    color=colors[r.config.schedule.name],
                    label=r.config.schedule.name if first else None,
                    lw=1.4,
                )
            ax.set_yscale(scale)
            ax.set_xlabel("step (optimizer updates)")
            ax.set_ylabel("learning rate")
            ax.set_title(f"{opt}: learning rate ({scale} scale)")
            ax.grid(alpha=0.3)
        axes[0][j].legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _training_figure(runs: Sequence[RunResult], task: TaskConfig, path: Path) -> None:
    import matplotlib.pyplot as plt

    opts = _optimizers(runs)
    colors = _colors([r.config.schedule.name for r in runs])
    fig, axes = plt.subplots(2, len(opts), figsize=(5.5 * len(opts), 7), squeeze=False)
    spe = task.steps_per_epoch
    for j, opt in enumerate(opts):
        ax_loss, ax_acc = axes[0][j], axes[1][j]
        for r in runs:
            if r.config.optimizer != opt:
                continue
            c = colors[r.config.schedule.name]
            ax_loss.plot(range(len(r.train_loss)), r.train_loss, color=c, alpha=0.18, lw=0.7)
            ends = [spe * (e + 1) - 1 for e in range(len(r.epoch_train_loss))]
            ax_loss.plot(ends, r.epoch_train_loss, color=c, lw=1.6, label=r.config.schedule.name)
            ax_acc.plot(
                range(1, len(r.val_acc) + 1), r.val_acc, color=c, marker="o", ms=3, lw=1.4,
                label=r.config.schedule.name,
            )
        ax_loss.set_yscale("log")
        ax_loss.set(xlabel="step", ylabel="training loss", title=f"{opt}: training loss")
        ax_acc.set(xlabel="epoch", ylabel="validation accuracy",
                   title=f"{opt}: validation accuracy")
        lowest = min((min(r.val_acc, default=1.0) for r in runs), default=0.0)
        ax_acc.set_ylim(max(0.0, lowest - 0.02), 1.0)
        for ax in (ax_loss, ax_acc):
            ax.grid(alpha=0.3)
        ax_acc.legend(fontsize=8, ncol=2, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _band_figure(runs: Sequence[RunResult], path: Path) -> bool:
    import matplotlib.pyplot as plt

    banded = [r for r in runs if r.band is not None and r.band["median"]]
    if not banded:
        return False
    ncols = min(4, len(banded))
    nrows = -(-len(banded) // ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(4.2 * ncols, 3.3 * nrows), squeeze=False, sharey=True
    )
    colors = _colors([r.config.schedule.name for r in runs])
    for ax, r in zip(axes.flat, banded, strict=False):
        assert r.band is not None
        steps = range(len(r.band["median"]))
        c = colors[r.config.schedule.name]
        ax.fill_between(steps, r.band["low"], r.band["high"], color=c, alpha=0.25, lw=0,
                        label="effective p10-p90")
        ax.plot(steps, r.band["median"], color=c, ls="--", lw=1.0, label="effective median")
        ax.plot(range(len(r.lr)), r.lr, color="black", lw=1.3, label="base rate")
        ax.set_yscale("log")
        ax.set_title(f"{r.config.schedule.name} / {r.config.optimizer} / s{r.config.seed}",
                     fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(banded):]:
        ax.axis("off")
    axes[0][0].set_ylabel("rate")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def _fmt(x: Any, digits: int = 4) -> str:
    if isinstance(x, float):
        return "-" if math.isnan(x) else f"{x:.{digits}g}"
    return str(x)


def _rows_csv(runs: Sequence[RunResult], task: TaskConfig, path: Path) -> None:
    spe = task.steps_per_epoch
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow([
            "schedule", "optimizer", "seed", "step", "epoch", "lr", "train_loss",
            "eff_lr_p10", "eff_lr_median", "eff_lr_p90",
            "epoch_train_loss", "val_loss", "val_acc",
        ])
        for r in runs:
            c = r.config
            for s in range(len(r.lr)):
                e, last = divmod(s + 1, spe)
                epoch_cols: list[Any] = ["", "", ""]
                if last == 0 and e - 1 < len(r.val_acc):
                    epoch_cols = [r.epoch_train_loss[e - 1], r.val_loss[e - 1], r.val_acc[e - 1]]
                band: list[Any] = ["", "", ""]
                if r.band is not None and s < len(r.band["median"]):
                    band = [r.band["low"][s], r.band["median"][s], r.band["high"][s]]
                loss = r.train_loss[s] if s < len(r.train_loss) else ""
                w.writerow([
                    c.schedule.name, c.optimizer, c.seed, s, s // spe, repr(r.lr[s]), loss,
                    *band, *epoch_cols,
                ])


def _html(
    runs: Sequence[RunResult],
    task: TaskConfig,
    info: dict[str, Any],
    figures: Sequence[str],
    partial: str | None,
) -> str:
    esc = html.escape
    best: dict[str, float] = {}
    for r in runs:
        o = r.config.optimizer
        if not math.isnan(r.best_val_acc):
            best[o] = max(best.get(o, -1.0), r.best_val_acc)
    rows = []
    for r in runs:
        s = r.summary()
        cls = ' class="best"' if best.get(s["optimizer"]) == s["best_val_acc"] else ""
        cells = "".join(f"<td>{esc(_fmt(s[k]))}</td>" for k in _SUMMARY_FIELDS[:-1])
        flag = "<td>diverged</td>" if s["diverged"] else "<td></td>"
        rows.append(f"<tr{cls}>{cells}{flag}</tr>")
    head = "".join(f"<th>{esc(k.replace('_', ' '))}</th>" for k in _SUMMARY_FIELDS[:-1])
    specs = "".join(
        f"<li><b>{esc(name)}</b>: <code>{esc(spec)}</code></li>"
        for name, spec in dict.fromkeys((r.config.schedule.name, r.config.schedule.spec)
                                        for r in runs)
    )
    figs = "".join(
        f'<figure><img src="{esc(f)}" alt="{esc(f)}"><figcaption>{esc(FIGURES[f])}'
        "</figcaption></figure>"
        for f in figures
    )
    banner = f'<p class="partial">Partial report: {esc(partial)}</p>' if partial else ""
    facts = " · ".join(f"{esc(k)}: {esc(str(v))}" for k, v in info.items())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>lrkit compare report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }}
table {{ border-collapse: collapse; font-size: 0.9em; }}
th, td {{ border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }}
th {{ background: #f0f0f0; }} td:nth-child(-n+2) {{ text-align: left; }}
tr.best td {{ font-weight: bold; background: #eef7ee; }}
figure {{ margin: 1.5em 0; }} img {{ max-width: 100%; border: 1px solid #ddd; }}
figcaption {{ color: #555; font-size: 0.9em; }}
.partial {{ background: #fff3cd; border: 1px solid #e0c060; padding: 0.6em; }}
code {{ font-size: 0.9em; }}
</style></head>
<body>
<h1>lrkit compare</h1>
{banner}
<p>{facts}</p>
<h2>Results</h2>
<table id="results"><thead><tr>{head}<th>note</th></tr></thead>
<tbody>{"".join(rows)}</tbody></table>
<p>Bold: best accuracy per optimizer. Accuracy on the held-out validation split after each
epoch; losses are cross-entropy. All numbers: <a href="results.json">results.json</a>,
<a href="results.csv">results.csv</a> (per step), <a href="summary.csv">summary.csv</a>.</p>
<h2>Schedules</h2><ul>{specs}</ul>
<h2>Figures</h2>
{figs}
</body></html>
"""


def write_report(
    folder: Path,
    runs: Sequence[RunResult],
    task: TaskConfig,
    *,
    data_info: dict[str, Any],
    partial: str | None = None,
) -> Path:
    """Write the report into ``folder`` (which must exist) and return report.html's path."""
    import matplotlib

    matplotlib.use("Agg")
    import torch

    import lrkit

    figures: list[str] = []
    if runs:
        _lr_figure(runs, folder / "lr.png")
        _training_figure(runs, task, folder / "training.png")
        figures = ["lr.png", "training.png"]
        if _band_figure(runs, folder / "effective_lr.png"):
            figures.append("effective_lr.png")
    total_wall = sum(r.wall_time_s for r in runs)
    info = {
        "task": data_info.get("dataset", "digits"),
        "epochs": task.epochs,
        "batch size": task.batch_size,
        "steps/epoch": task.steps_per_epoch,
        "total steps": task.total_steps,
        "runs": len(runs),
        "training time": f"{total_wall:.1f} s",
        "threads": task.threads,
    }
    results = {
        "lrkit_version": lrkit.__version__,
        "torch_version": torch.__version__,
        "python": platform.python_version(),
        "partial": partial is not None,
        "partial_reason": partial,
        "task": {**data_info, **{k: getattr(task, k) for k in (
            "epochs", "batch_size", "steps_per_epoch", "threads", "accumulate")},
            "total_steps": task.total_steps},
        "figures": figures,
        "runs": [r.to_dict() for r in runs],
    }
    (folder / "results.json").write_text(json.dumps(results, indent=1, allow_nan=True) + "\n")
    _rows_csv(runs, task, folder / "results.csv")
    with (folder / "summary.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(_SUMMARY_FIELDS))
        w.writeheader()
        for r in runs:
            w.writerow(r.summary())
    out = folder / "report.html"
    out.write_text(_html(runs, task, info, figures, partial))
    return out
