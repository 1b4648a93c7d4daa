"""A training-loop monitor: base rate next to effective-rate summaries, every N steps.

Call the monitor right after ``optimizer.step()`` (before ``scheduler.step()``), or let it
hook itself there with :meth:`Monitor.attach`; it then records each group's ``lr`` *as used by
that step* and the summaries of :func:`lrkit.inspect.summarize`. It reads only the optimizer's
param groups and state, so it works with any scheduler (torch's, lrkit's, or none).

Records go to :attr:`Monitor.history` (summaries stay device tensors until read), and, when
asked, to a CSV file and to TensorBoard (``torch.utils.tensorboard``, imported on first use).
Writers read values in batches of ``flush_every`` records, so the device is synchronised once
per batch, not per record.

A record reads, per parameter, a systematic sample of at most about :data:`DEFAULT_SAMPLE`
elements (``sample=None`` reads all), so its cost does not grow with the model: on a
100M-parameter AdamW model on CPU one record costs well under the time of reading the
optimizer state once, and at the default stride :data:`DEFAULT_EVERY` far below 1 % of the
optimizer step (``benchmarks/bench_inspect.py``, BENCHMARKS.md). Reading every element
(read in pieces on the CPU, see :mod:`lrkit.inspect.selection`) costs about 7 to 20 state
reads on CPU (about 1.5 % of the step at the default stride).

Per named parameter (``per_param=True``), each record also holds the per-layer picture:
``log10_update_to_weight`` (:math:`\\log_{10}` RMS(Δp)/RMS(p), read against roughly −3),
the median and p90 effective rate, and ``update_grad_cosine`` (cosine between Δp and the
gradient); :func:`lrkit.inspect.plot.plot_layer_heatmap` draws them over training.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from lrkit.inspect import selection
from lrkit.inspect.advice import warn_advice
from lrkit.inspect.distributed import is_sharded, merge_summaries
from lrkit.inspect.effective import iter_rates, track
from lrkit.inspect.summary import QUANTILES, Summarizer, Summary, summarize

__all__ = ["DEFAULT_EVERY", "DEFAULT_SAMPLE", "TENSORBOARD_LAYOUT", "Monitor", "Record"]

#: Default recording stride (optimizer steps between records).
DEFAULT_EVERY = 100

_FIELDS = [
    "step",
    "group",
    "lr",
    *(f"p{round(q * 100)}" for q in QUANTILES),
    "mean",
    "min",
    "max",
    "update_rms",
    "update_to_weight",
    "log10_update_to_weight",
    "update_grad_cosine",
]

#: TensorBoard's custom-scalars layout the monitor writes: the base rate against the
#: effective median, and the per-layer picture (one line per group or named parameter).
TENSORBOARD_LAYOUT: dict[str, dict[str, list[Any]]] = {
    "lrkit rates": {
        "base rate (lr) and effective median (p50)": [
            "Multiline", [r"lr/[^/]+/lr$", r"lr/[^/]+/p50$"]],
        "effective p10 .. p90": ["Multiline", [r"lr/[^/]+/p10$", r"lr/[^/]+/p90$"]],
    },
    "lrkit per layer": {
        "log10 RMS(update) / RMS(weight)  (about -3)": [
            "Multiline", [r"lr/[^/]+/log10_update_to_weight$"]],
        "median effective rate": ["Multiline", [r"lr/[^/]+/p50$"]],
        "p90 effective rate": ["Multiline", [r"lr/[^/]+/p90$"]],
        "cosine(update, gradient)": ["Multiline", [r"lr/[^/]+/update_grad_cosine$"]],
    },
}

#: Default per-parameter element budget of one record (a strided sample beyond it).
DEFAULT_SAMPLE = 1 << 14


@dataclass
class Record:
    """One recording: after optimizer update ``step`` (1-based), for one group or parameter."""

    step: int
    group: int | str
    lr: float | Tensor
    summary: Summary

    def row(self) -> dict[str, Any]:
        """The CSV row (reads the summary's values)."""
        lr = float(self.lr) if isinstance(self.lr, Tensor) else self.lr
        return {"step": self.step, "group": self.group, "lr": lr, **self.summary.as_dict()}

    def metrics(self, prefix: str = "lr") -> dict[str, float]:
        """Flat scalars for a logger: ``{prefix}/{group}/base`` (the rate the step used) and
        ``{prefix}/{group}/{p50, mean, log10_update_to_weight, ...}`` (fields present)."""
        row = self.row()
        out = {f"{prefix}/{self.group}/base": float(row["lr"])}
        for key, value in row.items():
            if key not in ("step", "group", "lr") and value is not None:
                out[f"{prefix}/{self.group}/{key}"] = float(value)
        return out


def _world() -> int:
    try:
        import torch.distributed as dist

        return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
    except (ImportError, RuntimeError):  # pragma: no cover
        return 1


class Monitor:
    """Record base and effective rates of an optimizer during training.

    Args:
        optimizer: a supported optimizer (:data:`lrkit.inspect.SUPPORTED_OPTIMIZERS`).
        every: record every ``every``-th step (the first step is always recorded).
        named_parameters: ``model.named_parameters()``, to key per-parameter summaries.
        per_param: summaries per named parameter instead of per group.
        updates: ``"derive"`` (from state and ``param.grad``; see
            :func:`lrkit.inspect.last_update`), ``"snapshot"`` (copy parameters before each
            recorded step: exact, costs one parameter copy; needs :meth:`attach`), or ``None``.
        csv_path: append rows to this CSV file.
        tensorboard_dir: log scalars there (needs the ``tensorboard`` package).
        flush_every: records buffered before the writers read and write them.
        bins_per_decade: histogram resolution.
        quantiles: the quantiles :meth:`quantiles_now` returns (default p10, p50, p90).
        distributed: merge the ranks' summaries (one collective per record, see
            :mod:`lrkit.inspect.distributed`) so that every rank, rank 0 included, holds the
            global numbers. ``None`` (default): when the optimizer is sharded
            (``ZeroRedundancyOptimizer``, FSDP2 DTensor parameters) and a process group of
            several ranks is initialised. Records must then happen at the same steps on
            every rank (the hooks of :meth:`attach` do that).
        dist_timeout: seconds a record waits for the other ranks before raising.
        sample: per-parameter element budget of a record: larger parameters are summarised
            on a systematic sample (see :func:`lrkit.inspect.iter_rates`), each element
            weighted by the number it stands for,
            which bounds the cost of a record whatever the model size. ``None``: every element
            (exact quantiles within the histogram's bound, exact extremes).

    Example:
        >>> import torch
        >>> p = torch.nn.Parameter(torch.ones(4))
        >>> opt = torch.optim.Adam([p], lr=0.01)
        >>> mon = Monitor(opt, every=1)
        >>> for _ in range(3):
        ...     p.grad = torch.ones(4); opt.step(); _ = mon.step()
        >>> [r.step for r in mon.history], round(mon.history[-1].summary.quantile(0.5), 3)
        ([1, 2, 3], 0.01)
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        *,
        every: int = DEFAULT_EVERY,
        named_parameters: Iterable[tuple[str, Tensor]] | None = None,
        per_param: bool = False,
        updates: str | None = "derive",
        csv_path: str | os.PathLike[str] | None = None,
        tensorboard_dir: str | os.PathLike[str] | None = None,
        flush_every: int = 10,
        bins_per_decade: int = 100,
        quantiles: tuple[float, ...] = (0.1, 0.5, 0.9),
        sample: int | None = DEFAULT_SAMPLE,
        distributed: bool | None = None,
        dist_timeout: float = 300.0,
    ) -> None:
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"every={every!r} is invalid: expected an integer >= 1")
        if updates not in ("derive", "snapshot", None):
            raise ValueError(
                f"updates={updates!r} is invalid: expected 'derive', 'snapshot' or None"
            )
        self.optimizer = optimizer
        warn_advice(optimizer)
        self.every = every
        self.names = {p: n for n, p in named_parameters} if named_parameters else None
        self.per_param = per_param
        self.updates = updates
        self.csv_path = csv_path
        self.tensorboard_dir = tensorboard_dir
        self.flush_every = max(1, int(flush_every))
        self.bpd = bins_per_decade
        self.quantiles = tuple(float(q) for q in quantiles)
        if sample is not None and (not isinstance(sample, int) or sample < 1):
            raise ValueError(f"sample={sample!r} is invalid: expected an integer >= 1 or None")
        self.sample = sample
        if distributed is None:
            distributed = is_sharded(optimizer) and _world() > 1
        self.distributed = bool(distributed)
        self.dist_timeout = float(dist_timeout)
        self._layout: list[int | str] | None = None  # keys whose layout the ranks checked
        if self.distributed and self.names is None:  # keys must agree across ranks
            self.names = {
                p: f"g{gi}.{pi}"
                for gi, g in enumerate(optimizer.param_groups)
                for pi, p in enumerate(g["params"])
            }
        self.history: list[Record] = []
        self.steps = 0
        self._pending: list[Record] = []
        self._writer: Any = None
        self._csv_started = False
        self._snapshot: dict[Tensor, Tensor] | None = None
        self._handles: list[Any] = []

    # -- hooking -------------------------------------------------------------------------
    def attach(self) -> Monitor:
        """Register step hooks so the monitor runs right after every ``optimizer.step()``."""
        if self._handles:
            return self
        def post(*_: Any) -> None:
            self.step()

        def pre(*_: Any) -> None:
            self._pre()

        self._handles.append(track(self.optimizer))  # its post hook runs before ours
        self._handles.append(self.optimizer.register_step_post_hook(post))
        self._handles.append(self.optimizer.register_step_pre_hook(pre))
        return self

    def detach(self) -> None:
        """Remove the hooks registered by :meth:`attach`."""
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def _due(self, step: int) -> bool:
        return step == 1 or step % self.every == 0

    def _pre(self) -> None:
        if self._due(self.steps + 1) and self.updates == "snapshot":
            self._snapshot = {
                p: p.detach().clone() for g in self.optimizer.param_groups for p in g["params"]
            }

    # -- recording -----------------------------------------------------------------------
    def step(self) -> list[Record]:
        """Count one optimizer step; record if due. Returns the new records (maybe none)."""
        self.steps += 1
        if not self._due(self.steps):
            return []
        return self.record()

    __call__ = step

    def _updates(self) -> dict[Tensor, Tensor] | str | None:
        if self.updates == "snapshot":
            snap, self._snapshot = self._snapshot, None
            if snap is None:
                return None
            return {p: p.detach() - old for p, old in snap.items()}
        return self.updates  # "derive" (per parameter, on the sample) or None

    def record(self) -> list[Record]:
        """Record now, regardless of the stride (at the current step count)."""
        sums = summarize(
            self.optimizer,
            updates=self._updates(),
            names=self.names,
            per_param=self.per_param,
            bins_per_decade=self.bpd,
            sample=self.sample,
        )
        if self.distributed:
            keys: list[int | str] = (
                [self.names[p] for g in self.optimizer.param_groups for p in g["params"]
                 if self.names is not None and p in self.names]
                if self.per_param
                else list(range(len(self.optimizer.param_groups)))
            )
            probe = Summarizer(bins_per_decade=self.bpd)
            check = self._layout != keys  # the header only when the layout may have changed
            sums = merge_summaries(sums, keys, bins=probe.bins, low=probe.low, bpd=self.bpd,
                                   timeout=self.dist_timeout, check_layout=check)
            self._layout = keys
        lrs = [g["lr"] for g in self.optimizer.param_groups]
        recs = []
        for key, s in sums.items():
            gi = key if isinstance(key, int) else self._group_of(key)
            lr = lrs[gi]
            lr = lr.detach().clone() if isinstance(lr, Tensor) else float(lr)
            recs.append(Record(self.steps, key, lr, s))
        self.history.extend(recs)
        if self.csv_path is not None or self.tensorboard_dir is not None:
            self._pending.extend(recs)
            if len(self._pending) >= self.flush_every:
                self.flush()
        return recs

    def quantiles_now(self) -> tuple[float, ...]:
        """The :attr:`quantiles` of the effective rate over all groups, now (reads the host)."""
        s = Summarizer(bins_per_decade=self.bpd)
        for pr in iter_rates(self.optimizer, chunk=selection.CHUNK):  # every element, in pieces
            s.add(pr.rate, pr.share or pr.numel or pr.param.numel())
        res = s.result()
        return tuple(res.quantile(q) for q in self.quantiles)

    def _group_of(self, key: str) -> int:
        for gi, g in enumerate(self.optimizer.param_groups):
            for pi, p in enumerate(g["params"]):
                name = self.names.get(p) if self.names else None
                if key in (name, f"g{gi}.{pi}"):
                    return gi
        return 0

    # -- writers -------------------------------------------------------------------------
    def flush(self) -> None:
        """Write buffered records to the CSV file / TensorBoard (reads their values)."""
        pending, self._pending = self._pending, []
        if not pending:
            return
        rows = [r.row() for r in pending]
        if self.csv_path is not None:
            new = not self._csv_started and not (
                os.path.exists(self.csv_path) and os.path.getsize(self.csv_path) > 0
            )
            with open(self.csv_path, "a", newline="") as f:
                w = csv.DictWriter(f, fieldnames=_FIELDS)
                if new:
                    w.writeheader()
                w.writerows(rows)
            self._csv_started = True
        if self.tensorboard_dir is not None:
            writer = self._tensorboard()
            for r, row in zip(pending, rows, strict=True):
                for k, v in row.items():
                    if k not in ("step", "group") and v is not None:
                        writer.add_scalar(f"lr/{r.group}/{k}", v, r.step)
            writer.flush()

    def _tensorboard(self) -> Any:
        if self._writer is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as err:  # pragma: no cover - depends on the environment
                raise ImportError(
                    "tensorboard_dir needs the tensorboard package: pip install lrkit[tensorboard]"
                ) from err
            self._writer = SummaryWriter(log_dir=str(self.tensorboard_dir))
            self._writer.add_custom_scalars(TENSORBOARD_LAYOUT)
        return self._writer

    def close(self) -> None:
        """Flush the writers, close TensorBoard and remove hooks."""
        self.flush()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self.detach()

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
