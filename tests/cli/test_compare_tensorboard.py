"""``lrkit compare --tensorboard DIR``: every run as a TensorBoard run, read back with
tensorboard's EventAccumulator and checked against results.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ._util import lrkit

event_accumulator = pytest.importorskip(
    "tensorboard.backend.event_processing.event_accumulator")  # CI installs tensorboard


@pytest.mark.slow
def test_compare_writes_tensorboard_runs(tmp_path: Path) -> None:
    r = lrkit("compare", "--schedules", "setr", "--optimizers", "sgd,adamw", "--epochs", "2",
              "--seeds", "0", "--workers", "1", "-o", "rep", "-q", "--tensorboard", "tb",
              cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    runs = json.loads((tmp_path / "rep" / "results.json").read_text())["runs"]
    dirs = sorted(p.name for p in (tmp_path / "tb").iterdir())
    assert dirs == ["setr-adamw-seed0", "setr-sgd-seed0"]
    assert [bool(run["effective_lr"]) for run in runs] == [False, True]
    for run in runs:
        acc = event_accumulator.EventAccumulator(
            str(tmp_path / "tb" / f"setr-{run['optimizer']['name']}-seed0"))
        acc.Reload()
        tags = set(acc.Tags()["scalars"])
        assert {"lr", "train/loss", "val/loss", "val/acc", "train/mean_loss"} <= tags
        if run["effective_lr"]:  # adaptive optimizers record the band
            med = [e.value for e in acc.Scalars("effective_lr/median")]
            assert med == pytest.approx(run["effective_lr"]["median"], rel=1e-6)
        else:
            assert "effective_lr/median" not in tags
        lr = acc.Scalars("lr")
        assert [e.step for e in lr] == list(range(1, len(run["updates"]["lr"]) + 1))
        # TensorBoard stores float32
        assert [e.value for e in lr] == pytest.approx(run["updates"]["lr"], rel=1e-6)
        val = acc.Scalars("val/acc")
        assert [e.value for e in val] == pytest.approx(run["evals"]["val_acc"], rel=1e-6)
        spe = len(run["updates"]["lr"]) // 2
        assert [e.step for e in val] == [spe, 2 * spe]
