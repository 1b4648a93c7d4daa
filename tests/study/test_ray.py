"""The Ray backend for real: a local Ray instance with two workers runs a study on the user's
task (examples/my_task.py), resumes the finished runs of a local study from their
checkpoints, and gives the numbers and the verdict a local study gives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ._util import lrkit, without_wall_times

pytest.importorskip("ray")  # CI installs it (scripts/test.sh); `pip install lrkit[ray]`

ROOT = Path(__file__).resolve().parents[2]
STUDY = ["compare", "--task", "examples.my_task:make", "--task-arg", "hidden=8",
         "--task-arg", "steps=20", "--schedules", "constant,onecycle", "--optimizers",
         "adamw", "-q"]


@pytest.mark.slow
def test_ray_resumes_and_matches_local_workers(tmp_path: Path) -> None:
    # 1. a local study on seeds 0,1 with checkpoints (in this process: fast)
    a = lrkit(*STUDY, "--seeds", "0,1", "--workers", "1", "--checkpoint-dir",
              str(tmp_path / "ck"), "--checkpoint-every", "10", "-o", str(tmp_path / "a"),
              cwd=ROOT)
    assert a.returncode == 0, a.stderr
    # 2. on Ray, with one more seed: seeds 0,1 come back from their checkpoints, seed 2 trains
    r = lrkit(*STUDY, "--seeds", "0,1,2", "--backend", "ray", "--workers", "2", "--resume",
              "--checkpoint-dir", str(tmp_path / "ck"), "-o", str(tmp_path / "ray"), cwd=ROOT)
    assert r.returncode == 0, r.stderr
    # 3. the same study from scratch, locally (local workers = in process: test_executors.py)
    b = lrkit(*STUDY, "--seeds", "0,1,2", "--workers", "1", "-o", str(tmp_path / "b"),
              cwd=ROOT)
    assert b.returncode == 0, b.stderr
    ra, rr, rb = (json.loads((tmp_path / x / "results.json").read_text())
                  for x in ("a", "ray", "b"))
    assert rr["study"]["backend"] == "ray"
    assert rb["study"]["backend"] == "in-process"
    old = {x["id"].split("-", 1)[1]: x for x in ra["runs"]}
    reused = [x for x in rr["runs"] if x["seed"] < 2]
    assert len(reused) == 4
    for x in reused:  # read back from the checkpoint: even the wall time is the saved one
        assert x == {**old[x["id"].split("-", 1)[1]], "id": x["id"]}
    assert without_wall_times(rr["runs"]) == without_wall_times(rb["runs"])
    assert [v["sentence"] for v in rr["verdicts"]] == [v["sentence"] for v in rb["verdicts"]]
    assert all(x["status"] == "finished" for x in rr["runs"])
