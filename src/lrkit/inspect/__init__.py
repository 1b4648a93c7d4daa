"""Effective learning rates of torch optimizers, and a monitor for training loops.

The scheduler sets the base rate ``group["lr"]``; adaptive optimizers (Adam, RMSprop, ...)
divide it, per element and per step, by statistics of past gradients. This package computes
that per-element rate from the optimizer's state (:func:`effective_rates`), summarises it
(:func:`summarize`), records it during training (:class:`Monitor`) and draws it next to the
base rate (:func:`plot_effective_lr`, imported lazily with matplotlib).
"""

from __future__ import annotations

from typing import Any

from lrkit.inspect.advice import ScheduleAdviceWarning, advice
from lrkit.inspect.effective import (
    SUPPORTED_OPTIMIZERS,
    NoStatisticsError,
    ParamRates,
    UnsupportedOptimizerError,
    effective_rates,
    iter_rates,
    last_update,
    track,
)
from lrkit.inspect.layers import LAYER_FIELDS, LayerFlags, flag_layers, layer_matrix
from lrkit.inspect.monitor import DEFAULT_EVERY, DEFAULT_SAMPLE, Monitor, Record
from lrkit.inspect.summary import QUANTILES, Histogram, Summarizer, Summary, summarize

__all__ = [
    "DEFAULT_EVERY",
    "DEFAULT_SAMPLE",
    "LAYER_FIELDS",
    "QUANTILES",
    "SUPPORTED_OPTIMIZERS",
    "Histogram",
    "LayerFlags",
    "Monitor",
    "NoStatisticsError",
    "ParamRates",
    "Record",
    "ScheduleAdviceWarning",
    "Summarizer",
    "Summary",
    "UnsupportedOptimizerError",
    "advice",
    "effective_rates",
    "flag_layers",
    "iter_rates",
    "last_update",
    "layer_matrix",
    "plot_effective_lr",
    "plot_histograms",
    "plot_layer_heatmap",
    "summarize",
    "track",
]


def __getattr__(name: str) -> Any:  # the plotting functions pull in matplotlib: load lazily
    if name in ("plot_effective_lr", "plot_histograms", "plot_layer_heatmap"):
        from lrkit.inspect import plot

        return getattr(plot, name)
    raise AttributeError(f"module 'lrkit.inspect' has no attribute {name!r}")
