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
from lrkit.study.api import plan_runs
from lrkit.study.checkpoint import load_checkpoint
from lrkit.study.runner import run_one
from lrkit.tasks.digits import Digits

from ._util import ENV

ARGS = ["compare", "--schedules", "setr,plateau", "--optimizers", "sgd,adamw", "--epochs", "2",
        "--seeds", "0", "-q"]


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_cmd(cmd, cwd=cwd, env=ENV, timeout=300)


def test_accumulation_keeps_the_schedule() -> None:
    task = Digits(epochs=1)
    plain = plan_runs(task, schedules=["onecycle"], optimizers=["sgd"], seeds=[0])[0]
    accum = plan_runs(task, schedules=["onecycle"], optimizers=["sgd"], seeds=[0],
                      accumulate=3)[0]
    a, b = run_one(task, plain), run_one(task, accum)
    assert len(b.lr) == task.steps == 23
    assert a.lr == b.lr  # one scheduler step per update, not per micro-batch
    np.testing.assert_allclose(b.train_loss, a.train_loss, rtol=1e-4)
    with pytest.raises(ValueError, match="accumulate=0 is invalid"):
        plan_runs(task, schedules=["onecycle"], optimizers=["sgd"], seeds=[0], accumulate=0)


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
    assert a["study"]["processes per run"] == 1
    assert b["study"]["processes per run"] == 2
    assert b["study"]["accumulate"] == 2
    assert a["study"]["steps per run"] == b["study"]["steps per run"] == 46
    for ra, rb in zip(a["runs"], b["runs"], strict=True):
        assert ra["updates"]["lr"] == rb["updates"]["lr"]
        np.testing.assert_allclose(rb["updates"]["train_loss"], ra["updates"]["train_loss"],
                                   rtol=1e-3)
        np.testing.assert_allclose(rb["evals"]["val_loss"], ra["evals"]["val_loss"],
                                   rtol=1e-3)
    files = sorted((tmp_path / "two-checkpoints").iterdir())
    assert len(files) == 4
    for f in files:
        state = load_checkpoint(f)
        assert state["done"]
        assert state["updates"] == 46
