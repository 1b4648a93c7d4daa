"""The per-layer picture of a study (run file ``layers``, the report's heat maps) and the
study's extra optimizers (schedule-free AdamW, Prodigy, torch's adaptive ones)."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from lrkit.study import run_one
from lrkit.study.config import RunConfig, ScheduleChoice, make_optimizer
from lrkit.study.layers import layer_stride
from lrkit.study.record import RunResult, load_run
from lrkit.study.report import write_report
from lrkit.study.runner import task_info
from lrkit.tasks.base import check_run
from lrkit.tasks.digits import Digits

from ._util import png_size


def _cfg(opt: str, steps: int, spec: str = "constant", lr: float | None = None) -> RunConfig:
    from lrkit.study.config import OPTIMIZERS

    return RunConfig(ScheduleChoice("s", spec), opt, lr or OPTIMIZERS[opt][0], 0, steps)


def test_run_file_carries_layers_sgd_first_step(tmp_path: Path) -> None:
    task = Digits(epochs=2)
    r = run_one(task, _cfg("sgd", 40))
    lay = r.layers
    assert lay is not None
    assert layer_stride(40) == 2 == lay["every"]
    assert lay["steps"] == [1, *range(2, 41, 2)]
    # independently: SGD's first step is -lr (g + wd p) (momentum buffer = that gradient)
    torch.manual_seed(0)
    run = check_run(task.build(0), task.name)
    names = [n for n, _ in run.model.named_parameters()]
    assert lay["names"] == names
    run.loss(run.batch(0)).backward()
    for j, (_, p) in enumerate(run.model.named_parameters()):
        assert p.grad is not None
        d = 0.05 * (p.grad + 5e-4 * p.detach())
        want = math.log10(float(d.pow(2).mean().sqrt() / p.detach().pow(2).mean().sqrt()))
        assert lay["fields"]["log10_update_to_weight"][0][j] == pytest.approx(want, abs=0.01)
        cos = lay["fields"]["update_grad_cosine"][0][j]
        assert -1.0 <= cos < -0.99
        assert lay["fields"]["p50"][0][j] == pytest.approx(0.05, rel=1e-3)  # SGD: lr itself
    back = RunResult.from_dict(load_run(r.write(tmp_path)))
    assert back.layers == lay


def test_schedulefree_rates_and_eval_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    import schedulefree

    calls: list[str] = []
    for mode in ("train", "eval"):
        orig = getattr(schedulefree.AdamWScheduleFree, mode)

        def spy(self: Any, _orig: Any = orig, _mode: str = mode) -> Any:
            calls.append(_mode)
            return _orig(self)

        monkeypatch.setattr(schedulefree.AdamWScheduleFree, mode, spy)
    task = Digits(epochs=1)
    n = 20
    r = run_one(task, _cfg("schedulefree", n, f"cosine over {n}", lr=2e-3))
    assert r.status == "finished", r.error
    t = np.arange(n)
    np.testing.assert_allclose(r.lr, 2e-3 * 0.5 * (1 + np.cos(np.pi * t / n)), rtol=1e-12)
    evals = len(r.evals["step"])
    assert evals >= 1
    assert calls == ["train"] + ["eval", "train"] * evals  # eval mode around each evaluation
    assert r.layers is not None
    assert len(r.layers["steps"]) == n


def test_prodigy_rate_is_schedule_times_one() -> None:
    task = Digits(epochs=1)
    n = 12
    r = run_one(task, _cfg("prodigy", n, f"cosine over {n}"))
    assert r.status == "finished", r.error
    np.testing.assert_allclose(r.lr, 0.5 * (1 + np.cos(np.pi * np.arange(n) / n)), rtol=1e-12)
    assert r.config.lr == 1.0
    assert r.layers is not None
    assert math.isfinite(r.layers["fields"]["p50"][-1][0])


@pytest.mark.parametrize(("name", "cls"), [("rmsprop", torch.optim.RMSprop),
                                      ("adagrad", torch.optim.Adagrad),
                                      ("nadam", torch.optim.NAdam),
                                      ("radam", torch.optim.RAdam),
                                      ("adafactor", torch.optim.Adafactor)])
def test_torch_optimizers(name: str, cls: type) -> None:
    p = torch.nn.Parameter(torch.ones(3))
    opt = make_optimizer(name, [p], lr=0.02, weight_decay=0.0)
    assert type(opt) is cls
    assert opt.param_groups[0]["lr"] == 0.02


def test_missing_package_exit_2(monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from lrkit.cli import main

    monkeypatch.setitem(sys.modules, "prodigyopt", None)  # import fails as if not installed
    code = main(["compare", "--optimizers", "adamw,prodigy", "--epochs", "1", "--seeds", "0",
                 "-o", str(tmp_path / "out"), "-q"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert "pip install prodigyopt" in err
    assert "'prodigy'" in err
    assert not (tmp_path / "out").exists()


def test_report_heatmap_and_advice(tmp_path: Path) -> None:
    task = Digits(epochs=1)
    runs = [run_one(task, _cfg(o, 12)) for o in ("adamw", "schedulefree")]
    info = task_info(task)
    out = write_report(tmp_path, runs, task=info, study={"seeds": [0]})
    html = out.read_text()
    assert "<h2>Per-layer update sizes</h2>" in html
    for o in ("adamw", "schedulefree"):
        w, h = png_size(tmp_path / f"layers_{o}.png")
        assert w > 300
        assert h > 150
    # the advice sits under schedulefree's verdict, none for adamw
    verdict = html.index('<p class="verdict">schedulefree')
    note = html.index('<p class="advice"><b>schedulefree</b>')
    assert verdict < note < html.index("<h2>Results</h2>")
    assert html.count('class="advice"') == 1
