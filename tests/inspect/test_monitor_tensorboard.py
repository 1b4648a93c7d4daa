"""The Monitor's TensorBoard and CSV writers, read back (EventAccumulator, csv module)."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest
import torch

from lrkit import Linear, Rel
from lrkit.inspect import Monitor
from lrkit.torch import LRScheduler

event_accumulator = pytest.importorskip(
    "tensorboard.backend.event_processing.event_accumulator")  # CI installs tensorboard


def _train(mon_kw: dict[str, object], steps: int = 7) -> tuple[Monitor, list[float]]:
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    sched = LRScheduler(opt, Linear(10, end=Rel(0.1)))
    mon = Monitor(opt, every=2, flush_every=2, **mon_kw)  # type: ignore[arg-type]
    used = []
    for _ in range(steps):
        model(torch.randn(4, 3)).square().mean().backward()
        used.append(opt.param_groups[0]["lr"])
        opt.step()
        mon.step()
        sched.step()
        opt.zero_grad()
    mon.close()
    return mon, used


def test_tensorboard_scalars_read_back(tmp_path: Path) -> None:
    mon, used = _train({"tensorboard_dir": tmp_path, "csv_path": tmp_path / "m.csv"})
    acc = event_accumulator.EventAccumulator(str(tmp_path))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"lr/0/lr", "lr/0/p50", "lr/0/mean", "lr/0/max", "lr/0/update_rms"} <= tags
    lr = acc.Scalars("lr/0/lr")
    assert [e.step for e in lr] == [1, 2, 4, 6]  # first step, then every 2nd
    assert [e.value for e in lr] == pytest.approx([used[s - 1] for s in (1, 2, 4, 6)], rel=1e-6)
    p50 = {e.step: e.value for e in acc.Scalars("lr/0/p50")}
    for rec in mon.history:
        assert p50[rec.step] == pytest.approx(rec.summary.quantile(0.5), rel=1e-6)
    rows = list(csv.DictReader((tmp_path / "m.csv").open()))
    assert [int(r["step"]) for r in rows] == [1, 2, 4, 6]
    assert [float(r["lr"]) for r in rows] == [used[s - 1] for s in (1, 2, 4, 6)]


def test_tensorboard_missing_is_a_clear_error(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    p = torch.nn.Parameter(torch.ones(2))
    opt = torch.optim.Adam([p])
    mon = Monitor(opt, every=1, tensorboard_dir=tmp_path, flush_every=1)
    p.grad = torch.ones(2)
    opt.step()
    with pytest.raises(ImportError, match=r"lrkit\[tensorboard\]"):
        mon.step()


def test_per_layer_scalars_and_layout(tmp_path: Path) -> None:
    """Per named parameter: the per-layer fields as scalars, and the custom-scalars layout."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    opt = torch.optim.AdamW(model.parameters(), lr=0.01)
    mon = Monitor(opt, every=1, per_param=True, named_parameters=model.named_parameters(),
                  tensorboard_dir=tmp_path, flush_every=1).attach()
    for _ in range(3):
        model(torch.randn(5, 3)).square().mean().backward()
        opt.step()
        opt.zero_grad()
    mon.close()
    acc = event_accumulator.EventAccumulator(str(tmp_path))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    for name in ("0.weight", "1.bias"):
        for field in ("log10_update_to_weight", "p50", "p90", "update_grad_cosine"):
            assert f"lr/{name}/{field}" in tags
    rec = next(r for r in mon.history if r.group == "0.weight" and r.step == 3)
    got = {e.step: e.value for e in acc.Scalars("lr/0.weight/log10_update_to_weight")}
    assert got[3] == pytest.approx(rec.summary.log10_update_to_weight, rel=1e-6)
    from tensorboard.plugins.custom_scalar import layout_pb2, metadata

    assert metadata.CONFIG_SUMMARY_TAG in acc.Tags()["tensors"]
    raw = acc.Tensors(metadata.CONFIG_SUMMARY_TAG)[0].tensor_proto.string_val[0]
    layout = layout_pb2.Layout.FromString(raw)
    titles = {c.title: [ch.title for ch in c.chart] for c in layout.category}
    assert "lrkit per layer" in titles
    assert any("log10" in t for t in titles["lrkit per layer"])
