"""The laws typed straight from the papers, step by step (slow; independent of lrkit.laws)."""

from __future__ import annotations

import math


def split(rates: list[float]) -> tuple[int, float]:
    """Warmup length (first index at the maximum) and the peak."""
    peak = max(rates)
    w = next(i for i, r in enumerate(rates) if r >= peak * (1 - 1e-9))
    return w, rates[w]


def mpl(rates: list[float], t: int, p: dict[str, float]) -> float:
    """Multi-power law at step t (t updates done), Luo et al. 2025, eq. for L(t)."""
    w, peak = split(rates)
    area = sum(rates[:t])  # S1(t) + S_W
    eta = [peak, *rates[w:t]]  # eta_0 .. eta_{t'}
    tp = t - w
    ld = 0.0
    for k in range(1, tp + 1):
        s_k = sum(eta[k:tp + 1])
        x = max(eta[k], 1e-12 * peak) ** (-p["gamma"]) * s_k
        g = 1 - (p["C"] * x + 1) ** (-p["beta"])
        ld += (eta[k - 1] - eta[k]) * g
    return p["L0"] + p["A"] * area ** (-p["alpha"]) - p["B"] * ld


def annealing(rates: list[float], t: int, p: dict[str, float], lam: float = 0.999) -> float:
    """Annealing law at step t, Tissue et al. 2024: m_i = lam m_{i-1} + (eta_{i-1} - eta_i)."""
    w, peak = split(rates)
    area = sum(rates[:t])
    eta = [peak, *rates[w:t]]
    m, s2 = 0.0, 0.0
    for i in range(1, t - w + 1):
        m = lam * m + (eta[i - 1] - eta[i])
        s2 += m
    return p["L0"] + p["A"] * area ** (-p["alpha"]) - p["C"] * s2


def close(a: float, b: float, rel: float) -> bool:
    return math.isclose(a, b, rel_tol=rel)
