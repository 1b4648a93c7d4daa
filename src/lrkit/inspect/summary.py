"""Summaries of effective rates: quantiles, mean, extremes and a log-spaced histogram.

Quantiles are read from a histogram over :math:`\\log_{10}` of the rates with ``bins_per_decade``
bins per decade between ``10**low`` and ``10**high`` (rates outside are counted in the edge
bins; exact minimum and maximum are tracked separately and bound every estimate). Exact
quantiles of 100M elements would need a sort; the histogram is one pass with a fixed-size
result and no host synchronisation.

**Accuracy.** Let :math:`x_{(0)} \\le \\dots \\le x_{(n-1)}` be the rates and
:math:`k = \\lfloor q(n-1) \\rfloor`. The estimate for quantile :math:`q` interpolates
geometrically inside the bin holding :math:`x_{(k)}`, so for rates inside the histogram range it
is within a factor :math:`10^{1/B}` of :math:`x_{(k)}`, which is
``numpy.quantile(x, q, method="lower")`` (:math:`B` = ``bins_per_decade``; default 100: 2.3 %,
up to the rounding of :math:`\\log_{10}` at a bin edge); it also lies in ``[min, max]``.
It is *not* close to numpy's default (linear) quantile when :math:`x_{(k)}` and
:math:`x_{(k+1)}` are far apart: for rates ``[1e-3, 1e-1]`` and ``q=0.5`` the estimate is
about ``1e-3`` (the lower order statistic), numpy's default ``0.0505``. With many elements
the two order statistics are close and so are the answers.

**Computation.** A rate :math:`r` falls in bin :math:`\\lfloor (\\log_{10} r - low)\\,B \\rfloor`,
computed in the rate's precision (float32: the rounding of :math:`\\log_{10}` above, about
:math:`10^{-6}` in :math:`\\log_{10}`; half precision is widened to float32), clamped to the end
bins. The mean, the update and weight norms and the update-gradient product are float64 sums
of the values (products of two values exact in float64), added up piece by piece. On the CPU
large tensors are read in pieces of :data:`lrkit.inspect.selection.CHUNK` elements (in cache;
the bins are counted with ``bincount``, and each piece's extremes are read on the host, which
is no synchronisation there); on a device whole tensors are read, ``histc`` counts the same
positions, and nothing is read on the host.

All statistics stay tensors on the optimizer's device until read: a :class:`Summary` copies
its few tensors to the host once, on first access of a value.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lrkit.inspect import selection
from lrkit.inspect.effective import NoStatisticsError, ParamRates, iter_rates, update_of

__all__ = ["QUANTILES", "Histogram", "Summarizer", "Summary", "summarize"]

#: The quantiles every summary reports.
QUANTILES: tuple[float, ...] = (0.01, 0.10, 0.50, 0.90, 0.99)

_WIDE = (torch.float32, torch.float64)


def _flat_real(t: Tensor) -> Tensor:
    t = t.detach()
    return (torch.view_as_real(t) if torch.is_complex(t) else t).reshape(-1)


def _f64(t: Tensor, slot: int) -> Tensor:
    """``t`` in float64 (exact): a reused buffer for a CPU piece."""
    if t.dtype == torch.float64:
        return t
    if not selection.on_host(t):
        return t.to(torch.float64)
    return selection.scratch(t.numel(), torch.float64, slot).copy_(t)


@dataclass(frozen=True)
class Histogram:
    """A log-spaced histogram: ``counts[i]`` rates in ``[edges[i], edges[i+1])``."""

    edges: np.ndarray
    counts: np.ndarray


class Summarizer:
    """Accumulate rate statistics tensor by tensor, on the tensors' device.

    Args:
        low, high: log10 of the histogram range (default 1e-16 .. 1e4).
        bins_per_decade: histogram resolution; sets the quantile error (module docstring).
    """

    def __init__(self, *, low: float = -16.0, high: float = 4.0, bins_per_decade: int = 100):
        if not (math.isfinite(low) and math.isfinite(high) and high > low):
            raise ValueError(f"low={low!r}, high={high!r} is invalid: expected low < high")
        if bins_per_decade < 1:
            raise ValueError(f"bins_per_decade={bins_per_decade!r} is invalid: expected >= 1")
        self.low, self.high, self.bpd = float(low), float(high), int(bins_per_decade)
        self.bins = round((high - low) * bins_per_decade)
        self._acc: dict[str, Tensor] | None = None

    def _init(self, device: torch.device) -> dict[str, Tensor]:
        z = torch.zeros((), dtype=torch.float64, device=device)
        return {
            "counts": torch.zeros(self.bins, dtype=torch.float64, device=device),
            "n": z.clone(),
            "sum": z.clone(),
            "min": torch.full((), math.inf, dtype=torch.float64, device=device),
            "max": torch.full((), -math.inf, dtype=torch.float64, device=device),
            "upd_sq": z.clone(),
            "w_sq": z.clone(),
            "has_upd": z.clone(),
            "ug": z.clone(),
            "g_sq": z.clone(),
            "has_grad": z.clone(),
        }

    def add(self, rate: Tensor, numel: float | None = None, weight: float = 1.0) -> None:
        """Add a rate tensor; a 0-d ``rate`` stands for ``numel`` equal elements.

        ``weight``: how many elements each element of ``rate`` stands for (a sample's
        stride); counts, sums and the mean are weighted by it. A large CPU tensor is read in
        pieces of :data:`lrkit.inspect.selection.CHUNK` elements (the same statistics, summed
        piece by piece).
        """
        acc = self._acc if self._acc is not None else self._init(rate.device)
        self._acc = acc
        r = rate.detach()
        if r.dim() == 0:
            k = float(numel if numel is not None else 1)
            r64 = r.to(torch.float64)
            lg = torch.log10(r64).clamp(self.low, self.high)
            idx = ((lg - self.low) * self.bpd).floor().clamp(0, self.bins - 1).long()
            acc["counts"].index_put_((idx.reshape(1),), torch.full_like(r64, k).reshape(1), True)
            acc["n"] += k
            acc["sum"] += r64 * k
            acc["min"] = torch.minimum(acc["min"], r64)
            acc["max"] = torch.maximum(acc["max"], r64)
            return
        r = r.reshape(-1)
        for a, b in selection.spans(r):
            self._add_piece(acc, r[a:b], weight)

    def _add_piece(self, acc: dict[str, Tensor], r: Tensor, weight: float) -> None:
        lo, hi = torch.aminmax(r)
        wide = r if r.dtype in _WIDE else r.float()
        if not selection.on_host(r):  # no host sync on a device: histc skips NaN itself
            lg = torch.log10(wide).clamp_(self.low, self.high - 0.5 / self.bpd)
            hist = torch.histc(self._position(lg), self.bins, 0, self.bins).to(torch.float64)
        else:  # CPU: bincount of the truncated positions (histc is about 3x slower)
            lg = torch.log10(wide, out=selection.scratch(r.numel(), wide.dtype))
            lo_f, hi_f = float(lo), float(hi)
            if not (lo_f >= 10.0**self.low and hi_f <= 10.0**self.high):  # also with NaN
                lg.clamp_(self.low, self.high - 0.5 / self.bpd)
            pos = self._position(lg)
            if not lo_f >= 0.0:  # NaN or negative rates: no bin (as histc)
                pos = pos[~torch.isnan(pos)]
            # inside the range, a position within rounding of an end truncates into the end
            # bin: (-1, 0) to 0 (truncation toward zero), ``bins`` by the fold below
            idx = selection.scratch(pos.numel(), torch.int32).copy_(pos)
            hist = torch.bincount(idx, minlength=self.bins)
            if hist.numel() > self.bins:
                hist = torch.cat([hist[: self.bins - 1], hist[self.bins - 1 :].sum().reshape(1)])
        if weight == 1.0:
            acc["counts"] += hist
        else:
            acc["counts"] += hist.to(torch.float64) * weight
        acc["n"] += r.numel() * weight
        r_sum = _f64(r, 0).sum() if selection.on_host(r) else r.sum(dtype=torch.float64)
        acc["sum"] += r_sum * weight
        acc["min"] = torch.minimum(acc["min"], lo.to(torch.float64))
        acc["max"] = torch.maximum(acc["max"], hi.to(torch.float64))

    def _position(self, lg: Tensor) -> Tensor:
        """The bin position ``(log10(rate) - low) * B``, in place; its floor is the bin."""
        return lg.sub_(self.low).mul_(self.bpd)

    def add_update(
        self, update: Tensor, weight: Tensor, grad: Tensor | None = None, scale: float = 1.0
    ) -> None:
        """Add one parameter's last update and its weights (for update RMS and ratio).

        ``grad`` (same shape) adds to the cosine between update and gradient; ``scale`` is
        the number of elements each given element stands for (a sample's stride). Sums of
        squares and products are float64 sums of exact float64 products, read in pieces on
        the CPU.
        """
        if self._acc is None:
            self._acc = self._init(update.device)
        acc = self._acc
        u, w = _flat_real(update), _flat_real(weight)
        g = _flat_real(grad) if grad is not None else None
        terms: dict[str, list[Tensor]] = {"upd_sq": [], "w_sq": [], "ug": [], "g_sq": []}
        for a, b in selection.spans(u):
            u64 = _f64(u[a:b], 0)
            terms["upd_sq"].append(torch.dot(u64, u64))
            if g is not None:
                g64 = _f64(g[a:b], 1)
                terms["ug"].append(torch.dot(u64, g64))
                terms["g_sq"].append(torch.dot(g64, g64))
        for a, b in selection.spans(w):
            w64 = _f64(w[a:b], 0)
            terms["w_sq"].append(torch.dot(w64, w64))
        for k, vals in terms.items():
            if vals:
                total = vals[0] if len(vals) == 1 else torch.stack(vals).sum()
                acc[k] += total * scale
        n = u.numel() // (2 if torch.is_complex(update) else 1)  # as given (complex: pairs)
        acc["has_upd"] += n * scale
        if g is not None:
            acc["has_grad"] += n * scale

    def result(self, group: int | str = 0) -> Summary:
        """The summary so far (tensors, not yet read)."""
        if self._acc is None:
            raise ValueError("nothing was added")
        return Summary(group, self.low, self.bpd, dict(self._acc))


@dataclass
class Summary:
    """Statistics of the effective rates of one group (or parameter); read lazily.

    Attributes (host values, computed on first access): ``count``, ``mean``, ``min``, ``max``,
    ``quantiles`` (dict q -> value, for :data:`QUANTILES`), ``histogram``, ``update_rms`` and
    ``update_to_weight`` (``||Δp|| / ||p||``; ``None`` when no update was given).
    """

    key: int | str
    low: float
    bpd: int
    tensors: dict[str, Tensor]
    _host: dict[str, Any] | None = field(default=None, repr=False)

    def _read(self) -> dict[str, Any]:
        if self._host is None:
            names = list(self.tensors)
            flat = torch.cat([self.tensors[k].reshape(-1) for k in names]).cpu().numpy()
            host: dict[str, Any] = {}
            i = 0
            for k in names:
                n = self.tensors[k].numel()
                host[k] = flat[i : i + n] if n > 1 else float(flat[i])
                i += n
            self._host = host
        return self._host

    @property
    def count(self) -> int:
        return int(self._read()["n"])

    @property
    def mean(self) -> float:
        h = self._read()
        return float(h["sum"] / h["n"]) if h["n"] else math.nan

    @property
    def min(self) -> float:
        return float(self._read()["min"])

    @property
    def max(self) -> float:
        return float(self._read()["max"])

    @property
    def histogram(self) -> Histogram:
        counts = np.asarray(self._read()["counts"])
        edges = 10.0 ** (self.low + np.arange(counts.size + 1) / self.bpd)
        return Histogram(edges=edges, counts=counts)

    def quantile(self, q: float) -> float:
        """Estimated ``q``-quantile (error bound: module docstring)."""
        h = self._read()
        n = h["n"]
        if not n:
            return math.nan
        counts = np.asarray(h["counts"])
        cum = np.cumsum(counts)
        rank = q * (n - 1)
        b = int(np.searchsorted(cum, rank, side="right"))
        b = min(b, counts.size - 1)
        before = cum[b - 1] if b > 0 else 0.0
        frac = (rank - before + 0.5) / counts[b] if counts[b] else 0.5
        est = 10.0 ** (self.low + (b + min(max(frac, 0.0), 1.0)) / self.bpd)
        return float(min(max(est, h["min"]), h["max"]))

    @property
    def quantiles(self) -> dict[float, float]:
        return {q: self.quantile(q) for q in QUANTILES}

    @property
    def update_rms(self) -> float | None:
        h = self._read()
        return math.sqrt(h["upd_sq"] / h["has_upd"]) if h["has_upd"] else None

    @property
    def update_to_weight(self) -> float | None:
        h = self._read()
        if not h["has_upd"]:
            return None
        return math.sqrt(h["upd_sq"] / h["w_sq"]) if h["w_sq"] else math.inf

    @property
    def log10_update_to_weight(self) -> float | None:
        """:math:`\\log_{10}` of RMS(Δp)/RMS(p), read against roughly −3 (``None``: no update)."""
        r = self.update_to_weight
        if r is None:
            return None
        return math.log10(r) if r > 0 else -math.inf

    @property
    def update_grad_cosine(self) -> float | None:
        """Cosine between the update Δp and the gradient (−1: plain gradient descent)."""
        h = self._read()
        if not h["has_grad"]:
            return None
        den = math.sqrt(h["upd_sq"] * h["g_sq"])
        return float(h["ug"] / den) if den else 0.0

    def as_dict(self) -> dict[str, float | None]:
        """Flat host values (the CSV row fields)."""
        d: dict[str, float | None] = {f"p{round(q * 100)}": v for q, v in self.quantiles.items()}
        d.update(mean=self.mean, min=self.min, max=self.max)
        d.update(update_rms=self.update_rms, update_to_weight=self.update_to_weight)
        d.update(
            log10_update_to_weight=self.log10_update_to_weight,
            update_grad_cosine=self.update_grad_cosine,
        )
        return d


def summarize(
    optimizer: torch.optim.Optimizer,
    *,
    updates: dict[Tensor, Tensor] | str | None = None,
    names: dict[Tensor, str] | Iterable[tuple[str, Tensor]] | None = None,
    per_param: bool = False,
    bins_per_decade: int = 100,
    stepped: Collection[Tensor] | None = None,
    sample: int | None = None,
) -> dict[int | str, Summary]:
    """Summaries of the effective rates, per group (key: group index) or per named parameter.

    Args:
        optimizer: a supported optimizer (see :mod:`lrkit.inspect.effective`).
        updates: realized updates per parameter (``param -> delta``) for ``update_rms``,
            ``update_to_weight`` and ``update_grad_cosine``; e.g. ``dict(last_update(opt))``
            or a monitor's snapshot; ``"derive"`` derives them here (as
            :func:`lrkit.inspect.last_update`, on the sample when sampling).
        names: ``model.named_parameters()`` (or a param -> name dict) for ``per_param``.
        per_param: one summary per parameter, keyed by name (or ``"g{group}.{index}"``).
        bins_per_decade: histogram resolution.
        stepped: the parameters the last step updated (see :func:`lrkit.inspect.iter_rates`);
            parameters the last step skipped are left out of the summaries.
        sample: read at most about this many elements per parameter (a systematic sample,
            each element weighted by the number it stands for; see
            :func:`lrkit.inspect.iter_rates`); ``None``: all.

    Raises:
        UnsupportedOptimizerError, NoStatisticsError: as :func:`effective_rates`.
    """
    if names is not None and not isinstance(names, dict):
        names = {p: n for n, p in names}
    by: dict[int | str, Summarizer] = {}
    counter: dict[int, int] = {}
    last: Tensor | None = None
    key: int | str = 0
    for pr in iter_rates(optimizer, stepped=stepped, sample=sample,
                          chunk=selection.CHUNK):
        if pr.skipped:
            continue
        if pr.param is not last:  # a new parameter (the pieces of one follow each other)
            last = pr.param
            idx = counter.get(pr.group, 0)
            counter[pr.group] = idx + 1
            key = pr.group
            if per_param:
                default = f"g{pr.group}.{idx}"
                key = names.get(pr.param, default) if names else default
        _add(by.setdefault(key, Summarizer(bins_per_decade=bins_per_decade)), pr, updates)
    return {k: s.result(k) for k, s in by.items()}


def _add(s: Summarizer, pr: ParamRates, updates: dict[Tensor, Tensor] | str | None) -> None:
    numel = pr.numel or pr.param.numel() * (2 if torch.is_complex(pr.param) else 1)
    if numel == 0:  # an empty local shard (FSDP2 with fewer rows than ranks)
        return
    share = pr.share or numel  # the elements this record (a whole parameter, a piece) stands for
    weight = share / pr.rate.numel() if pr.rate.dim() and pr.take is not None else 1.0
    s.add(pr.rate, share, weight)
    values = pr.values if pr.values is not None else pr.param.detach()
    delta: Tensor | None = None
    if updates == "derive":
        try:
            delta = update_of(pr)
        except NoStatisticsError:  # the rule needs param.grad and it is gone
            delta = None
    elif isinstance(updates, dict) and pr.param in updates:
        delta = updates[pr.param]
        if type(delta).__name__ == "DTensor":
            delta = getattr(delta, "to_local")()  # noqa: B009
        if torch.is_complex(delta):
            delta = torch.view_as_real(delta)
        if pr.take is not None:
            delta = pr.take(delta)
    if delta is not None:
        if torch.is_complex(delta):  # statistics over the real view, as the rates
            delta = torch.view_as_real(delta)
        grad = pr.grad if pr.grad is not None and pr.grad.numel() == delta.numel() else None
        s.add_update(delta, values, grad, share / max(delta.numel(), 1))
