"""One training run: the rates applied, Segmenter's class, the band, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from lrkit.errors import ConfigError, SpecError
from lrkit.train.data import load_digits
from lrkit.train.runner import (
    PRESETS,
    RunConfig,
    TaskConfig,
    default_schedules,
    resolve_schedules,
    train_run,
)


@pytest.fixture(scope="module")
def data():  # type: ignore[no-untyped-def]
    return load_digits()


def _task(data, epochs: int = 1) -> TaskConfig:  # type: ignore[no-untyped-def]
    return TaskConfig(epochs=epochs, steps_per_epoch=data.steps_per_epoch(64))


def test_split_and_presets(data) -> None:  # type: ignore[no-untyped-def]
    assert data.n_train == 1438
    assert data.x_val.shape == (359, 1, 8, 8)
    assert float(data.x_train.max()) == 1.0
    assert len(PRESETS) == 8
    task = _task(data, epochs=10)
    assert [c.name for c in default_schedules(task)] == list(PRESETS)


def test_segmenter_class_drives_the_rate(data) -> None:  # type: ignore[no-untyped-def]
    task = _task(data, epochs=2)
    choice = resolve_schedules(["segmenter"], [], task)[0]
    r = train_run(RunConfig(choice, "sgd", 0.05, 0), task, data)
    t = np.arange(task.total_steps)
    m = task.total_steps
    want = 1e-5 + (0.05 - 1e-5) * (1 - t / m) ** 0.9  # Segmenter: poly 0.9, min_lr 1e-5
    want[0] = 0.05
    np.testing.assert_allclose(r.lr, want, rtol=1e-12)
    assert r.band is None
    assert len(r.val_acc) == 2


def test_custom_spec_and_band(data) -> None:  # type: ignore[no-untyped-def]
    task = _task(data)
    choice = resolve_schedules(None, ["lin=linear(start=1x, end=0.5x)"], task)[0]
    assert choice.name == "lin"
    r = train_run(RunConfig(choice, "adamw", 0.002, 3), task, data)
    t = np.arange(task.total_steps)
    np.testing.assert_allclose(r.lr, 0.002 * (1 - 0.5 * t / task.total_steps), rtol=1e-12)
    assert r.band is not None
    assert len(r.band["median"]) == task.total_steps
    assert all(b > 0 for b in r.band["high"])


def test_runs_repeat_exactly(data) -> None:  # type: ignore[no-untyped-def]
    task = _task(data)
    choice = resolve_schedules(["onecycle"], [], task)[0]
    a = train_run(RunConfig(choice, "adamw", 0.003, 7), task, data).to_dict()
    b = train_run(RunConfig(choice, "adamw", 0.003, 7), task, data).to_dict()
    a.pop("wall_time_s")
    b.pop("wall_time_s")
    assert a == b
    c = train_run(RunConfig(choice, "adamw", 0.003, 8), task, data).to_dict()
    assert c["per_step"]["train_loss"] != a["per_step"]["train_loss"]


def test_bad_choices(data) -> None:  # type: ignore[no-untyped-def]
    task = _task(data)
    with pytest.raises(ConfigError, match="schedule='nope'"):
        resolve_schedules(["nope"], [], task)
    with pytest.raises(SpecError):
        resolve_schedules(None, ["x=poly(power=-1)"], task)
    with pytest.raises(ConfigError, match="used twice"):
        resolve_schedules(["setr"], ["setr=constant"], task)
