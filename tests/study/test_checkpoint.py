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
from lrkit.train.checkpoint import (
    Checkpointing,
    load_checkpoint,
    remove_stale,
    run_file,
    save_atomic,
)
from lrkit.train.data import load_digits
from lrkit.train.runner import RunConfig, TaskConfig, resolve_schedules, train_run


@pytest.fixture(scope="module")
def data():  # type: ignore[no-untyped-def]
    return load_digits()


class Stop(Exception):
    pass


def _numbers(r: Any) -> dict[str, Any]:
    d: dict[str, Any] = r.to_dict()
    d.pop("wall_time_s")
    return d


def _stop_after(n: int) -> Any:
    count = [0]

    def on_step() -> None:
        count[0] += 1
        if count[0] == n:
            raise Stop

    return on_step


@pytest.mark.parametrize(("name", "optimizer"), [("plateau", "adamw"), ("segmenter", "sgd")])
def test_interrupted_and_resumed_equals_uninterrupted(data, tmp_path: Path, name: str,
                                                      optimizer: str) -> None:  # type: ignore[no-untyped-def]
    task = TaskConfig(epochs=3, steps_per_epoch=data.steps_per_epoch(64))
    choice = resolve_schedules([name], [], task)[0]
    cfg = RunConfig(choice, optimizer, 0.01, 5)
    full_ck = Checkpointing(tmp_path / "full.pt", every=4)
    full = train_run(cfg, task, data, checkpoint=full_ck)
    path = tmp_path / "cut.pt"
    # stop at updates 3 (no checkpoint yet: starts over), 10, 23 (epoch end), 50
    for stop in (3, 10, 17, 27):
        with pytest.raises(Stop):
            train_run(cfg, task, data, checkpoint=Checkpointing(path, 4, resume=True),
                      on_step=_stop_after(stop))
        if path.exists():
            assert load_checkpoint(path)["updates"] % 4 == 0
    resumed = train_run(cfg, task, data, checkpoint=Checkpointing(path, 4, resume=True))
    assert _numbers(resumed) == _numbers(full)
    a, b = load_checkpoint(tmp_path / "full.pt"), load_checkpoint(path)
    assert a["done"]
    assert b["done"]
    assert a["updates"] == b["updates"] == task.total_steps
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    # resuming a finished run returns its result without training
    again = train_run(cfg, task, data, checkpoint=Checkpointing(path, 4, resume=True),
                      on_step=_stop_after(1))
    assert _numbers(again) == _numbers(full)


def test_checkpoint_of_another_run_is_refused(data, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    task = TaskConfig(epochs=1, steps_per_epoch=data.steps_per_epoch(64))
    choice = resolve_schedules(["setr"], [], task)[0]
    path = tmp_path / "c.pt"
    with pytest.raises(Stop):
        train_run(RunConfig(choice, "sgd", 0.05, 0), task, data,
                  checkpoint=Checkpointing(path, 2), on_step=_stop_after(5))
    with pytest.raises(StateError, match="from another run"):
        train_run(RunConfig(choice, "sgd", 0.05, 1), task, data,
                  checkpoint=Checkpointing(path, 2, resume=True))


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
    save_atomic({"format": "lrkit.train.checkpoint", "version": 1}, good)
    assert load_checkpoint(good)["version"] == 1
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[:40])
    with pytest.raises(StateError, match=r"checkpoint=.*is invalid"):
        load_checkpoint(cut)
    other = tmp_path / "o.pt"
    torch.save({"format": "other"}, other)
    with pytest.raises(StateError, match="written by lrkit compare"):
        load_checkpoint(other)
    torch.save({"format": "lrkit.train.checkpoint", "version": 9}, other)
    with pytest.raises(StateError, match=r"checkpoint\['version'\]=9"):
        load_checkpoint(other)

    class Evil:
        def __reduce__(self) -> Any:
            return (os.system, ("echo pwned",))

    torch.save({"format": "lrkit.train.checkpoint", "version": 1, "x": Evil()}, other)
    with pytest.raises(StateError):  # weights_only refuses arbitrary objects
        load_checkpoint(other)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")


def test_stale_temp_files_and_names(tmp_path: Path) -> None:
    (tmp_path / ".run000-a.pt.abc.tmp").write_bytes(b"half")
    (tmp_path / "run000-a.pt").write_bytes(b"")
    assert [p.name for p in remove_stale(tmp_path)] == [".run000-a.pt.abc.tmp"]
    assert run_file(tmp_path, 3, "setr / sgd / seed 0").name == "run003-setr-sgd-seed-0.pt"
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
    state = {"format": "lrkit.train.checkpoint", "version": 1, "w": torch.arange(6.0),
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
    assert loaded["format"] == "lrkit.train.checkpoint"  # a flip the format tolerates
