"""Checkpoints of a run: atomic files, weights_only loads, resume equals the uninterrupted run."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lrkit.errors import StateError
from lrkit.study.api import plan_runs
from lrkit.study.checkpoint import (
    FORMAT,
    VERSION,
    Checkpointing,
    load_checkpoint,
    remove_stale,
    run_file,
    save_atomic,
)
from lrkit.study.runner import run_one
from lrkit.tasks.digits import Digits


class Stop(Exception):
    pass


def _numbers(r: Any) -> dict[str, Any]:
    d: dict[str, Any] = r.to_dict()
    d.pop("wall_time_s")
    return d


def _stop_after(n: int) -> Any:
    count = [0]

    def on_step(updates: int, steps: int) -> None:
        count[0] += 1
        if count[0] == n:
            raise Stop

    return on_step


@pytest.mark.parametrize(("name", "optimizer"), [("plateau", "adamw"), ("segmenter", "sgd"),
                                               ("cosine-warmup", "muon")])
def test_interrupted_and_resumed_equals_uninterrupted(tmp_path: Path, name: str,
                                                      optimizer: str) -> None:
    task = Digits(epochs=3)
    cfg = plan_runs(task, schedules=[name], optimizers=[optimizer], seeds=[5],
                    lrs={optimizer: 0.01})[0]
    full = run_one(task, cfg, checkpoint=Checkpointing(tmp_path / "full.pt", every=4))
    path = tmp_path / "cut.pt"
    # stop at updates 3 (no checkpoint yet: starts over), 10, 23 (epoch end), 50
    for stop in (3, 10, 17, 27):
        with pytest.raises(Stop):
            run_one(task, cfg, checkpoint=Checkpointing(path, 4, resume=True),
                    on_step=_stop_after(stop))
        if path.exists():
            assert load_checkpoint(path)["updates"] % 4 == 0
    resumed = run_one(task, cfg, checkpoint=Checkpointing(path, 4, resume=True))
    assert _numbers(resumed) == _numbers(full)
    a, b = load_checkpoint(tmp_path / "full.pt"), load_checkpoint(path)
    assert a["done"]
    assert b["done"]
    assert a["updates"] == b["updates"] == task.steps
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    # resuming a finished run returns its result without training
    again = run_one(task, cfg, checkpoint=Checkpointing(path, 4, resume=True),
                    on_step=_stop_after(1))
    assert _numbers(again) == _numbers(full)


def test_checkpoint_of_another_run_is_refused(tmp_path: Path) -> None:
    task = Digits(epochs=1)
    a, b = plan_runs(task, schedules=["setr"], optimizers=["sgd"], seeds=[0, 1])
    path = tmp_path / "c.pt"
    with pytest.raises(Stop):
        run_one(task, a, checkpoint=Checkpointing(path, 2), on_step=_stop_after(5))
    with pytest.raises(StateError, match="from another run"):
        run_one(task, b, checkpoint=Checkpointing(path, 2, resume=True))


def test_save_atomic_replaces_and_leaves_nothing_behind(tmp_path: Path) -> None:
    path = tmp_path / "x.pt"
    save_atomic({"a": torch.arange(3)}, path)
    save_atomic({"a": torch.arange(4)}, path)
    assert torch.equal(torch.load(path, weights_only=True)["a"], torch.arange(4))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.pt"]

    class Boom:
        def __reduce__(self) -> Any:
            raise RuntimeError("cannot pickle")

    with pytest.raises(RuntimeError, match="cannot pickle"):
        save_atomic({"a": Boom()}, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.pt"]  # old file intact
    assert torch.equal(torch.load(path, weights_only=True)["a"], torch.arange(4))


def test_bad_checkpoint_files_raise_state_error(tmp_path: Path) -> None:
    good = tmp_path / "g.pt"
    save_atomic({"format": FORMAT, "version": VERSION}, good)
    assert load_checkpoint(good)["version"] == VERSION
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[:40])
    with pytest.raises(StateError, match=r"checkpoint=.*is invalid"):
        load_checkpoint(cut)
    other = tmp_path / "o.pt"
    torch.save({"format": "other"}, other)
    with pytest.raises(StateError, match="written by lrkit compare"):
        load_checkpoint(other)
    torch.save({"format": FORMAT, "version": 9}, other)
    with pytest.raises(StateError, match=r"checkpoint\['version'\]=9"):
        load_checkpoint(other)

    class Evil:
        def __reduce__(self) -> Any:
            return (os.system, ("echo pwned",))

    torch.save({"format": FORMAT, "version": VERSION, "x": Evil()}, other)
    with pytest.raises(StateError):  # weights_only refuses arbitrary objects
        load_checkpoint(other)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")


def test_stale_temp_files_and_names(tmp_path: Path) -> None:
    (tmp_path / ".run000-a.pt.abc.tmp").write_bytes(b"half")
    (tmp_path / "run000-a.pt").write_bytes(b"")
    assert [p.name for p in remove_stale(tmp_path)] == [".run000-a.pt.abc.tmp"]
    import hashlib

    tag = hashlib.sha256(b"setr / sgd / seed 0").hexdigest()[:6]
    assert run_file(tmp_path, "setr / sgd / seed 0").name == f"run-setr-sgd-seed-0-{tag}.pt"
    assert run_file(tmp_path, "a b / sgd / seed 0") != run_file(tmp_path, "a-b / sgd / seed 0")
    with pytest.raises(ValueError, match="checkpoint_every=0"):
        Checkpointing(tmp_path / "x.pt", every=0)


@settings(max_examples=150, deadline=None)
@given(cut=st.integers(0, 10**6), flips=st.lists(st.tuples(st.integers(0, 10**6),
                                                           st.integers(1, 255)), max_size=4))
def test_corrupt_checkpoint_bytes_give_state_error(tmp_path_factory: pytest.TempPathFactory,
                                                   cut: int, flips: list[tuple[int, int]]) -> None:
    """Truncated or bit-flipped files: StateError or (flips in padding) the original state."""
    folder = tmp_path_factory.mktemp("corrupt")
    good = folder / "good.pt"
    state = {"format": FORMAT, "version": VERSION, "w": torch.arange(6.0),
             "result": {"lr": [0.1, 0.2]}}
    save_atomic(state, good)
    raw = bytearray(good.read_bytes())
    raw = raw[: cut % (len(raw) + 1)]
    for pos, x in flips:
        if raw:
            raw[pos % len(raw)] ^= x
    bad = folder / "bad.pt"
    bad.write_bytes(bytes(raw))
    try:
        loaded = load_checkpoint(bad)
    except StateError:
        return
    assert loaded["format"] == FORMAT  # a flip the format tolerates
