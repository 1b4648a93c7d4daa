r"""A rate sequence prepared for the laws: warmup, areas and the loss-drop sums.

Conventions (shared by both laws). ``rates[i]`` is the rate used by update ``i``; the loss
logged at step ``t`` is the loss after ``t`` completed updates, so it depends on
``rates[0..t-1]``. The warmup is the prefix before the rate first reaches its peak
(``w`` = the first index where ``rates`` reaches its maximum). After it, in the papers'
notation, :math:`\eta_0` is the peak, :math:`\eta_\tau = ` ``rates[w + τ - 1]`` for
:math:`\tau \ge 1`, the decrements are :math:`\Delta_k = \eta_{k-1} - \eta_k` and
:math:`S_1(t) + S_W = \sum_{i<t}` ``rates[i]`` (warmup area included).

The multi-power law's loss drop

.. math::
    LD(t') = \sum_{k=1}^{t'} \Delta_k\, G\!\left(\eta_k^{-\gamma} S_k(t')\right),
    \qquad S_k(t') = \sum_{\tau=k}^{t'} \eta_\tau,
    \qquad G(x) = 1 - (C x + 1)^{-\beta}

is quadratic in steps when written out. :class:`DropTable` evaluates it with a dyadic
compression: the decrements far before ``t'`` are grouped into blocks whose width is at most
``1/(c - 1)`` of their distance to ``t'``, each block replaced by its total decrement at its
|Δ|-weighted centroid (of :math:`\log\eta_k` and of :math:`\sum_{\tau<k}\eta_\tau`); the
last ``c`` decrements are summed exactly. Every query costs about ``c·log2(n/c)`` terms.
Because :math:`G` is increasing, a block's error is at most
:math:`\sum_{k\in\text{block}}|\Delta_k|\,(G(x_{hi}) - G(x_{lo}))` with :math:`x_{lo}, x_{hi}`
the smallest and largest :math:`x_k` the block can take; :meth:`DropTable.loss_drop` returns
this bound next to the value when asked (tested against the exact sum).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

__all__ = ["Curve", "DropTable", "exact_loss_drop", "g_drop"]

#: rates below this (relative to the law's rate unit) are treated as this, so that
#: :math:`\eta^{-\gamma}` stays finite for schedules that decay to 0
RATE_FLOOR = 1e-12


def g_drop(x: F64, c: float, beta: float) -> F64:
    """:math:`G(x) = 1 - (Cx + 1)^{-\\beta}`, accurate for small ``Cx``."""
    return -np.expm1(-beta * np.log1p(c * x))  # type: ignore[no-any-return]


def warmup_length(rates: F64) -> int:
    """The index where the rate first reaches its maximum (0 without a warmup)."""
    peak = float(np.max(rates))
    return int(np.argmax(rates >= peak * (1.0 - 1e-9)))


@dataclasses.dataclass(frozen=True)
class Curve:
    """A rate sequence in the law's unit (rates divided by ``unit``), ready for the laws."""

    rates: F64  # rate per update, in units of the law's rate unit
    warmup: int  # w
    cum: F64  # cum[t] = sum(rates[:t]), length n + 1 (S1 + S_W at step t)

    @classmethod
    def from_rates(cls, rates: npt.ArrayLike, unit: float, warmup: int | None = None) -> Curve:
        r = np.asarray(rates, dtype=np.float64) / unit
        w = warmup_length(r) if warmup is None else int(warmup)
        cum = np.concatenate(([0.0], np.cumsum(r)))
        return cls(r, w, cum)

    @property
    def n(self) -> int:
        return int(self.rates.size)

    @property
    def peak(self) -> float:
        """:math:`\\eta_0`: the rate at the end of the warmup."""
        return float(self.rates[self.warmup]) if self.n else 0.0

    @property
    def eta(self) -> F64:
        """:math:`\\eta_\\tau` for τ = 1..n - w (index τ - 1)."""
        return self.rates[self.warmup:]

    @property
    def decrements(self) -> F64:
        """:math:`\\Delta_k = \\eta_{k-1} - \\eta_k` for k = 1..n - w (index k - 1)."""
        eta = self.eta
        return np.concatenate(([self.peak], eta[:-1])) - eta

    @property
    def post_area(self) -> F64:
        """P[τ] = sum of η_1..η_τ for τ = 0..n - w."""
        return self.cum[self.warmup:] - self.cum[self.warmup]  # type: ignore[no-any-return]

    def momentum_area(self, decay: float) -> F64:
        """:math:`S_2(t')` of the annealing law for t' = 0..n - w (Tissue et al., 2024).

        :math:`m_k = \\lambda m_{k-1} + \\Delta_k`, :math:`S_2(t') = \\sum_{k \\le t'} m_k`,
        i.e. :math:`S_2(t') = \\sum_k \\Delta_k (1 - \\lambda^{t'-k+1}) / (1 - \\lambda)`.
        """
        d = self.decrements
        m = np.empty_like(d)
        block = 256  # within a block: m_i = λ^i (λ m_prev + Σ_{j<=i} λ^-j Δ_j)
        up = decay ** np.arange(block, dtype=np.float64)
        down = decay ** -np.arange(block, dtype=np.float64)
        prev = 0.0
        for lo in range(0, d.size, block):
            seg = d[lo:lo + block]
            k = seg.size
            m[lo:lo + k] = up[:k] * (decay * prev + np.cumsum(down[:k] * seg))
            prev = float(m[lo + k - 1])
        return np.concatenate(([0.0], np.cumsum(m)))


def exact_loss_drop(curve: Curve, post_steps: I64, c: float, beta: float,
                    gamma: float) -> F64:
    """The quadratic sum :math:`LD(t')` at the given t' (for tests and short runs)."""
    d = curve.decrements
    p = curve.post_area
    a = np.maximum(curve.eta, RATE_FLOOR) ** (-gamma)
    out = np.zeros(len(post_steps))
    for j, t in enumerate(np.asarray(post_steps, dtype=np.int64)):
        if t <= 0:
            continue
        x = a[:t] * (p[t] - p[:t])
        out[j] = float(np.sum(d[:t] * g_drop(x, c, beta)))
    return out


def _block_g(x: F64, a: F64, u: F64, vp: F64, vl: F64, cpl: F64, c: float, beta: float,
             gamma: float) -> F64:
    """A block's mean :math:`G`, to second order in the spread of its decrements.

    With :math:`x = e^{-\\gamma l}(P_t - p)` over the block's (l, p) (|Δ|-weighted means
    :math:`\bar l, \bar p`, variances and covariance), :math:`E[G(x)] \approx G(\bar x)
    + G'(\bar x)(E x - \bar x) + \tfrac12 G''(\bar x) \\mathrm{Var}\\,x`, where
    :math:`E x - \bar x \approx a(\tfrac12\\gamma^2 u\\,V_l + \\gamma\\,C_{pl})` and
    :math:`\\mathrm{Var}\\,x \approx a^2 (V_p + 2\\gamma u\\,C_{pl} + \\gamma^2u^2 V_l)`.
    """
    cx = c * x
    lg1 = np.log1p(cx)
    shift = a * (0.5 * gamma * gamma * u * vl + gamma * cpl)
    var = a * a * (vp + 2.0 * gamma * u * cpl + gamma * gamma * u * u * vl)
    corr = beta * c * np.exp(-(beta + 1.0) * lg1) * (shift - 0.5 * (beta + 1.0) * c * var
                                                     / (cx + 1.0))
    return corr - np.expm1(-beta * lg1)  # type: ignore[no-any-return]


def _table(dd: F64, lg: F64, pk: F64, levels: int) -> dict[str, F64]:
    """Per level: block sums of ``dd`` and the |Δ|-weighted moments of (log η, P[k-1])."""
    wgt = np.abs(dd)
    names = ("d", "absd", "lg", "pk", "vp", "vl", "cpl", "lg_min", "lg_max", "pk_min",
             "pk_max")
    tab: dict[str, list[F64]] = {k: [] for k in names}
    # |Δ|-weighted means and centred second moments, merged pairwise (Chan et al.)
    ml, mp = lg, pk
    sll = np.zeros_like(lg)
    spp = np.zeros_like(lg)
    spl = np.zeros_like(lg)
    lmin, lmax, pmin, pmax = lg, lg, pk, pk
    for lev in range(levels + 1):
        safe = np.where(wgt > 0, wgt, 1.0)
        cols = {"d": dd, "absd": wgt, "lg": ml, "pk": mp, "vp": spp / safe,
                "vl": sll / safe, "cpl": spl / safe, "lg_min": lmin, "lg_max": lmax,
                "pk_min": pmin, "pk_max": pmax}
        for k, v in cols.items():
            tab[k].append(v)
        if lev == levels:
            break
        wa, wb = wgt[0::2], wgt[1::2]
        w = wa + wb
        fb = np.divide(wb, w, out=np.zeros_like(w), where=w > 0)
        cross = np.divide(wa * wb, w, out=np.zeros_like(w), where=w > 0)
        dl, dp = ml[1::2] - ml[0::2], mp[1::2] - mp[0::2]
        ml, mp = ml[0::2] + dl * fb, mp[0::2] + dp * fb
        sll = sll[0::2] + sll[1::2] + dl * dl * cross
        spp = spp[0::2] + spp[1::2] + dp * dp * cross
        spl = spl[0::2] + spl[1::2] + dp * dl * cross
        dd = dd[0::2] + dd[1::2]
        wgt = w
        lmin = np.minimum(lmin[0::2], lmin[1::2])
        lmax = np.maximum(lmax[0::2], lmax[1::2])
        pmin = np.minimum(pmin[0::2], pmin[1::2])
        pmax = np.maximum(pmax[0::2], pmax[1::2])
    # all levels end to end, and one trailing entry, a zero decrement, that index -1 reads
    return {k: np.concatenate((*v, [0.0])) for k, v in tab.items()}


class DropTable:
    """Block sums of a curve's decrements at every dyadic level (see the module notes)."""

    def __init__(self, curve: Curve, near: int = 3) -> None:
        if near < 2:
            raise ValueError(f"near={near!r} is invalid: expected an integer >= 2")
        self.near = near
        d = curve.decrements
        p = curve.post_area
        n = d.size
        self.n = n
        self.p_end = p  # P[t'] for the query side
        levels = 0
        while n > 0 and ((n - 1) >> levels) > near - 1:
            levels += 1
        self.levels = levels
        size = 1 << levels
        length = max(1, -(-n // size) * size)
        pad = length - n
        lg = np.log(np.maximum(np.concatenate((curve.eta, np.ones(pad))), RATE_FLOOR))
        pk = np.concatenate((p[:-1], np.full(pad, p[-1] if p.size else 0.0)))  # P[k-1]
        # decreases and increases apart, so no block's terms cancel
        self._offset = np.cumsum([0] + [length >> lev for lev in range(levels + 1)])
        self._tabs = [_table(np.concatenate((part, np.zeros(pad))), lg, pk, levels)
                      for part in (np.maximum(d, 0.0), np.minimum(d, 0.0)) if part.any()]

    def passes(self, t: I64) -> Iterator[tuple[int, I64]]:
        """(level, index into the flat tables; -1 for none) for every term of queries ``t``."""
        c = self.near
        off = self._offset
        last = np.asarray(t, dtype=np.int64) - 1
        live = last >= 0
        for m in range(c):  # the last c decrements, exactly
            j = last - m
            yield 0, np.where(live & (j >= 0), j, -1)
        for lev in range(1, self.levels + 1):
            jl = last >> lev
            jm = last >> (lev - 1)
            for m in range(c):
                j = 2 * jl - 2 * c + 2 + m
                yield lev - 1, np.where(live & (j >= 0) & (j <= jm - c), j + off[lev - 1], -1)

    def loss_drop(self, t: npt.ArrayLike, c: float, beta: float, gamma: float,
                  bound: bool = False, chunk: int = 1 << 15) -> tuple[F64, F64 | None]:
        """:math:`LD(t')` at the queries (and the error bound when ``bound``).

        Each block adds :math:`D\\,[G(\bar x) + \tfrac12 G''(\bar x)\\,\\mathrm{Var}\\,x]`
        (the second-order term from the block's spread of :math:`x`). Index -1 in a pass
        points at each table's last entry, a zero decrement.
        """
        t = np.asarray(t, dtype=np.int64)
        out = np.zeros(t.shape)
        err = np.zeros(t.shape) if bound else None
        for tab in self._tabs:
            self._add(tab, t, out, err, c, beta, gamma, chunk)
        return out, err

    def _add(self, tab: dict[str, F64], t: I64, out: F64, err: F64 | None, c: float,
             beta: float, gamma: float, chunk: int) -> None:
        a = np.exp(-gamma * tab["lg"])
        if err is not None:
            a_lo = np.exp(-gamma * tab["lg_max"])
            a_hi = np.exp(-gamma * tab["lg_min"])
        for lo in range(0, t.size, chunk):
            tq = t[lo:lo + chunk]
            pt = self.p_end[np.clip(tq, 0, self.n)]
            acc = np.zeros(tq.shape)
            for lev, j in self.passes(tq):
                dsum = tab["d"][j]
                if not dsum.any():
                    continue
                u = pt - tab["pk"][j]
                aj = a[j]
                x = aj * u
                if lev > 0:
                    term = _block_g(x, aj, u, tab["vp"][j], tab["vl"][j],
                                    tab["cpl"][j], c, beta, gamma)
                else:
                    term = g_drop(x, c, beta)
                acc += dsum * term
                if err is not None and lev > 0:
                    xl = a_lo[j] * np.maximum(pt - tab["pk_max"][j], 0.0)
                    xh = a_hi[j] * (pt - tab["pk_min"][j])
                    err[lo:lo + chunk] += tab["absd"][j] * (
                        g_drop(xh, c, beta) - g_drop(xl, c, beta)) + np.abs(
                        dsum * (term - g_drop(x, c, beta)))
            out[lo:lo + chunk] += acc

    def terms(self, t: npt.ArrayLike) -> Terms:
        """The compressed sum's terms for the queries ``t``, flattened (zero terms dropped).

        For repeated evaluation at the same queries (fitting): see :meth:`Terms.loss_drop`.
        """
        t = np.asarray(t, dtype=np.int64)
        pt = self.p_end[np.clip(t, 0, self.n)]
        cols: dict[str, list[F64]] = {k: [] for k in ("d", "lg", "u", "vp", "vl", "cpl")}
        q = []
        for tab, (_, j) in ((tab, pj) for tab in self._tabs for pj in self.passes(t)):
            dsum = tab["d"][j]
            keep = np.flatnonzero(dsum)
            jk = j[keep]
            q.append(keep)
            cols["d"].append(dsum[keep])
            cols["lg"].append(tab["lg"][jk])
            cols["u"].append(pt[keep] - tab["pk"][jk])
            for k in ("vp", "vl", "cpl"):
                cols[k].append(tab[k][jk])
        cat = {k: np.concatenate(v) if v else np.zeros(0) for k, v in cols.items()}
        query = np.concatenate(q) if q else np.zeros(0, np.int64)
        return Terms(int(t.size), query, cat["d"], cat["lg"], cat["u"], cat["vp"], cat["vl"],
                     cat["cpl"])


@dataclasses.dataclass(frozen=True)
class Terms:
    """Flattened loss-drop terms of fixed queries (see :meth:`DropTable.loss_drop`)."""

    size: int
    query: I64
    d: F64
    log_eta: F64
    area: F64
    var_p: F64
    var_l: F64
    cov_pl: F64

    def loss_drop(self, c: float, beta: float, gamma: float) -> F64:
        a = np.exp(-gamma * self.log_eta)
        u = self.area
        x = a * u
        g = _block_g(x, a, u, self.var_p, self.var_l, self.cov_pl, c, beta, gamma)
        return np.bincount(self.query, self.d * g, minlength=self.size).astype(np.float64)
