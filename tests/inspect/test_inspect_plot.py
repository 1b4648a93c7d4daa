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


def test_layer_heatmap_flags_fast_and_slow_layers(tmp_path: Path) -> None:
    """SGD with a huge rate on one layer and a tiny one on another: both flagged."""
    from lrkit.inspect import flag_layers, layer_matrix, plot_layer_heatmap

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Linear(8, 8),
                                torch.nn.Linear(8, 1))
    groups = [{"params": model[0].parameters(), "lr": 1.0},
              {"params": model[1].parameters(), "lr": 1e-2},
              {"params": model[2].parameters(), "lr": 1e-7}]
    opt = torch.optim.SGD(groups, lr=1e-3)
    mon = Monitor(opt, every=1, per_param=True, named_parameters=model.named_parameters())
    mon.attach()
    for _ in range(4):
        model(torch.randn(16, 8)).square().mean().backward()
        w_old = model[0].weight.detach().clone()
        opt.step()
        opt.zero_grad()
    steps, names, vals = layer_matrix(mon, "log10_update_to_weight")
    assert list(steps) == [1, 2, 3, 4]
    assert names == ["0.weight", "0.bias", "1.weight", "1.bias", "2.weight", "2.bias"]
    d = model[0].weight.detach() - w_old  # the last step, measured
    want = torch.log10(d.norm() / model[0].weight.detach().norm())
    assert vals[3, 0] == pytest.approx(float(want), abs=1e-6)
    flags = flag_layers(mon)
    assert "0.weight" in flags.too_fast
    assert "2.weight" in flags.too_slow
    assert "1.weight" not in flags.too_fast + flags.too_slow
    out = tmp_path / "layers.png"
    plot_layer_heatmap(mon, out)
    img = matplotlib.image.imread(out)
    assert img.ndim == 3
    assert img.shape[0] > 100
    with pytest.raises(ValueError, match="per_param=True"):
        layer_matrix([r for r in mon.history if False])
