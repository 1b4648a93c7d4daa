"""SIGKILL ``lrkit compare`` at random moments, resume each time: the result is bit for bit
that of an uninterrupted run, and no checkpoint file is ever half-written."""

from __future__ import annotations

import json
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lrkit.study.checkpoint import load_checkpoint, run_file

from ._util import ENV, lrkit, without_wall_times

ARGS = ["compare", "--schedules", "plateau,onecycle", "--optimizers", "adamw", "--epochs", "2",
        "--checkpoint-every", "2", "--seeds", "0", "--workers", "1", "-q"]
KILLS = 5



def _progress(folder: Path) -> tuple[int, ...]:
    """The update count of every checkpoint present (each must load completely)."""
    out = []
    for f in sorted(folder.glob("run*.pt")):
        state = load_checkpoint(f)  # raises if half-written
        out.append(int(state["updates"]) + (1000 if state["done"] else 0))
    return tuple(out)


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_is_bitwise_identical(tmp_path: Path) -> None:
    ref = lrkit(*ARGS, "-o", "ref", cwd=tmp_path)
    assert ref.returncode == 0, ref.stderr
    rng = random.Random(1234)
    ck = tmp_path / "cut-checkpoints"
    kills, resumes, seen_tmp = 0, 0, 0
    cmd = [sys.executable, "-m", "lrkit", *ARGS, "-o", "cut"]
    deadline = time.monotonic() + 240
    while kills < KILLS:
        assert time.monotonic() < deadline, f"only {kills} kills landed"
        before = _progress(ck) if ck.exists() else ()
        extra = ["--resume"] if ck.exists() else []
        resumes += bool(extra)
        proc = subprocess.Popen([*cmd, *extra], cwd=tmp_path, env=ENV,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # wait until this process has written a new checkpoint, then kill at a random moment
        while proc.poll() is None and (not ck.exists() or _progress(ck) == before):
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.3))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=60)
        assert proc.stderr is not None
        err = proc.stderr.read().decode()
        proc.stderr.close()
        assert proc.returncode in (0, -signal.SIGKILL), err
        if proc.returncode == 0:  # finished before the kill: start over from scratch
            shutil.rmtree(tmp_path / "cut")
            shutil.rmtree(ck)
            continue
        _progress(ck)  # every checkpoint present loads
        seen_tmp += len(list(ck.glob(".*.tmp")))
    final = lrkit(*ARGS, "-o", "cut", "--resume", cwd=tmp_path)
    assert final.returncode == 0, final.stderr
    assert not list(ck.glob(".*.tmp"))  # resume removed what killed writers left
    a = json.loads((tmp_path / "ref" / "results.json").read_text())
    b = json.loads((tmp_path / "cut" / "results.json").read_text())
    # lr history, losses, band: exact
    assert without_wall_times(a["runs"]) == without_wall_times(b["runs"])
    ref_files = sorted((tmp_path / "ref-checkpoints").glob("run*.pt"))
    cut_files = sorted(ck.glob("run*.pt"))
    assert [f.name for f in ref_files] == [f.name for f in cut_files]
    assert len(cut_files) == 2
    for fa, fb in zip(ref_files, cut_files, strict=True):
        sa, sb = load_checkpoint(fa), load_checkpoint(fb)
        assert sb["done"]
        for k, v in sa["model"].items():
            assert torch.equal(v, sb["model"][k]), k
        for k in ("lr", "train_loss", "evals"):
            assert sa["result"][k] == sb["result"][k]
    print(f"kills={kills} resumes={resumes} stray temp files seen={seen_tmp}", file=sys.stderr)


def test_existing_checkpoints_need_resume_or_force(tmp_path: Path) -> None:
    ck = tmp_path / "out-checkpoints"
    ck.mkdir()
    run_file(ck, "constant / sgd / seed 0").write_bytes(b"x")
    r = lrkit("compare", "--schedules", "constant", "--optimizers", "sgd", "--epochs", "1",
              "--seeds", "0", "--checkpoint-every", "5", "-o", "out", "-q", cwd=tmp_path)
    assert r.returncode == 2
    assert "use --resume to continue it or --force" in r.stderr
    r = lrkit("compare", "--schedules", "constant", "--optimizers", "sgd", "--epochs", "1",
              "--seeds", "0", "-o", "out", "-q", "--resume", cwd=tmp_path)
    assert r.returncode != 0
    assert "checkpoint=" in r.stderr
    assert "is invalid" in r.stderr
