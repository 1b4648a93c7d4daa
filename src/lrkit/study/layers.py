"""The per-layer picture of a study: recorded during each run, drawn in the report.

:class:`LayerRecorder` keeps, every :func:`layer_stride` updates (and after the first), the
per-layer fields of :data:`lrkit.inspect.layers.LAYER_FIELDS` for every named parameter
(a per-parameter :class:`lrkit.inspect.Monitor`); the run file stores them under ``layers``
(``docs/run_format.md``). :func:`heatmap_section` is a report section
(:data:`lrkit.study.report.SECTIONS`): one heat map of ``log10_update_to_weight`` per
optimizer (lowest seed of its best schedule), layers updating too fast or too slowly flagged.
"""

from __future__ import annotations

import html
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from lrkit.inspect.layers import LAYER_FIELDS

__all__ = ["LAYER_POINTS", "LayerRecorder", "StoredRecord", "heatmap_section", "layer_stride",
           "stored_records"]

#: About how many steps of a run the per-layer picture keeps.
LAYER_POINTS = 20


def layer_stride(steps: int) -> int:
    """Updates between per-layer records: ``max(1, steps // LAYER_POINTS)``."""
    return max(1, steps // LAYER_POINTS)


def _compact(v: Any) -> float | None:
    """4 significant digits (the run file stays small); None for a field not defined."""
    if v is None:
        return None
    x = float(v)
    return float(f"{x:.4g}") if math.isfinite(x) else x


class LayerRecorder:
    """Per-layer fields of every named parameter, every ``every`` updates."""

    def __init__(self, opt: torch.optim.Optimizer, model: torch.nn.Module, every: int) -> None:
        from lrkit.inspect import Monitor, ScheduleAdviceWarning, track

        name = type(opt).__name__
        # the d / eta a step used (Prodigy, D-Adaptation, ASGD); a hook on every step, so only
        # where a step overwrites what it used
        self.tracking = track(opt) if any(k in name for k in ("Prodigy", "DAdapt", "ASGD")) \
            else None
        with warnings.catch_warnings():  # the advice goes to the report, not to stderr
            warnings.simplefilter("ignore", ScheduleAdviceWarning)
            self.monitor = Monitor(opt, every=every, per_param=True,
                                   named_parameters=model.named_parameters(), updates="derive")
        self.steps: list[int] = []
        self.names: list[str] = []
        self.fields: dict[str, list[list[float | None]]] = {f: [] for f in LAYER_FIELDS}

    def record(self) -> None:
        """Count one update (call right after ``optimizer.step()``); record when due."""
        from lrkit.inspect import NoStatisticsError

        try:
            recs = [r for r in self.monitor.step() if isinstance(r.group, str)]
        except NoStatisticsError:  # no statistics yet (Prodigy skips steps at rate 0)
            recs = []
        self.monitor.history.clear()
        if not recs:
            return
        if not self.names:
            self.names = [str(r.group) for r in recs]
        rows = {str(r.group): r.row() for r in recs}
        self.steps.append(recs[0].step)
        for f in LAYER_FIELDS:
            self.fields[f].append([_compact(rows[n][f]) if n in rows else None
                                   for n in self.names])

    def data(self) -> dict[str, Any]:
        """The run file's ``layers`` object."""
        return {"every": self.monitor.every, "steps": list(self.steps),
                "names": list(self.names),
                "fields": {f: [list(r) for r in v] for f, v in self.fields.items()}}

    def state(self) -> dict[str, Any]:
        return {"count": self.monitor.steps, **self.data()}

    def load(self, state: dict[str, Any]) -> None:
        self.monitor.steps = int(state["count"])
        self.steps = [int(s) for s in state["steps"]]
        self.names = [str(n) for n in state["names"]]
        self.fields = {f: [list(r) for r in state["fields"][f]] for f in LAYER_FIELDS}


class StoredRecord:
    """A per-layer record read back from a run file: what :func:`layer_matrix` reads."""

    def __init__(self, step: int, name: str, row: dict[str, float | None]) -> None:
        self.step, self.group, self._row = step, name, row

    def row(self) -> dict[str, Any]:
        return {"step": self.step, "group": self.group, **self._row}


def stored_records(layers: dict[str, Any]) -> list[StoredRecord]:
    """The run file's ``layers`` object as records for :mod:`lrkit.inspect.layers` and
    :func:`lrkit.inspect.plot.plot_layer_heatmap`."""
    fields = layers["fields"]
    out = []
    for i, step in enumerate(layers["steps"]):
        for j, name in enumerate(layers["names"]):
            out.append(StoredRecord(int(step), str(name),
                                    {f: fields[f][i][j] for f in fields}))
    return out


def _chosen(runs: Sequence[Any]) -> dict[str, Any]:
    """Per optimizer, the lowest seed of its best schedule (mean metric) that has layers."""
    from lrkit.study.stats import summarize

    task = next((r.task for r in runs if r.task), None)
    if task is None:
        return {}
    out: dict[str, Any] = {}
    for v in summarize(runs, task["metric"], bool(task["higher_is_better"])):
        for row in v.rows:
            mine = sorted((r for r in runs if r.config.optimizer == v.optimizer
                           and r.config.schedule.name == row.schedule and r.layers
                           and r.layers.get("steps")), key=lambda r: r.config.seed)
            if mine:
                out[v.optimizer] = mine[0]
                break
    return out


def heatmap_section(folder: Path, runs: Sequence[Any]) -> tuple[str, str] | None:
    """Report section: per optimizer, the heat map ``layers_<optimizer>.png`` and the
    layers flagged (:func:`lrkit.inspect.layers.flag_layers`)."""
    from lrkit.inspect.layers import flag_layers
    from lrkit.inspect.plot import _plt, plot_layer_heatmap

    chosen = _chosen(runs)
    if not chosen:
        return None
    esc = html.escape
    parts = ["<p>Per layer (named parameter), log10 RMS(update)/RMS(weight) over training, "
             "read against about -3: above -2 (▲ fast) the layer moves too fast, below -4 "
             "(▼ slow) it barely trains. One run per optimizer: the lowest seed of its best "
             "schedule. All fields (also the median and p90 effective rate and the "
             "update-gradient cosine) are in each run file's <code>layers</code>.</p>"]
    for opt, run in chosen.items():
        recs: Any = stored_records(run.layers)
        name = "layers_" + "".join(c if c.isalnum() or c in "-_" else "-" for c in opt) + ".png"
        fig = plot_layer_heatmap(recs, folder / name, dpi=80)
        _plt().close(fig)
        flags = flag_layers(recs)
        note = "".join(
            f"<li>{label}: {esc(', '.join(names))}</li>"
            for label, names in (("too fast", flags.too_fast), ("too slow", flags.too_slow))
            if names) or "<li>no layer flagged</li>"
        parts.append(f'<h3>{esc(opt)}: {esc(run.config.label)}</h3><figure><img '
                     f'src="{esc(name)}" alt="{esc(name)}"><figcaption>Per-layer update-to-'
                     f"weight ratio, {esc(run.config.label)}.</figcaption></figure>"
                     f"<ul>{note}</ul>")
    return "Per-layer update sizes", "".join(parts)
