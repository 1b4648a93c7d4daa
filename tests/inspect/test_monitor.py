"""The monitor: history, base rate as used by each step, CSV contents, snapshot updates."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from lrkit.inspect import Monitor


def _model() -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
    x = torch.randn(64, 8, generator=gen)
    return model, x, x.sum(1, keepdim=True)


def _train(mon: Monitor, opt: torch.optim.Optimizer, model: torch.nn.Module, x: torch.Tensor,
           y: torch.Tensor, steps: int, sched: torch.optim.lr_scheduler.LRScheduler,
           manual: bool) -> list[float]:
    used = []
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        used.append(opt.param_groups[0]["lr"])
        opt.step()
        if manual:
            mon.step()
        sched.step()
    return used


@pytest.mark.parametrize("manual", [True, False])
def test_history_records_lr_used(manual: bool) -> None:
    model, x, y = _model()
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    mon = Monitor(opt, every=3)
    if not manual:
        mon.attach()
    used = _train(mon, opt, model, x, y, 10, sched, manual)
    assert [r.step for r in mon.history] == [1, 3, 6, 9]
    assert [r.lr for r in mon.history] == [used[s - 1] for s in (1, 3, 6, 9)]
    for r in mon.history:
        assert r.summary.quantile(0.5) < 10 * r.lr
        assert r.summary.update_rms is not None
    mon.close()


def test_csv_rows(tmp_path: Path) -> None:
    model, x, y = _model()
    opt = torch.optim.RMSprop(model.parameters(), lr=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 / (1 + s))
    path = tmp_path / "lr.csv"
    mon = Monitor(opt, every=2, csv_path=path, flush_every=3).attach()
    used = _train(mon, opt, model, x, y, 6, sched, manual=False)
    mon.close()
    rows = list(csv.DictReader(path.open()))
    assert [int(r["step"]) for r in rows] == [1, 2, 4, 6]
    assert [float(r["lr"]) for r in rows] == pytest.approx([used[s - 1] for s in (1, 2, 4, 6)])
    for r, rec in zip(rows, mon.history, strict=True):
        assert float(r["p50"]) == pytest.approx(rec.summary.quantile(0.5))
        assert float(r["p10"]) <= float(r["p50"]) <= float(r["p90"])


def test_snapshot_update_is_exact() -> None:
    model, x, y = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    mon = Monitor(opt, every=1, updates="snapshot").attach()
    before = [p.detach().clone() for p in model.parameters()]
    opt.zero_grad()
    torch.nn.functional.mse_loss(model(x), y).backward()
    opt.step()
    deltas = [p.detach() - b for p, b in zip(model.parameters(), before, strict=True)]
    sq = sum(float((d.double() ** 2).sum()) for d in deltas)
    n = sum(d.numel() for d in deltas)
    assert mon.history[0].summary.update_rms == pytest.approx((sq / n) ** 0.5, rel=1e-9)


def test_per_param_names() -> None:
    model, x, y = _model()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    mon = Monitor(opt, every=1, per_param=True, named_parameters=model.named_parameters())
    opt.zero_grad()
    torch.nn.functional.mse_loss(model(x), y).backward()
    opt.step()
    recs = mon.step()
    assert {r.group for r in recs} == {n for n, _ in model.named_parameters()}
    assert all(r.lr == 0.01 for r in recs)


def test_bad_arguments() -> None:
    opt = torch.optim.Adam([torch.nn.Parameter(torch.ones(1))])
    with pytest.raises(ValueError, match="every=0"):
        Monitor(opt, every=0)
    with pytest.raises(ValueError, match="updates='x'"):
        Monitor(opt, updates="x")


def test_quantiles_now() -> None:
    p = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.Adam([p], lr=0.1)
    p.grad = torch.tensor([1.0, 2.0, 4.0])
    opt.step()
    low, mid, high = Monitor(opt, quantiles=(0.0, 0.5, 1.0)).quantiles_now()
    assert (low, mid, high) == pytest.approx((0.025, 0.05, 0.1), rel=0.024)
