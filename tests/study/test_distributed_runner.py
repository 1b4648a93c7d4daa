"""The compare runner at scale: torchrun with 2 gloo processes, gradient accumulation.

The schedule counts optimizer updates, so neither the number of processes nor the number of
micro-batches per update changes the rates; the losses agree to float rounding.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from _procs import run_cmd
from lrkit.train.checkpoint import load_checkpoint
from lrkit.train.data import load_digits
from lrkit.train.runner import RunConfig, TaskConfig, resolve_schedules, train_run

from ._util import ENV

ARGS = ["compare", "--schedules", "setr,plateau", "--optimizers", "sgd,adamw", "--epochs", "2",
        "-q"]


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_cmd(cmd, cwd=cwd, env=ENV, timeout=300)


def test_accumulation_keeps_the_schedule() -> None:
    data = load_digits()
    spe = data.steps_per_epoch(64)
    plain = TaskConfig(epochs=1, steps_per_epoch=spe)
    accum = TaskConfig(epochs=1, steps_per_epoch=spe, accumulate=3)
    choice = resolve_schedules(["onecycle"], [], plain)[0]
    a = train_run(RunConfig(choice, "sgd", 0.05, 0), plain, data)
    b = train_run(RunConfig(choice, "sgd", 0.05, 0), accum, data)
    assert len(b.lr) == spe
    assert a.lr == b.lr  # one scheduler step per update, not per micro-batch
    np.testing.assert_allclose(b.train_loss, a.train_loss, rtol=1e-4)
    with pytest.raises(ValueError, match="accumulate=0 is invalid"):
        TaskConfig(accumulate=0)


@pytest.mark.slow
def test_torchrun_two_processes_match_one(tmp_path: Path) -> None:
    one = _run([sys.executable, "-m", "lrkit", *ARGS, "-o", "one"], tmp_path)
    assert one.returncode == 0, one.stderr
    two = _run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                "--nproc_per_node=2", "-m", "lrkit", *ARGS, "-o", "two", "--accumulate", "2",
                "--checkpoint-every", "10"], tmp_path)
    assert two.returncode == 0, two.stderr
    assert two.stdout.splitlines() == [str(Path("two") / "report.html")]  # rank 0 only
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "two", "two-checkpoints"]
    a: dict[str, Any] = json.loads((tmp_path / "one" / "results.json").read_text())
    b: dict[str, Any] = json.loads((tmp_path / "two" / "results.json").read_text())
    assert a["task"]["processes"] == 1
    assert b["task"]["processes"] == 2
    assert b["task"]["accumulate"] == 2
    assert a["task"]["total_steps"] == b["task"]["total_steps"] == 46
    for ra, rb in zip(a["runs"], b["runs"], strict=True):
        assert ra["per_step"]["lr"] == rb["per_step"]["lr"]
        np.testing.assert_allclose(rb["per_step"]["train_loss"], ra["per_step"]["train_loss"],
                                   rtol=1e-3)
        np.testing.assert_allclose(rb["per_epoch"]["val_loss"], ra["per_epoch"]["val_loss"],
                                   rtol=1e-3)
    files = sorted((tmp_path / "two-checkpoints").iterdir())
    assert len(files) == 4
    for f in files:
        state = load_checkpoint(f)
        assert state["done"]
        assert state["updates"] == 46
