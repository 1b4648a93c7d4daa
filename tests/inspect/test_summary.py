"""Summaries against numpy on the same values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lrkit.inspect import QUANTILES, Summarizer, effective_rates, last_update, summarize


@pytest.mark.parametrize("bpd", [20, 100])
def test_quantiles_within_documented_bound(bpd: int) -> None:
    rng = np.random.default_rng(0)
    parts = [10 ** rng.uniform(-7, -1, size=n) for n in (1000, 37, 20000)]
    parts.append(rng.lognormal(-8, 1.5, size=5000))
    s = Summarizer(bins_per_decade=bpd)
    for x in parts:
        s.add(torch.from_numpy(x).float())
    res = s.result()
    allx = np.concatenate([x.astype(np.float32).astype(np.float64) for x in parts])
    bound = 10 ** (2 / bpd)
    for q in QUANTILES:
        ratio = res.quantile(q) / np.quantile(allx, q)
        assert 1 / bound <= ratio <= bound, (q, ratio)
    assert res.count == allx.size
    assert res.mean == pytest.approx(allx.mean(), rel=1e-6)
    assert res.min == pytest.approx(allx.min(), rel=1e-6)
    assert res.max == pytest.approx(allx.max(), rel=1e-6)
    h = res.histogram
    assert h.counts.sum() == allx.size
    assert h.edges.size == h.counts.size + 1
    np.testing.assert_allclose(np.diff(np.log10(h.edges)), 1 / bpd)


def test_scalar_rate_counts_numel() -> None:
    s = Summarizer()
    s.add(torch.tensor(0.01), 900)
    s.add(torch.full((100,), 1e-4))
    res = s.result()
    assert res.count == 1000
    assert res.mean == pytest.approx((900 * 0.01 + 100 * 1e-4) / 1000)
    bound = 10 ** (1 / 100) - 1  # one bin: the value is an order statistic
    assert res.quantile(0.5) == pytest.approx(0.01, rel=bound)
    assert res.quantile(0.01) == pytest.approx(1e-4, rel=bound)


def test_summarize_groups_and_updates() -> None:
    gen = torch.Generator().manual_seed(0)
    a = torch.nn.Parameter(torch.randn(50, 20, generator=gen))
    b = torch.nn.Parameter(torch.randn(30, generator=gen))
    opt = torch.optim.AdamW([{"params": [a]}, {"params": [b], "lr": 0.1}], lr=0.01)
    for _ in range(3):
        a.grad, b.grad = torch.randn(a.shape, generator=gen), torch.randn(b.shape, generator=gen)
        opt.step()
    upd = dict(last_update(opt))
    sums = summarize(opt, updates=upd)
    assert set(sums) == {0, 1}
    r0 = effective_rates(opt)[0].rate.double().numpy().ravel()
    assert sums[0].quantile(0.9) == pytest.approx(np.quantile(r0, 0.9), rel=0.05)
    u = upd[a].double().numpy()
    assert sums[0].update_rms == pytest.approx(math.sqrt((u**2).mean()), rel=1e-9)
    w = a.detach().double().numpy()
    assert sums[0].update_to_weight == pytest.approx(np.linalg.norm(u) / np.linalg.norm(w))
    row = sums[1].as_dict()
    assert set(row) >= {"p1", "p10", "p50", "p90", "p99", "mean", "min", "max"}
    named = summarize(opt, names=[("enc.w", a), ("head.b", b)], per_param=True)
    assert set(named) == {"enc.w", "head.b"}
    assert summarize(opt)[0].update_rms is None


def test_summary_is_lazy() -> None:
    s = Summarizer()
    s.add(torch.rand(10) + 0.1)
    res = s.result()
    assert res._host is None
    _ = res.mean
    assert res._host is not None


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="bins_per_decade"):
        Summarizer(bins_per_decade=0)
    with pytest.raises(ValueError, match="low"):
        Summarizer(low=1.0, high=0.0)


def test_docstring_counterexample_to_linear_quantile() -> None:
    """Issue 10.12: the estimate follows the lower order statistic, not numpy's default."""
    s = Summarizer()
    s.add(torch.tensor([1e-3, 1e-1], dtype=torch.float64))
    est = s.result().quantile(0.5)
    assert est == pytest.approx(1e-3, rel=10 ** (1 / 100) - 1)
    assert abs(est - np.quantile([1e-3, 1e-1], 0.5)) > 0.04  # far from the linear method


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=60)
@given(
    logs=st.lists(st.floats(-12, 2), min_size=1, max_size=40),
    q=st.floats(0, 1),
    bpd=st.sampled_from([1, 7, 100]),
    single=st.booleans(),
)
def test_quantile_within_factor_of_lower_order_statistic(
    logs: list[float], q: float, bpd: int, single: bool
) -> None:
    """The documented bound: within 10**(1/B) of numpy.quantile(x, q, method='lower')."""
    dt = torch.float32 if single else torch.float64
    x = torch.tensor([10.0**v for v in logs], dtype=dt)
    s = Summarizer(bins_per_decade=bpd)
    s.add(x)
    res = s.result()
    xs = x.to(torch.float64).numpy()
    lower = float(np.quantile(xs, q, method="lower"))
    est = res.quantile(q)
    factor = 10 ** (1 / bpd) * (1 + 1e-5)  # + the rounding of log10 at a bin edge
    assert lower / factor <= est <= lower * factor
    assert xs.min() * (1 - 1e-12) <= est <= xs.max() * (1 + 1e-12)


def test_sampled_summary_matches_sampled_truth() -> None:
    """A sample: 64-element blocks, weighted; update stats equal those of the real step."""
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(10, 128, dtype=torch.float64))
    opt = torch.optim.Adam([w], lr=0.01)
    for _ in range(3):
        w.grad = torch.randn(10, 128, dtype=torch.float64)
        old = w.detach().clone()
        opt.step()
    full = summarize(opt, updates="derive")[0]
    samp = summarize(opt, updates="derive", sample=256)[0]  # blocks 0, 5, 10, 15 of 20

    def pick(t: torch.Tensor) -> torch.Tensor:
        return torch.cat([t.reshape(-1)[64 * b : 64 * b + 64] for b in (0, 5, 10, 15)])

    assert samp.count == full.count == 1280
    rate = pick(effective_rates(opt)[0].rate)
    assert samp.min == pytest.approx(float(rate.min()), rel=1e-12)
    assert samp.mean == pytest.approx(float(rate.mean()), rel=1e-12)
    delta = pick(w.detach() - old)
    assert samp.update_rms == pytest.approx(float(delta.square().mean().sqrt()), rel=1e-9)
    ratio = float(delta.norm() / pick(w.detach()).norm())
    assert samp.update_to_weight == pytest.approx(ratio, rel=1e-9)
    assert samp.log10_update_to_weight == pytest.approx(math.log10(ratio), abs=1e-9)
    g = pick(w.grad)
    cos = float(torch.dot(delta, g) / (delta.norm() * g.norm()))
    assert samp.update_grad_cosine == pytest.approx(cos, rel=1e-9)
    fd, fg = (w.detach() - old).reshape(-1), w.grad.reshape(-1)
    assert full.update_grad_cosine == pytest.approx(
        float(torch.dot(fd, fg) / (fd.norm() * fg.norm())), rel=1e-9)
