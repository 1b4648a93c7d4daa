"""The learning-rate range test: restoration bit for bit, suggestions, the CLI."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from lrkit.errors import ConfigError
from lrkit.study import range_test
from lrkit.study.findlr import RangeTest, spec_for, suggest
from lrkit.tasks.digits import Digits, TinyCNN, load_digits

from ._util import lrkit, png_size


def batches(x: torch.Tensor, y: torch.Tensor, size: int, gen: torch.Generator) -> Any:
    order = torch.randperm(x.shape[0], generator=gen)
    for i in range(0, x.shape[0], size):
        yield x[order[i:i + size]], y[order[i:i + size]]


def _same(a: Any, b: Any) -> bool:
    """Deep equality where tensors must match bit for bit (dtype, shape and every value)."""
    if isinstance(a, torch.Tensor):
        return (isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape
                and torch.equal(a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=False))
    return bool(a == b)


@pytest.mark.parametrize("opt_name", ["sgd", "adamw"])
def test_range_test_restores_everything_bit_for_bit(opt_name: str) -> None:
    torch.manual_seed(0)
    data = load_digits()
    model = TinyCNN()
    params = list(model.parameters())
    if opt_name == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(params, lr=0.05, momentum=0.9)
    else:
        opt = torch.optim.AdamW(params, lr=3e-3)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    gen = torch.Generator().manual_seed(1)
    for xb, yb in list(batches(data.x_train, data.y_train, 64, gen))[:3]:  # some real state
        loss = torch.nn.functional.cross_entropy(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    model.eval()
    before = (copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict()),
              copy.deepcopy(sched.state_dict()), torch.get_rng_state().clone())
    lrs_before = [g["lr"] for g in opt.param_groups]

    class Loader:
        def __iter__(self) -> Any:
            return batches(data.x_train, data.y_train, 32, torch.Generator().manual_seed(2))

    result = range_test(model, opt, Loader(), num_steps=40, start_lr=1e-5, end_lr=10.0,
                        scheduler=sched)
    assert 5 <= len(result.lrs) <= 40
    assert _same(model.state_dict(), before[0])
    assert _same(opt.state_dict(), before[1])
    assert _same(sched.state_dict(), before[2])
    assert torch.equal(torch.get_rng_state(), before[3])
    assert [g["lr"] for g in opt.param_groups] == lrs_before
    assert not model.training  # the mode is restored too
    # the optimizer's live state tensors are the restored values, not the test's
    for p in params:
        for _k, v in opt.state[p].items():
            if isinstance(v, torch.Tensor):
                assert v.data_ptr() != 0


def test_ramp_is_geometric_or_linear() -> None:
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    data = [(torch.zeros(4, 2), torch.zeros(4, dtype=torch.long))]
    r = range_test(model, opt, data, start_lr=1e-4, end_lr=1.0, num_steps=9, diverge=1e9)
    np.testing.assert_allclose(r.lrs, np.geomspace(1e-4, 1.0, 9), rtol=1e-12)
    r = range_test(model, opt, data, start_lr=0.1, end_lr=0.9, num_steps=9, ramp="linear",
                   diverge=1e9)
    np.testing.assert_allclose(r.lrs, np.linspace(0.1, 0.9, 9), rtol=1e-12)
    # smoothing: bias-corrected moving average, typed independently
    beta, avg, want = 0.9, 0.0, []
    for i, loss in enumerate(r.losses):
        avg = beta * avg + (1 - beta) * loss
        want.append(avg / (1 - beta ** (i + 1)))
    np.testing.assert_allclose(r.smoothed, want, rtol=1e-12)


def test_stops_on_divergence() -> None:
    torch.manual_seed(0)
    data = load_digits()
    model = TinyCNN()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    batches_ = [(data.x_train[:64], data.y_train[:64])]
    r = range_test(model, opt, batches_, start_lr=1e-3, end_lr=1e4, num_steps=200)
    assert r.stopped_early
    assert len(r.lrs) < 200


def test_suggestions_on_a_known_curve() -> None:
    lrs = np.geomspace(1e-5, 1.0, 101)
    x = np.log10(lrs)
    # falls fastest at 1e-3 (a tanh step), lowest at 1e-1, then explodes
    loss = 2 - np.tanh(2 * (x + 3)) + np.where(x > -1, 50 * (x + 1) ** 2, 0)
    s = suggest(lrs, loss)
    assert s["steepest"] == pytest.approx(1e-3, rel=0.13)
    assert s["min/10"] == pytest.approx(lrs[np.argmin(loss)] / 10)
    # the whole curve up to the minimum (index m) falls, so fastai's valley rule gives
    # start = m - (m + 1) = -1 and index start + int((m + 1) / 3) + int((m + 1) / 6)
    m = int(np.argmin(loss))
    assert s["valley"] == lrs[-1 + int((m + 1) / 3) + int((m + 1) / 3 / 2)]
    assert suggest([1e-3, 1e-2], [1.0, 0.5]) == {}


def test_bad_arguments() -> None:
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for kwargs, name in [({"start_lr": 0}, "start_lr"), ({"end_lr": 1e-9}, "end_lr"),
                         ({"num_steps": 2}, "num_steps"), ({"ramp": "cubic"}, "ramp"),
                         ({"smoothing": 1.0}, "smoothing"), ({"diverge": 1.0}, "diverge")]:
        with pytest.raises(ConfigError, match=name):
            range_test(model, opt, [], **kwargs)


def test_spec_for_parses_with_the_peak() -> None:
    from lrkit.spec import parse

    s = parse(spec_for(0.0042, "onecycle", 500))
    assert s(np.arange(501)).max() == pytest.approx(0.0042)
    s = parse(spec_for(0.0042, "poly", 500))
    assert s(50) == pytest.approx(0.0042)
    assert s.horizon == 500


@pytest.mark.slow
def test_find_lr_cli(tmp_path: Path) -> None:
    r = lrkit("find-lr", "--num-steps", "40", "--schedule", "poly", "--epochs", "2",
              "-o", "curve.png", "--json", "curve.json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert png_size(tmp_path / "curve.png") == (800, 450)
    obj = json.loads((tmp_path / "curve.json").read_text())
    assert set(obj["suggestions"]) == {"valley", "steepest", "min/10"}
    assert obj["spec"] in r.stdout
    assert "over 46" in obj["spec"]
    from lrkit.spec import parse

    peak = obj["suggestions"]["steepest"]
    assert parse(obj["spec"])(np.arange(47)).max() == pytest.approx(peak, rel=1e-2)
    q = lrkit("find-lr", "--num-steps", "40", "-q", "-o", "curve.png", cwd=tmp_path)
    assert q.returncode == 2
    assert "--force" in q.stderr
    # the user's task by file path: tests/cli/test_compare.py runs the README's command
    bad = lrkit("find-lr", "--task", "nowhere_xyz:make", "-q", cwd=tmp_path)
    assert bad.returncode == 2
    assert len(bad.stderr.strip().splitlines()) == 1
    assert "nowhere_xyz" in bad.stderr


def test_range_test_on_a_task_equals_the_hand_built_loop() -> None:
    """range_test(task) = range_test(model, optimizer, the task's batches, its loss)."""
    task = Digits(epochs=1)
    got = range_test(task, "sgd", num_steps=12, seed=5, start_lr=1e-3, end_lr=1.0)
    torch.manual_seed(5)
    run = task.build(5)
    opt = torch.optim.SGD(run.model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    want = range_test(run.model, opt, [run.batch(i) for i in range(12)], num_steps=12,
                      start_lr=1e-3, end_lr=1.0)
    assert got.lrs == want.lrs
    assert got.losses == want.losses
    with pytest.raises(ConfigError, match="optimizer is a name"):
        range_test(task, torch.optim.SGD(run.model.parameters(), lr=0.1))
    with pytest.raises(ConfigError, match="give an optimizer"):
        range_test(run.model, "adamw", [])


def test_range_test_plot(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    lrs = list(np.geomspace(1e-4, 1, 30))
    loss = [float(2 - np.tanh(np.log10(x) + 2)) for x in lrs]
    r = RangeTest(lrs, loss, loss, False, suggest(lrs, loss))
    ax = r.plot(tmp_path / "c.png")
    assert png_size(tmp_path / "c.png") == (800, 450)
    assert ax.get_xscale() == "log"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[:2] == ["loss", "smoothed"]
    assert any(t.startswith("steepest:") for t in labels)
    import matplotlib.pyplot as plt

    fig, own = plt.subplots()
    assert r.plot(ax=own) is own  # draws on the caller's axes
    plt.close(fig)
