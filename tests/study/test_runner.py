"""One run: the rates applied, Segmenter's class, the band, determinism, the callback-style
task, a task that raises, and the run file."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from lrkit.errors import ConfigError, SpecError
from lrkit.study import load_run, run_one
from lrkit.study.api import plan_runs
from lrkit.study.config import PRESETS, RunConfig, ScheduleChoice, default_schedules
from lrkit.study.record import RunResult
from lrkit.tasks.digits import Digits

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def example() -> Any:
    sys.path.insert(0, str(ROOT))
    try:
        import examples.my_task as mod
    finally:
        sys.path.remove(str(ROOT))
    return mod


def _one(task: Any, schedule: str | None = None, spec: str | None = None, opt: str = "sgd",
         seed: int = 0, lr: float | None = None) -> RunConfig:
    return plan_runs(task, schedules=[schedule] if schedule else None,
                     specs=[spec] if spec else (), optimizers=[opt], seeds=[seed],
                     lrs={opt: lr} if lr else None)[0]


def test_presets() -> None:
    assert len(PRESETS) == 8
    assert [c.name for c in default_schedules(Digits(epochs=10))] == list(PRESETS)


def test_segmenter_class_drives_the_rate() -> None:
    task = Digits(epochs=2)
    r = run_one(task, _one(task, "segmenter", lr=0.05))
    t = np.arange(task.steps)
    want = 1e-5 + (0.05 - 1e-5) * (1 - t / task.steps) ** 0.9  # Segmenter: poly 0.9, min 1e-5
    want[0] = 0.05
    np.testing.assert_allclose(r.lr, want, rtol=1e-12)
    assert r.band is None
    assert r.evals["step"] == [23.0, 46.0]
    assert len(r.evals["val_acc"]) == 2


def test_custom_spec_band_and_evals() -> None:
    task = Digits(epochs=1)
    r = run_one(task, _one(task, spec="lin=linear(start=1x, end=0.5x)", opt="adamw", seed=3,
                           lr=0.002))
    assert r.config.schedule.name == "lin"
    t = np.arange(task.steps)
    np.testing.assert_allclose(r.lr, 0.002 * (1 - 0.5 * t / task.steps), rtol=1e-12)
    assert r.band is not None
    assert len(r.band["median"]) == task.steps
    assert all(lo <= m <= hi for lo, m, hi in zip(r.band["low"], r.band["median"],
                                                   r.band["high"], strict=True))
    assert r.evals["mean_train_loss"] == [pytest.approx(float(np.mean(r.train_loss)))]
    assert r.final == {k: v[-1] for k, v in r.evals.items() if k != "step"}


def test_runs_repeat_exactly_and_seeds_differ() -> None:
    task = Digits(epochs=1)
    a = run_one(task, _one(task, "onecycle", opt="adamw", seed=7)).to_dict()
    b = run_one(task, _one(task, "onecycle", opt="adamw", seed=7)).to_dict()
    a.pop("wall_time_s")
    b.pop("wall_time_s")
    assert a == b
    c = run_one(task, _one(task, "onecycle", opt="adamw", seed=8))
    assert c.train_loss != a["updates"]["train_loss"]


def test_callback_style_task_equals_the_batch_loss_task(example: Any) -> None:
    plain, own = example.make(hidden=8, steps=30), example.make_own_loop(hidden=8, steps=30)
    for name in ("plateau", "segmenter"):
        cfg = _one(plain, name, opt="adamw")
        a, b = run_one(plain, cfg), run_one(own, cfg)
        assert b.status == "finished"
        assert (a.lr, a.train_loss, a.evals, a.band) == (b.lr, b.train_loss, b.evals, b.band)
    assert len(a.lr) == 30
    assert a.evals["step"] == [float(s) for s in range(3, 31, 3)]


class _Flaky:
    """A task whose run raises at update ``at`` (a bug in the user's code)."""

    name, metric, higher_is_better, steps, eval_every = "flaky", "val", False, 10, 5

    def __init__(self, at: int) -> None:
        self.at = at

    def describe(self) -> dict[str, Any]:
        return {}

    def build(self, seed: int) -> Any:
        at = self.at
        model = torch.nn.Linear(2, 1)

        class Run:
            def __init__(self) -> None:
                self.model = model

            def param_groups(self) -> Any:
                return model.parameters()

            def batch(self, step: int) -> Any:
                if step == at:
                    raise RuntimeError(f"bad shard at step {step}\nsecond line")
                return torch.ones(4, 2)

            def loss(self, x: Any) -> torch.Tensor:
                return model(x).pow(2).mean()

            def evaluate(self) -> dict[str, float]:
                return {"val": float(model.weight.sum())}

        return Run()


def test_a_task_that_raises_fails_its_run_with_one_line() -> None:
    task = _Flaky(at=7)
    r = run_one(task, _one(task, "constant"))
    assert r.status == "failed"
    assert r.error == "RuntimeError: bad shard at step 7"
    assert len(r.lr) == 7  # what ran is kept
    assert r.evals["step"] == [5.0]
    assert math.isnan(r.value("val"))


def test_diverged_run_stops_at_the_first_nonfinite_loss() -> None:
    task = Digits(epochs=1)
    r = run_one(task, _one(task, "constant", lr=1e6))
    assert r.status == "diverged"
    assert not math.isfinite(r.train_loss[-1])
    assert all(math.isfinite(x) for x in r.train_loss[:-1])
    assert len(r.lr) < task.steps


def test_run_file_round_trip(tmp_path: Path) -> None:
    task = Digits(epochs=1)
    r = run_one(task, _one(task, "step", opt="adamw"), run_id="r000-step-adamw-s0")
    path = r.write(tmp_path)
    d = load_run(path)
    assert d["format"] == "lrkit.run"
    assert d["updates"]["lr"] == r.lr
    assert d["task"]["metric"] == "val_loss"
    assert d["evals"]["step"][-1] == len(d["updates"]["lr"]) == d["steps"]
    assert RunResult.from_dict(json.loads(path.read_text())).to_dict() == r.to_dict()
    path.write_text('{"format": "other"}')
    with pytest.raises(ConfigError, match="run file="):
        load_run(path)


def test_bad_choices() -> None:
    task = Digits(epochs=1)
    with pytest.raises(ConfigError, match="schedule='nope'"):
        plan_runs(task, schedules=["nope"])
    with pytest.raises(SpecError):
        plan_runs(task, specs=["x=poly(power=-1)"])
    with pytest.raises(ConfigError, match="used twice"):
        plan_runs(task, schedules=["setr"], specs=["setr=constant"])
    with pytest.raises(ConfigError, match="optimizer='lion'"):
        plan_runs(task, optimizers=["lion"])
    with pytest.raises(ConfigError, match="repeated"):
        plan_runs(task, seeds=[1, 1])
    assert RunConfig(ScheduleChoice("c", "constant"), "sgd", 0.1, 0, 5).label == \
        "c / sgd / seed 0"
