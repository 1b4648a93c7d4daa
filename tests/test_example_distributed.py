"""examples/distributed_train.py: the same rates with 1 and 2 processes (torchrun, gloo)."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

from _procs import run_cmd

EXAMPLE = Path(__file__).parents[1] / "examples" / "distributed_train.py"
DIST_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def _run(cmd: list[str], cwd: Path) -> list[tuple[int, float]]:
    env = {k: v for k, v in os.environ.items() if k not in DIST_VARS}
    env["PYTHONWARNINGS"] = "ignore"
    r = run_cmd(cmd, cwd=cwd, env=env, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = re.findall(r"epoch \d+: val loss [0-9.]+, step (\d+), lr ([0-9.]+)", r.stdout)
    return [(int(s), float(lr)) for s, lr in rows]


@pytest.mark.slow
def test_example_gives_the_same_schedule_on_one_and_two_processes(tmp_path: Path) -> None:
    args = [str(EXAMPLE), "--epochs", "2"]
    one = _run([sys.executable, *args], tmp_path)
    two = _run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                "--nproc_per_node=2", *args, "--accumulate", "2", "--amp"], tmp_path)
    assert len(one) == 2  # only rank 0 prints
    assert one == two
    assert [s for s, _ in one] == [28, 56]  # (2048 - 256) samples / 64 per update
