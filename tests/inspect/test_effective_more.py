"""Ground truth for Muon, Adafactor, Adadelta, Rprop, ASGD, SparseAdam, schedule-free, Prodigy.

Each test steps the real optimizer (random hyperparameters, two parameter groups) and compares
lrkit's derived change with the measured one, and the optimizer-specific quantities lrkit
reports (Muon's adjusted rate and update RMS, the rate entering schedule-free's z sequence,
Prodigy's d) with values read or typed here from the optimizer itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import dadaptation
import prodigyopt
import pytest
import schedulefree
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lrkit.inspect import (
    SUPPORTED_OPTIMIZERS,
    NoStatisticsError,
    UnsupportedOptimizerError,
    effective_rates,
    last_update,
    track,
)

ULPS = 4.0
ULPS_SF = 8.0  # schedule-free: the change is recovered through both sequences (docs)

Make = Callable[[list[dict[str, Any]], st.DataObject], torch.optim.Optimizer]


def _f(d: st.DataObject, lo: float, hi: float) -> float:
    return d.draw(st.floats(lo, hi))


_MAKERS: dict[str, Make] = {
    "Muon": lambda g, d: torch.optim.Muon(
        g, weight_decay=_f(d, 0, 0.2), momentum=_f(d, 0.5, 0.99),
        nesterov=d.draw(st.booleans()),
        adjust_lr_fn=d.draw(st.sampled_from([None, "original", "match_rms_adamw"]))),
    "Adafactor": lambda g, d: torch.optim.Adafactor(
        g, weight_decay=d.draw(st.sampled_from([0.0, 0.1])), beta2_decay=_f(d, -0.9, -0.5),
        d=_f(d, 1.0, 2.0), maximize=d.draw(st.booleans()),
        foreach=d.draw(st.sampled_from([False, True]))),
    "Adadelta": lambda g, d: torch.optim.Adadelta(
        g, rho=_f(d, 0.5, 0.99), eps=d.draw(st.sampled_from([1e-6, 1e-3])),
        weight_decay=d.draw(st.sampled_from([0.0, 0.05])), maximize=d.draw(st.booleans()),
        foreach=d.draw(st.booleans())),
    "Rprop": lambda g, d: torch.optim.Rprop(
        g, etas=(_f(d, 0.3, 0.7), _f(d, 1.1, 1.5)), maximize=d.draw(st.booleans()),
        foreach=d.draw(st.booleans())),
    "ASGD": lambda g, d: torch.optim.ASGD(
        g, lambd=d.draw(st.sampled_from([1e-4, 1e-2])), alpha=_f(d, 0.5, 1.0),
        t0=d.draw(st.sampled_from([1.0, 3.0, 1e6])),
        weight_decay=d.draw(st.sampled_from([0.0, 0.1])), foreach=d.draw(st.booleans())),
    "AdamWScheduleFree": lambda g, d: schedulefree.AdamWScheduleFree(
        g, betas=(_f(d, 0.5, 0.95), _f(d, 0.9, 0.999)), warmup_steps=d.draw(st.integers(0, 4)),
        weight_decay=d.draw(st.sampled_from([0.0, 0.1])), r=d.draw(st.sampled_from([0.0, 1.0])),
        foreach=d.draw(st.booleans())),
    "SGDScheduleFree": lambda g, d: schedulefree.SGDScheduleFree(
        g, momentum=_f(d, 0.5, 0.95), warmup_steps=d.draw(st.integers(0, 4)),
        weight_decay=d.draw(st.sampled_from([0.0, 0.01])), foreach=d.draw(st.booleans())),
    "RAdamScheduleFree": lambda g, d: schedulefree.RAdamScheduleFree(
        g, betas=(0.9, _f(d, 0.9, 0.99)), silent_sgd_phase=d.draw(st.booleans()),
        foreach=d.draw(st.booleans())),
    "Prodigy": lambda g, d: prodigyopt.Prodigy(
        g, betas=(d.draw(st.sampled_from([0.0, 0.9])), _f(d, 0.9, 0.999)),
        weight_decay=d.draw(st.sampled_from([0.0, 0.1])), decouple=d.draw(st.booleans()),
        d0=d.draw(st.sampled_from([1e-6, 1e-3])), growth_rate=d.draw(st.sampled_from(
            [math.inf, 1.05])), safeguard_warmup=d.draw(st.booleans())),
    "DAdaptAdam": lambda g, d: dadaptation.DAdaptAdam(
        g, betas=(_f(d, 0.5, 0.95), _f(d, 0.9, 0.999)),
        weight_decay=d.draw(st.sampled_from([0.0, 0.1])), decouple=d.draw(st.booleans()),
        d0=d.draw(st.sampled_from([1e-6, 1e-3])), use_bias_correction=d.draw(st.booleans())),
}
_LR = {"Muon": (1e-3, 0.05), "Adafactor": (1e-3, 0.05), "Adadelta": (0.1, 1.0),
       "Rprop": (1e-3, 0.05), "ASGD": (1e-3, 0.1), "AdamWScheduleFree": (1e-3, 0.05),
       "SGDScheduleFree": (1e-3, 0.2), "RAdamScheduleFree": (1e-3, 0.05), "Prodigy": (1.0, 1.0),
       "DAdaptAdam": (1.0, 1.0)}


@pytest.mark.parametrize("name", [n for n in _MAKERS if n != "Muon"])
@settings(max_examples=4)
@given(data=st.data())
def test_real_step_delta(name: str, data: st.DataObject) -> None:
    _real_step_delta(name, data)


@settings(max_examples=2)  # torch's Newton-Schulz in bfloat16 takes ~0.1 s per call on CPU
@given(data=st.data())
def test_real_step_delta_muon(data: st.DataObject) -> None:
    _real_step_delta("Muon", data)


def _real_step_delta(name: str, data: st.DataObject) -> None:
    dtype = data.draw(st.sampled_from([torch.float64, torch.float32]))
    gen = torch.Generator().manual_seed(data.draw(st.integers(0, 2**16)))
    shapes = [(5, 3), (4, 6)] if name == "Muon" else [(5, 3), (4,), (2, 3)]
    params = [torch.nn.Parameter(torch.randn(s, generator=gen, dtype=dtype)) for s in shapes]
    lo, hi = _LR[name]
    lrs = [data.draw(st.floats(lo, hi)) for _ in range(2)]
    if name in ("Prodigy", "DAdaptAdam"):
        lrs = [1.0, 1.0]  # they allow one lr (or 0) across groups
    groups: list[dict[str, Any]] = [{"params": params[:1], "lr": lrs[0]},
                                     {"params": params[1:], "lr": lrs[1]}]
    if name == "DAdaptAdam":
        groups[1]["layer_scale"] = data.draw(st.floats(0.1, 2.0))
    opt = _MAKERS[name](groups, data)
    track(opt)
    sf = "ScheduleFree" in name
    if sf:
        opt.train()  # type: ignore[attr-defined]
    steps = data.draw(st.integers(1, 2 if name == "Muon" else 8))
    for _ in range(steps):
        for p in params:
            g = torch.randn(p.shape, generator=gen, dtype=torch.float64)
            p.grad = (g * 10 ** (torch.rand(p.shape, generator=gen, dtype=torch.float64) * 2 - 1)
                      ).to(dtype)
        old = [p.detach().clone() for p in params]
        z_old = [opt.state[p]["z"].clone() if "z" in opt.state[p] else p.detach().clone()
                 for p in params] if sf else None
        d_before = opt.param_groups[0].get("d")
        opt.step()
    derived = dict(last_update(opt))
    rates = effective_rates(opt)
    eps = torch.finfo(dtype).eps
    for i, (p, o) in enumerate(zip(params, old, strict=True)):
        delta = p.detach() - o
        scale = delta.abs() + o.abs()
        if sf:
            assert z_old is not None
            scale = scale + opt.state[p]["z"].abs() + z_old[i].abs()
        bound = (ULPS_SF if sf else ULPS) * eps * scale
        err = (derived[p] - delta).abs()
        assert bool((err <= bound).all()), float((err / bound).max())
    for r in rates:
        p = r.param
        if name == "Muon":
            a, b = p.shape
            fn = opt.param_groups[r.group]["adjust_lr_fn"]
            ratio = math.sqrt(max(a, b)) * 0.2 if fn == "match_rms_adamw" else math.sqrt(
                max(1, a / b))
            assert r.info["adjusted_lr"] == pytest.approx(float(r.lr) * ratio, rel=1e-12)
            i = next(j for j, q in enumerate(params) if q is p)
            upd = (p.detach() - old[i] * (1 - float(r.lr) * opt.param_groups[r.group][
                "weight_decay"])).double()
            rms = float(upd.norm()) / math.sqrt(upd.numel())
            assert r.info["update_rms"] == pytest.approx(rms, rel=1e-4 if dtype ==
                                                         torch.float32 else 1e-9)
        if sf:  # the rate entering z: z moved by -rate * (normalized gradient in .grad)
            i = next(j for j, q in enumerate(params) if q is p)
            assert z_old is not None
            dz = opt.state[p]["z"] - z_old[i]
            assert r.info["scheduled_lr"] == opt.param_groups[r.group]["scheduled_lr"]
            want = -float(r.info["scheduled_lr"]) * p.grad
            torch.testing.assert_close(dz, want, rtol=8 * eps, atol=8 * eps * float(
                z_old[i].abs().max()))
        if name in ("Prodigy", "DAdaptAdam"):
            assert r.info["d"] == d_before
            assert r.info["lr_d"] == pytest.approx(d_before * float(r.lr), rel=1e-15)


def test_sparse_adam() -> None:
    w = torch.nn.Parameter(torch.randn(10, 3, dtype=torch.float64))
    opt = torch.optim.SparseAdam([w], lr=0.05)
    for i in range(4):
        emb = torch.nn.functional.embedding(torch.tensor([1, 3, 3, 7 - i]), w, sparse=True)
        (emb**3).sum().backward()
        old = w.detach().clone()
        opt.step()
        delta = w.detach() - old
        torch.testing.assert_close(dict(last_update(opt))[w], delta, rtol=1e-12, atol=1e-17)
        opt.zero_grad()
    assert bool((delta[[0, 2, 8, 9]] == 0).all())


def test_prodigy_without_tracking_refuses() -> None:
    p = torch.nn.Parameter(torch.ones(3))
    opt = prodigyopt.Prodigy([p], lr=1.0)
    p.grad = torch.ones(3)
    opt.step()
    with pytest.raises(NoStatisticsError, match=r"track\(optimizer\)"):
        effective_rates(opt)


def test_unsupported_and_subclasses() -> None:
    p = torch.nn.Parameter(torch.ones(2))
    with pytest.raises(UnsupportedOptimizerError, match="LBFGS is not supported") as info:
        effective_rates(torch.optim.LBFGS([p]))
    for name in ("torch.optim.Adam", "torch.optim.Muon", "schedulefree.AdamWScheduleFree",
                 "prodigyopt.Prodigy"):
        assert name in SUPPORTED_OPTIMIZERS
        assert name in str(info.value)

    class Changed(torch.optim.Adam):
        def step(self, closure: Any = None) -> Any:
            return super().step(closure)

    with pytest.raises(UnsupportedOptimizerError, match=r"Changed .*overrides its update"):
        effective_rates(Changed([p]))

    class Renamed(torch.optim.Adam):  # same update: accepted under Adam's rule
        pass

    opt = Renamed([p], lr=0.1)
    p.grad = torch.ones(2)
    opt.step()
    assert float(effective_rates(opt)[0].rate[0]) == pytest.approx(0.1, rel=1e-6)


def test_schedule_advice_warnings() -> None:
    from lrkit.inspect import Monitor, ScheduleAdviceWarning, advice

    p = torch.nn.Parameter(torch.ones(2, 2))
    with pytest.warns(ScheduleAdviceWarning, match=r"no decay schedule.*optimizer\.train\(\)"):
        Monitor(schedulefree.AdamWScheduleFree([p]))
    with pytest.warns(ScheduleAdviceWarning, match=r"lr \* d"):
        Monitor(prodigyopt.Prodigy([p]))
    with pytest.warns(ScheduleAdviceWarning, match="no effect"):
        Monitor(torch.optim.Rprop([p]))
    assert advice(torch.optim.AdamW([p])) == []
    assert any("2-D" in a for a in advice(torch.optim.Muon([p])))


def test_combined_optimizer_is_read_per_part() -> None:
    """A CombinedOptimizer of Muon and AdamW: each group with its own part's rule (Muon's
    shape-adjusted rate, AdamW's per-element rates, as the standalone optimizers give), the
    last update as measured, per-group monitor records, and both parts' advice."""
    from lrkit.inspect import Monitor, ScheduleAdviceWarning, advice
    from lrkit.torch import CombinedOptimizer

    g = torch.Generator().manual_seed(3)
    shapes = {"w1": (6, 3), "w2": (3, 5), "emb": (5, 4), "b": (4,)}
    ps = {k: torch.nn.Parameter(torch.randn(s, generator=g)) for k, s in shapes.items()}
    ref = {k: torch.nn.Parameter(p.detach().clone()) for k, p in ps.items()}

    def parts(q: dict[str, torch.nn.Parameter]) -> tuple[torch.optim.Muon, torch.optim.AdamW]:
        return (torch.optim.Muon([q["w1"], q["w2"]], lr=0.02),
                torch.optim.AdamW([{"params": [q["emb"]]},
                                   {"params": [q["b"]], "weight_decay": 0.0}], lr=3e-3))

    opt = CombinedOptimizer(*parts(ps))
    with pytest.warns(ScheduleAdviceWarning, match="Muon orthogonalizes"):  # its parts' notes
        mon = Monitor(opt, every=1)
    ref_muon, ref_adamw = parts(ref)
    for _ in range(3):
        before = {k: p.detach().clone() for k, p in ps.items()}
        for k in ps:
            ps[k].grad = torch.randn(shapes[k], generator=g)
            ref[k].grad = ps[k].grad.clone()
        opt.step()
        ref_muon.step()
        ref_adamw.step()
    rates = effective_rates(opt)
    assert [(r.group, tuple(r.param.shape)) for r in rates] == [
        (0, (6, 3)), (0, (3, 5)), (1, (5, 4)), (2, (4,))]
    for r, adjust in zip(rates[:2], (math.sqrt(2.0), 1.0), strict=True):
        assert r.info["adjusted_lr"] == 0.02 * adjust  # torch's sqrt(max(1, A/B))
        assert float(r.rate) == pytest.approx(0.02 * adjust, rel=1e-7)
    for r, want in zip(rates[2:], effective_rates(ref_adamw), strict=True):
        assert torch.equal(r.rate, want.rate)
        assert r.decoupled_decay == want.decoupled_decay
    for p, delta in last_update(opt):
        k = next(n for n, q in ps.items() if q is p)
        torch.testing.assert_close(delta, p.detach() - before[k], rtol=1e-4, atol=1e-6)
    for k in ps:  # the combination stepped exactly as the standalone optimizers
        assert torch.equal(ps[k], ref[k]), k
    recs = mon.step()
    assert [(r.group, r.lr) for r in recs] == [(0, 0.02), (1, 3e-3), (2, 3e-3)]
    row = recs[0].row()  # the Muon group: its two matrices' adjusted rates
    assert (row["min"], row["max"]) == pytest.approx((0.02, 0.02 * math.sqrt(2.0)), rel=1e-6)
    assert advice(opt) == advice(ref_muon) + advice(ref_adamw) == advice(ref_muon)
    other = torch.nn.Parameter(torch.ones(2))
    assert len(advice(CombinedOptimizer(torch.optim.Rprop([other]), ref_muon))) == 2
