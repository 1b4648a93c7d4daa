"""The study report: the conclusion first, then the evidence (tables, figures, all numbers).

Everything lands in one folder: report.html (loads nothing from the network), PNG figures,
results.json (every run file's object plus the study's facts and verdicts), results.csv (one
row per run and update), summary.csv (one row per schedule and optimizer) and ``runs/`` with
one run file per run (``docs/run_format.md``).

Extra sections (the per-layer heat map of ``lrkit.inspect``, for instance) are added by
appending a function to :data:`SECTIONS`: ``section(folder, runs) -> (title, html) | None``.
"""

from __future__ import annotations

import csv
import html
import json
import math
import platform
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from lrkit.study.figures import coinciding, draw_all
from lrkit.study.stats import OptimizerVerdict, decimals_for, fmt, summarize

__all__ = ["FIGURES", "SECTIONS", "write_report"]

#: The figures of a report: file name -> caption.
FIGURES = {
    "metric.png": "The ranked metric at the end of every run: one dot per seed, the bar is "
    "the mean; best first. Labels give each schedule's verdict against the best.",
    "training.png": "Left: training loss per step (mean over seeds, smoothed). Right: the "
    "ranked metric at each evaluation, mean over seeds with the range of the seeds shaded; "
    "the axis is zoomed to the values of the second half of training.",
    "lr.png": "The rate each update used (lowest seed), per optimizer, linear and log axis "
    "(at most four decades shown). Dashed: a schedule whose rates coincide with another's.",
    "effective_lr.png": "Adam-type optimizers: the scheduler's base rate against the band of "
    "effective per-element rates lr/(√v̂+ε) (10th-90th percentile, median dashed), lowest "
    "seed.",
}

Section = Callable[[Path, Sequence[Any]], "tuple[str, str] | None"]

#: Extra report sections, each ``section(folder, runs) -> (title, html) | None``; they may
#: write figures into ``folder``. The per-layer effective-rate heat map hooks in here.
SECTIONS: list[Section] = []


def _layer_heatmaps(folder: Path, runs: Sequence[Any]) -> tuple[str, str] | None:
    from lrkit.study.layers import heatmap_section

    return heatmap_section(folder, runs)


SECTIONS.append(_layer_heatmaps)

_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1150px; color: #222;
       font-size: 16px; line-height: 1.45; padding: 0 1em; }
table { border-collapse: collapse; font-size: 0.92em; margin: 0.6em 0 1.2em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
td:not(:last-child) { white-space: nowrap; }
th { background: #f0f0f0; } td.l, th.l { text-align: left; }
tr.best td { font-weight: bold; background: #eef7ee; } tr.tied td { background: #f6fbf6; }
tr.bad td { color: #a00; }
.verdict { background: #f4f8ff; border-left: 4px solid #4a7bd0; padding: 0.5em 0.9em;
           margin: 0.4em 0; }
figure { margin: 1.5em 0; } img { max-width: 100%; border: 1px solid #ddd; }
figcaption { color: #555; font-size: 0.9em; }
.partial, .failed { background: #fff3cd; border: 1px solid #e0c060; padding: 0.6em; }
code { font-size: 0.9em; }
.advice { color: #444; font-size: 0.92em; margin: 0 0 0.8em 1.2em; }
"""


def _mean_of(runs: Sequence[Any], opt: str, sched: str, key: str) -> float:
    vals = [r.final.get(key, math.nan) for r in runs if r.config.optimizer == opt
            and r.config.schedule.name == sched and r.status == "finished"]
    vals = [v for v in vals if math.isfinite(v)]
    return sum(vals) / len(vals) if vals else math.nan


def _table_rows(v: OptimizerVerdict, runs: Sequence[Any], metric: str,
                extra: list[str]) -> list[dict[str, Any]]:
    """One dict per schedule, best first (the columns of the table and of summary.csv)."""
    same = coinciding(runs, v.optimizer)
    near = coinciding(runs, v.optimizer, 0.01)
    out = []
    for rank, row in enumerate(v.rows, start=1):
        mine = [r for r in runs if r.config.optimizer == v.optimizer
                and r.config.schedule.name == row.schedule]
        peaks = [max(r.lr) for r in mine if r.lr]
        note = row.note
        if row.schedule in same:
            note = "; ".join(x for x in (note, f"same rates as {same[row.schedule]}") if x)
        elif row.schedule in near:
            note = "; ".join(x for x in (note, f"rates within 1% of the peak of "
                                         f"{near[row.schedule]}'s") if x)
        d = {
            "rank": rank if row.verdict not in ("diverged", "failed") else "",
            "schedule": row.schedule, "optimizer": v.optimizer,
            f"{metric} mean": row.mean, f"{metric} sd": row.sd,
            "diff vs best": row.diff, "95% interval": (row.low, row.high),
            "verdict": row.verdict, "seeds": row.n,
            **{f"{k} mean": _mean_of(runs, v.optimizer, row.schedule, k) for k in extra},
            "base lr": mine[0].config.lr if mine else math.nan,
            "peak lr used": max(peaks) if peaks else math.nan,
            "s/run": (sum(r.wall_time_s for r in mine) / len(mine)) if mine
            else math.nan,
            "note": note,
        }
        out.append(d)
    return out


def _html_table(rows: list[dict[str, Any]], metric: str) -> str:
    if not rows:
        return ""
    esc = html.escape
    cols = [c for c in rows[0] if c not in ("optimizer",)]
    # no empty columns: drop those with nothing in any row
    cols = [c for c in cols if any(_present(r[c]) for r in rows)]
    dec = decimals_for([r[f"{metric} mean"] for r in rows])
    metric_cols = {f"{metric} mean", f"{metric} sd", "diff vs best"}

    def cell(c: str, x: Any) -> str:
        left = c in ("schedule", "verdict", "note")
        if isinstance(x, tuple):
            text = "" if not all(map(math.isfinite, x)) else \
                f"[{fmt(x[0], dec)}, {fmt(x[1], dec)}]"
        elif c in metric_cols and not math.isfinite(x):
            text = ""
        elif isinstance(x, float):
            if c in metric_cols:
                text = fmt(x, dec)
            elif c.endswith(" mean"):
                text = fmt(x, decimals_for([r[c] for r in rows]))
            elif c == "s/run":
                text = fmt(x, 1)
            else:
                text = "n/a" if not math.isfinite(x) else f"{x:.3g}"
        else:
            text = str(x)
        return f'<td{" class=l" if left else ""}>{esc(text)}</td>'

    head = "".join(f'<th{" class=l" if c in ("schedule", "verdict", "note") else ""}>'
                   f"{esc(c)}</th>" for c in cols)
    body = []
    for r in rows:
        cls = {"best": "best", "tied": "tied", "diverged": "bad", "failed": "bad"}.get(
            r["verdict"], "")
        body.append(f'<tr class="{cls}">' + "".join(cell(c, r[c]) for c in cols) + "</tr>")
    return (f'<table class="results"><thead><tr>{head}</tr></thead><tbody>'
            + "".join(body) + "</tbody></table>")


def _present(x: Any) -> bool:
    if isinstance(x, tuple):
        return all(map(_present, x))
    if isinstance(x, float):
        return math.isfinite(x)
    return x not in ("", None)


def _rows_csv(runs: Sequence[Any], path: Path) -> None:
    keys = sorted({k for r in runs for k in r.evals if k != "step"})
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["run", "schedule", "optimizer", "seed", "step", "lr", "train_loss",
                    "eff_lr_p10", "eff_lr_median", "eff_lr_p90", *keys])
        for r in runs:
            c = r.config
            at = {int(s): j for j, s in enumerate(r.evals.get("step", []))}
            for s in range(len(r.lr)):
                band: list[Any] = ["", "", ""]
                if r.band is not None and s < len(r.band["median"]):
                    band = [r.band["low"][s], r.band["median"][s], r.band["high"][s]]
                j = at.get(s + 1)
                ev = [r.evals[k][j] if j is not None and k in r.evals else "" for k in keys]
                loss = r.train_loss[s] if s < len(r.train_loss) else ""
                w.writerow([r.id, c.schedule.name, c.optimizer, c.seed, s, repr(r.lr[s]),
                            loss, *band, *ev])


def write_report(folder: Path, runs: Sequence[Any], *, task: dict[str, Any],
                 study: dict[str, Any], partial: str | None = None,
                 sections: Sequence[Section] = ()) -> Path:
    """Write the report into ``folder`` (which must exist); return report.html's path.

    ``task`` is the run files' task object (name, metric, higher_is_better, describe, ...);
    ``study`` holds the facts shown at the top (seeds, steps, workers, backend, ...);
    ``sections`` are added after :data:`SECTIONS` (``lrkit compare --predict`` passes one).
    """
    import torch

    import lrkit

    metric, higher = task["metric"], bool(task["higher_is_better"])
    verdicts = summarize(runs, metric, higher)
    figures = draw_all(folder, runs, verdicts, metric, higher)
    extra = sorted({k for r in runs for k in r.final} - {metric, "mean_train_loss"})
    tables = {v.optimizer: _table_rows(v, runs, metric, extra) for v in verdicts}
    (folder / "runs").mkdir(exist_ok=True)
    for r in runs:
        r.write(folder / "runs")
    results = {
        "lrkit_version": lrkit.__version__, "torch_version": torch.__version__,
        "python": platform.python_version(), "partial": partial is not None,
        "partial_reason": partial, "task": task, "study": study,
        "method": "paired 95% Student-t interval of per-seed differences against the best "
                  "mean (same seeds, same data order); tied within noise if it includes 0",
        "verdicts": [{"optimizer": v.optimizer, "sentence": v.sentence,
                      "rows": tables[v.optimizer]} for v in verdicts],
        "figures": figures, "runs": [r.to_dict() for r in runs],
    }
    (folder / "results.json").write_text(json.dumps(results, indent=1, allow_nan=True) + "\n")
    _rows_csv(runs, folder / "results.csv")
    flat = []
    for rows in tables.values():
        for row in rows:
            d: dict[str, Any] = {}
            for k, x in row.items():
                if isinstance(x, tuple):
                    d["95% low"], d["95% high"] = x
                else:
                    d[k] = x
            flat.append(d)
    with (folder / "summary.csv").open("w", newline="") as f:
        if flat:
            w = csv.DictWriter(f, fieldnames=list(flat[0]))
            w.writeheader()
            w.writerows(flat)
    shown = []
    for section in [*SECTIONS, *sections]:
        got = section(folder, runs)
        if got is not None:
            shown.append(got)
    out = folder / "report.html"
    out.write_text(_html(runs, task, study, verdicts, tables, figures, shown, partial))
    return out


def _advice(optimizer: str) -> str:
    """The schedule notes of :func:`lrkit.inspect.advice.advice_for` for a study optimizer."""
    from lrkit.inspect.advice import advice_for
    from lrkit.study.config import CLASS_NAMES

    notes = advice_for(CLASS_NAMES.get(optimizer, optimizer))
    return "".join(f'<p class="advice"><b>{html.escape(optimizer)}</b>: {html.escape(n)}</p>'
                   for n in notes)


def _html(runs: Sequence[Any], task: dict[str, Any], study: dict[str, Any],
          verdicts: list[OptimizerVerdict], tables: dict[str, list[dict[str, Any]]],
          figures: list[str], sections: list[tuple[str, str]], partial: str | None) -> str:
    esc = html.escape
    metric = task["metric"]
    arrow = "higher is better" if task["higher_is_better"] else "lower is better"
    banner = f'<p class="partial">Partial report: {esc(partial)}</p>' if partial else ""
    failed = [r for r in runs if r.status == "failed"]
    if failed:
        banner += '<div class="failed"><b>Failed runs</b><ul>' + "".join(
            f"<li>{esc(r.config.label)}: {esc(r.error or '')}</li>" for r in failed) + \
            "</ul></div>"
    conclusion = "".join(f'<p class="verdict">{esc(v.sentence)}</p>{_advice(v.optimizer)}'
                         for v in verdicts)
    tabs = "".join(f"<h3>{esc(o)}</h3>{_html_table(rows, metric)}" for o, rows in
                   tables.items())
    seeds = study.get("seeds", [])
    method = (f"Every schedule ran with the same {len(seeds)} seeds "
              f"({', '.join(map(str, seeds))}); a seed fixes the initial weights and the data "
              f"order, so runs pair up by seed. Ranked on <b>{esc(metric)}</b> ({arrow}) at "
              "the last evaluation, mean over seeds. <i>diff vs best</i> is the mean paired "
              "difference to the best schedule with its 95% Student-t interval; "
              "<i>tied</i>: the interval includes 0, the seeds do not separate the two. "
              "<i>peak lr used</i> is the largest rate an update actually used.")
    figs = "".join(
        f'<figure><img src="{esc(f)}" alt="{esc(f)}"><figcaption>{esc(FIGURES[f])}'
        "</figcaption></figure>" for f in figures)
    extra = "".join(f"<h2>{esc(t)}</h2>{body}" for t, body in sections)
    specs = "".join(
        f"<li><b>{esc(name)}</b>: <code>{esc(spec)}</code></li>"
        for name, spec in dict.fromkeys((r.config.schedule.name, r.config.schedule.spec)
                                        for r in runs))
    facts = " · ".join(f"{esc(str(k))}: {esc(str(v))}" for k, v in study.items())
    desc = " · ".join(f"{esc(str(k))}: {esc(str(v))}" for k, v in
                      (task.get("describe") or {}).items() if not isinstance(v, (list, dict)))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>lrkit compare: {esc(task["name"])}</title>
<style>{_CSS}</style></head>
<body>
<h1>lrkit compare: {esc(task["name"])}</h1>
{banner}
<h2>Conclusion</h2>
{conclusion}
<h2>Results</h2>
<p>{method}</p>
{tabs}
<p>All numbers: <a href="results.json">results.json</a>, <a href="results.csv">results.csv</a>
(per update), <a href="summary.csv">summary.csv</a>, and one run file per run in
<code>runs/</code>.</p>
<h2>Figures</h2>
{figs}
{extra}
<h2>Schedules</h2><ul>{specs}</ul>
<h2>Study</h2><p>{facts}</p><p>{desc}</p>
</body></html>
"""
