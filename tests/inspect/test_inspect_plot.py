"""The figure: a PNG that decodes, of the requested size."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytest.importorskip("matplotlib")
import matplotlib.image

from lrkit.inspect import Monitor, plot_effective_lr, plot_histograms


def _monitor() -> Monitor:
    torch.manual_seed(0)
    a = torch.nn.Parameter(torch.randn(20, 10))
    b = torch.nn.Parameter(torch.randn(10))
    opt = torch.optim.AdamW([{"params": [a]}, {"params": [b], "lr": 0.003}], lr=0.01)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.3)
    mon = Monitor(opt, every=2).attach()
    for _ in range(12):
        a.grad, b.grad = torch.randn(a.shape), torch.randn(b.shape)
        opt.step()
        sched.step()
    return mon


def test_band_png(tmp_path: Path) -> None:
    path = tmp_path / "band.png"
    fig = plot_effective_lr(_monitor(), path, figsize=(6, 4), dpi=50)
    img = matplotlib.image.imread(path)
    assert img.shape[:2] == (200, 300)
    assert len(fig.axes) == 2


def test_histogram_png(tmp_path: Path) -> None:
    path = tmp_path / "hist.png"
    plot_histograms(_monitor(), [1, 12], path, figsize=(5, 3), dpi=40)
    assert matplotlib.image.imread(path).shape[:2] == (120, 200)


def test_empty_history_is_an_error() -> None:
    opt = torch.optim.Adam([torch.nn.Parameter(torch.ones(1))])
    with pytest.raises(ValueError, match="no records"):
        plot_effective_lr(Monitor(opt))
