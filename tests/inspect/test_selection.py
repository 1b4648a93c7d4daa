"""Reading parameters in pieces (lrkit.inspect.selection) gives the whole-tensor results.

Each optimizer is stepped for real; its rates and last changes read piece by piece (a tiny
``CHUNK``) must equal, element for element, those read from whole tensors, and its summaries
(exact and sampled) must equal those computed without pieces, which in turn match numpy on
the whole-tensor rates and changes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import schedulefree
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lrkit.inspect import (
    Summarizer,
    effective_rates,
    iter_rates,
    last_update,
    selection,
    summarize,
)
from lrkit.inspect.effective import _direction_and_old, update_of
from lrkit.inspect.selection import parts

CUT = 100  # elements per piece in these tests: not a multiple of 64, several per parameter
BIG = 1 << 30  # no pieces

Opt = torch.optim.Optimizer
CASES: dict[str, Callable[[list[torch.nn.Parameter]], Opt]] = {
    "AdamW": lambda ps: torch.optim.AdamW(ps, lr=1e-2, weight_decay=0.1),
    "Adam-amsgrad-coupled": lambda ps: torch.optim.Adam(ps, lr=1e-2, weight_decay=0.05,
                                                        amsgrad=True),
    "NAdam": lambda ps: torch.optim.NAdam(ps, lr=1e-2, weight_decay=0.01),
    "RAdam-decoupled": lambda ps: torch.optim.RAdam(ps, lr=1e-2, weight_decay=0.1,
                                                    decoupled_weight_decay=True),
    "Adamax": lambda ps: torch.optim.Adamax(ps, lr=1e-2),
    "SGD-momentum": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9),
    "SGD-nesterov-wd": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True,
                                                  weight_decay=0.01),
    "RMSprop": lambda ps: torch.optim.RMSprop(ps, lr=1e-3),
    "Adagrad": lambda ps: torch.optim.Adagrad(ps, lr=0.1),
    "Adadelta-wd": lambda ps: torch.optim.Adadelta(ps, weight_decay=0.05),
    "Rprop": lambda ps: torch.optim.Rprop(ps, lr=1e-2),
    "Adafactor": lambda ps: torch.optim.Adafactor(ps, lr=1e-2, weight_decay=0.1),
    "Muon": lambda ps: torch.optim.Muon(ps, lr=1e-2, weight_decay=0.1),
    "AdamWScheduleFree": lambda ps: schedulefree.AdamWScheduleFree(ps, lr=1e-2),
}


def _stepped(name: str, complex_param: bool = False) -> tuple[Opt, list[torch.nn.Parameter]]:
    """The optimizer after three real steps; ``p.old`` holds each parameter before the last."""
    gen = torch.Generator().manual_seed(sum(map(ord, name)))
    shapes: list[tuple[int, ...]] = [(37, 53), (16, 40)] if name == "Muon" else [
        (37, 53), (300,), (7,)]
    ps = [torch.nn.Parameter(torch.randn(s, generator=gen)) for s in shapes]
    if complex_param:
        ps.append(torch.nn.Parameter(torch.randn(30, 20, generator=gen, dtype=torch.cfloat)))
    opt = CASES[name](ps)
    if "ScheduleFree" in name:
        opt.train()  # type: ignore[attr-defined]
    for _ in range(3):
        for p in ps:  # gradients over four decades: rates spread over many bins
            scale = 10 ** (torch.rand(p.shape, generator=gen) * 4 - 3)
            p.grad = torch.randn(p.shape, generator=gen, dtype=p.dtype) * scale
            p.old = p.detach().clone()  # type: ignore[attr-defined]
        opt.step()
    return opt, ps


@pytest.mark.parametrize("name", [*CASES, "AdamW-complex"])
def test_pieces_equal_whole_tensors(name: str) -> None:
    """Rates and derived changes, piece by piece, equal the whole tensors' element for element."""
    opt, ps = _stepped(name.removesuffix("-complex"), complex_param=name.endswith("-complex"))
    whole = {id(pr.param): pr for pr in effective_rates(opt)}
    deltas = {id(p): d for p, d in last_update(opt)}
    pieces: dict[int, list[Any]] = {}
    for pr in iter_rates(opt, chunk=CUT):
        pieces.setdefault(id(pr.param), []).append(pr)
    cut_any = False
    for p in ps:
        ref, got = whole[id(p)], pieces[id(p)]
        numel = torch.view_as_real(p).numel() if p.is_complex() else p.numel()
        assert sum(pr.share for pr in got) == numel
        whole_rule = type(opt) in (torch.optim.Muon, torch.optim.Adafactor)
        assert len(got) == (1 if whole_rule or numel <= CUT else -(-numel // CUT))
        cut_any |= len(got) > 1
        if ref.rate.dim() == 0:  # a uniform rate: the same scalar in every piece
            assert all(torch.equal(pr.rate, ref.rate) for pr in got)
        else:
            rates = torch.cat([pr.rate.reshape(-1) for pr in got])
            assert torch.equal(rates, ref.rate.reshape(-1))
        delta = torch.cat([torch.view_as_real(d) if d.is_complex() else d
                           for d in (update_of(pr).reshape(-1) for pr in got)]).reshape(-1)
        want = deltas[id(p)]
        want = torch.view_as_real(want) if want.is_complex() else want
        assert torch.equal(delta, want.reshape(-1))
        moved = p.detach() - p.old  # type: ignore[attr-defined]  # the real step's change
        moved = torch.view_as_real(moved) if moved.is_complex() else moved
        torch.testing.assert_close(delta, moved.reshape(-1), rtol=1e-4, atol=5e-6)
    assert cut_any == (name not in ("Muon", "Adafactor"))


@pytest.mark.parametrize("name", ["AdamW", "Adamax", "RAdam-decoupled", "SGD-momentum",
                                  "RMSprop", "Adagrad", "AdamW-complex"])
def test_uncoupled_shortcut_equals_general_form(name: str) -> None:
    """Without coupled decay, the change skips the general form's zero terms: same values."""
    opt, _ = _stepped(name.removesuffix("-complex"), complex_param=name.endswith("-complex"))
    for pr in iter_rates(opt, chunk=CUT):
        assert pr.coupled_decay == 0.0 or pr.grad_coef is None
        direction, p_old = _direction_and_old(pr)
        general = -(pr.rate * direction) - pr.decoupled_decay * p_old
        assert torch.equal(update_of(pr), general)


def _view(s: Any) -> dict[str, Any]:
    return {"count": s.count, "mean": s.mean, "min": s.min, "max": s.max,
            "rms": s.update_rms, "ratio": s.update_to_weight, "cos": s.update_grad_cosine,
            "counts": np.asarray(s.histogram.counts)}


def _summaries(opt: Opt, chunk: int, sample: int | None,
               monkeypatch: pytest.MonkeyPatch) -> dict[Any, dict[str, Any]]:
    monkeypatch.setattr(selection, "CHUNK", chunk)
    sums = summarize(opt, updates="derive", per_param=True, sample=sample)
    sums.update(summarize(opt, updates="derive", sample=sample))  # per group too
    return {k: _view(s) for k, s in sums.items()}


@pytest.mark.parametrize("sample", [None, 256])
@pytest.mark.parametrize("name", [*CASES, "AdamW-complex"])
def test_summaries_in_pieces_equal_whole(name: str, sample: int | None,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    opt, _ = _stepped(name.removesuffix("-complex"), complex_param=name.endswith("-complex"))
    whole = _summaries(opt, BIG, sample, monkeypatch)
    cut = _summaries(opt, CUT, sample, monkeypatch)
    assert set(cut) == set(whole)
    assert {"g0.0", "g0.1"} <= set(cut)
    for key, w in whole.items():
        c = cut[key]
        assert c["count"] == w["count"], key
        if sample is None:  # every element in the same bin, unweighted
            np.testing.assert_array_equal(c["counts"], w["counts"])
        else:  # weighted by the sample's stride: sums in another order
            np.testing.assert_allclose(c["counts"], w["counts"], rtol=1e-12)
        for k in ("mean", "min", "max", "rms", "ratio", "cos"):
            assert c[k] == pytest.approx(w[k], rel=1e-12, abs=1e-300), (key, k)


@pytest.mark.parametrize("sample", [None, 256])
@pytest.mark.parametrize("name", ["AdamW", "SGD-momentum", "Adafactor", "AdamW-complex"])
def test_device_path_equals_host_path(name: str, sample: int | None,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The device code path (whole tensors, histc, no host reads), run on CPU tensors."""
    opt, _ = _stepped(name.removesuffix("-complex"), complex_param=name.endswith("-complex"))
    host = _summaries(opt, CUT, sample, monkeypatch)
    monkeypatch.setattr(selection, "on_host", lambda t: False)
    assert all(pr.take is None or sample for pr in iter_rates(opt, chunk=CUT))
    device = _summaries(opt, CUT, sample, monkeypatch)
    assert set(device) == set(host)
    for key, h in host.items():
        d = device[key]
        assert d["count"] == h["count"]
        np.testing.assert_allclose(d["counts"], h["counts"], rtol=1e-12)
        for k in ("mean", "min", "max", "rms", "ratio", "cos"):
            assert d[k] == pytest.approx(h[k], rel=1e-12, abs=1e-300), (key, k)


@pytest.mark.parametrize("name", ["AdamW", "SGD-nesterov-wd", "RMSprop", "Adafactor",
                                  "AdamW-complex"])
def test_exact_summary_matches_numpy(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pieces' summary against numpy on the whole-tensor rates and changes."""
    opt, ps = _stepped(name.removesuffix("-complex"), complex_param=name.endswith("-complex"))
    monkeypatch.setattr(selection, "CHUNK", CUT)
    got = summarize(opt, updates="derive", per_param=True)
    rates = {id(pr.param): pr.rate for pr in effective_rates(opt)}
    deltas = {id(p): d for p, d in last_update(opt)}
    for i, p in enumerate(ps):
        s = got[f"g0.{i}"]
        real = torch.view_as_real(p.detach()) if p.is_complex() else p.detach()
        r = rates[id(p)].expand(real.shape).double().numpy().ravel()
        assert s.count == r.size
        assert s.mean == pytest.approx(r.mean(), rel=1e-12)
        assert (s.min, s.max) == (r.min(), r.max())
        bins = np.clip(np.floor((np.log10(r) + 16) * 100), 0, 1999).astype(int)
        want = np.bincount(bins, minlength=2000)
        assert np.abs(s.histogram.counts - want).sum() <= 2  # a rate on a bin edge (docs)
        d = deltas[id(p)]
        u = (torch.view_as_real(d) if d.is_complex() else d).double().numpy().ravel()
        w = real.double().numpy().ravel()
        assert s.update_rms == pytest.approx(math.sqrt((u**2).mean()), rel=1e-12)
        assert s.update_to_weight == pytest.approx(
            math.sqrt((u**2).sum() / (w**2).sum()), rel=1e-12)
        grad = p.grad
        assert grad is not None
        g = (torch.view_as_real(grad) if grad.is_complex() else grad).double().numpy().ravel()
        cos = (u @ g) / math.sqrt((u @ u) * (g @ g))
        assert s.update_grad_cosine == pytest.approx(cos, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("host", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
@pytest.mark.parametrize("chunk", [3, BIG])
def test_histogram_of_edge_values(dtype: torch.dtype, chunk: int, host: bool,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Out of range, zero, infinite, NaN and negative rates, in pieces or whole, on the host
    path or the device path: as histc on log10 (the former implementation)."""
    monkeypatch.setattr(selection, "CHUNK", chunk)
    if not host:
        monkeypatch.setattr(selection, "on_host", lambda t: False)
    vals = [0.0, 1e-30, 1e-16, 3e-16, 5e-3, 0.5, 1e4, 1e5, math.inf, math.nan, -1.0]
    if dtype == torch.float16:  # its range: 6e-8 .. 65504
        vals = [0.0, 1e-7, 5e-3, 0.5, 6e4, math.inf, math.nan, -1.0]
    r = torch.tensor(vals, dtype=dtype)
    s = Summarizer()
    s.add(r)
    res = s.result()
    lg = torch.log10(r.double()).clamp(-16, 4)  # the former implementation: histc on log10
    want = torch.histc(lg, 2000, -16, 4).numpy()
    np.testing.assert_array_equal(res.histogram.counts, want)
    assert res.histogram.counts[0] >= 1
    assert res.histogram.counts[-1] >= 2
    assert res.count == len(vals)  # NaN and negative rates are counted, not binned


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_top_of_the_range_in_the_last_bin(dtype: torch.dtype,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Rates inside the range need no clamp; 1e4 itself belongs to the last bin."""
    monkeypatch.setattr(selection, "CHUNK", 2)
    s = Summarizer()
    s.add(torch.tensor([1e-3, 1e4, 2e-3, 1e4, 9.9e3], dtype=dtype))
    counts = s.result().histogram.counts
    assert counts.size == 2000
    assert counts.sum() == 5
    assert counts[-1] == 3
    assert counts[1300] == 1
    assert counts[1330] == 1


@pytest.mark.parametrize("grad", [True, False])
def test_update_statistics_in_pieces(grad: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    gen = torch.Generator().manual_seed(1)
    u, w, g = (torch.randn(1000, generator=gen) * 10 ** torch.rand(1000, generator=gen)
               for _ in range(3))
    out = []
    for chunk in (64, 999, BIG):
        monkeypatch.setattr(selection, "CHUNK", chunk)
        s = Summarizer()
        s.add(torch.rand(1000, generator=gen) + 0.1)
        s.add_update(u, w, g if grad else None, scale=2.0)
        out.append(s.result())
    u64, w64, g64 = (x.double().numpy() for x in (u, w, g))
    for res in out:
        assert res.update_rms == pytest.approx(math.sqrt(2 * (u64 @ u64) / 2000), rel=1e-13)
        assert res.update_to_weight == pytest.approx(math.sqrt((u64 @ u64) / (w64 @ w64)),
                                                     rel=1e-13)
        if grad:
            cos = (u64 @ g64) / math.sqrt((u64 @ u64) * (g64 @ g64))
            assert res.update_grad_cosine == pytest.approx(cos, rel=1e-12)
        else:
            assert res.update_grad_cosine is None


def test_non_contiguous_parameters_are_read_whole() -> None:
    p = torch.nn.Parameter(torch.randn(53, 37).t())  # a transposed view
    assert not p.is_contiguous()
    opt = torch.optim.Adam([p], lr=1e-2)
    p.grad = torch.randn(37, 53)
    opt.step()
    (pr,) = iter_rates(opt, chunk=CUT)
    assert pr.take is None
    assert pr.share == p.numel()
    assert torch.equal(pr.rate, effective_rates(opt)[0].rate)


def test_bad_chunk_is_refused() -> None:
    p = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.SGD([p], lr=0.1)
    for bad in (0, -5, 2.5):
        with pytest.raises(ValueError, match=r"chunk=.*expected an integer >= 1"):
            list(iter_rates(opt, chunk=bad))  # type: ignore[arg-type]


@settings(max_examples=80, deadline=None)
@given(numel=st.integers(1, 5000), sample=st.one_of(st.none(), st.integers(1, 3000)),
       chunk=st.one_of(st.none(), st.integers(1, 700)))
def test_parts_cover_the_selection(numel: int, sample: int | None, chunk: int | None) -> None:
    """The pieces, in order, are the selection (all elements, or the sample's blocks)."""
    if sample is not None and numel <= max(sample, 64):
        sample = None  # iter_rates samples only larger parameters
    t = torch.arange(numel)
    whole = parts(numel, sample, None)
    assert len(whole) == 1
    (one,) = whole
    selected = t if one.take is None else one.take(t)
    got = parts(numel, sample, chunk)
    pieces = [p.take(t) if p.take is not None else t for p in got]
    assert torch.equal(torch.cat(pieces), selected)
    if chunk is not None and sample is None:
        assert all(x.numel() <= chunk for x in pieces)
    assert sum(p.share for p in got) == pytest.approx(numel, rel=1e-12)
    if sample is None:
        assert sum(p.share for p in got) == numel
