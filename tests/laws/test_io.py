"""Reading runs (CSV, TensorBoard, run files) and law.json; bad files are clear errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from lrkit.laws import LawError, LawFit
from lrkit.laws.io import (
    average_seeds,
    load_law,
    read_csv,
    read_run_file,
    read_tensorboard,
    save_law,
)

SPEC = "warmup(5) then cos"


def _write(path: Path, rows: list[str], header: str = "step,lr,loss") -> Path:
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


def _rows(n: int = 40, every: int = 1, lr: bool = True) -> list[str]:
    import lrkit

    r = lrkit.parse(SPEC, total_steps=n)(np.arange(n, dtype=float), base=1e-3)
    return [f"{i},{float(r[i])!r}," + (f"{3 - i / 100}" if i % every == 0 else "")
            if lr else f"{i},,{3 - i / 100}" for i in range(n)]


def test_csv_per_update(tmp_path: Path) -> None:
    run = read_csv(_write(tmp_path / "a.csv", _rows()))
    assert run.n == 40
    assert run.steps[0] == 1  # step 0: no update yet
    assert run.steps[-1] == 39
    assert run.losses[-1] == pytest.approx(3 - 39 / 100)
    assert run.rates[10] == pytest.approx(1e-3 * (1 + math.cos(math.pi * 5 / 35)) / 2)


def test_csv_with_spec_and_no_lr(tmp_path: Path) -> None:
    run = read_csv(_write(tmp_path / "a.csv", _rows(lr=False)), spec=SPEC, base=1e-3)
    want = read_csv(_write(tmp_path / "b.csv", _rows()))
    np.testing.assert_allclose(run.rates, want.rates, rtol=1e-12)


def test_csv_logged_every_k_interpolates_rates_and_warns(tmp_path: Path) -> None:
    rows = [r for i, r in enumerate(_rows(41)) if i % 10 == 0]
    with pytest.warns(UserWarning, match="interpolated"):
        run = read_csv(_write(tmp_path / "a.csv", rows))
    assert run.n == 41
    assert list(run.steps) == [10, 20, 30, 40]


@pytest.mark.parametrize(("rows", "spec", "match"), [
    (["0,0.1,3", ",0.1,2.9", "2,0.1,2.8"], None, "missing step"),
    (["0,0.1,3", "2,0.1,2.9", "1,0.1,2.8"], None, "not increasing: 1 after 2"),
    (["0,0.1,3", "1,0.1,nan", "2,0.1,2.8"], None, "loss='nan' is invalid"),
    (["0,0.1,3", "1,0.1,-2", "2,0.1,2.8"], None, "loss='-2' is invalid"),
    ([f"{i},0.1,2.5" for i in range(20)], None, "constant"),
    (["0,0.1,3", "1,0.1,x", "2,0.1,2.8"], None, "loss='x' is not a number"),
    (["0,0.0,3", "1,0.5,2.9", "2,0.9,2.8"], "warmup(2) then const", "disagrees with the spec "
     "at step 1: lr=0.5, the spec gives 0.0005"),
])
def test_bad_csv(tmp_path: Path, rows: list[str], spec: str | None, match: str) -> None:
    with pytest.raises(LawError, match=match):
        read_csv(_write(tmp_path / "a.csv", rows), spec=spec, base=1e-3)


def test_csv_without_lr_or_spec(tmp_path: Path) -> None:
    with pytest.raises(LawError, match="no 'lr' column and no schedule spec"):
        read_csv(_write(tmp_path / "a.csv", ["0,3", "1,2"], header="step,loss"))


def test_tensorboard(tmp_path: Path) -> None:
    from torch.utils.tensorboard import SummaryWriter

    w = SummaryWriter(str(tmp_path / "tb"))
    for i in range(30):
        w.add_scalar("train/lr", 1e-3 * (1 - i / 60), i)
        w.add_scalar("train/loss", 3 - i / 50, i)
    w.close()
    run = read_tensorboard(tmp_path / "tb", "train/loss", "train/lr")
    assert run.n == 30
    assert run.rates[29] == pytest.approx(1e-3 * (1 - 29 / 60), rel=1e-6)
    assert run.losses[-1] == pytest.approx(3 - 29 / 50, rel=1e-6)
    with pytest.raises(LawError, match=r"no scalar 'loss'.*train/loss"):
        read_tensorboard(tmp_path / "tb", "loss", "train/lr")


def _run_file(i: int, seed: int, status: str = "finished") -> dict:  # type: ignore[type-arg]
    n = 20
    return {"format": "lrkit.run", "version": 1, "id": f"r{i}", "seed": seed, "steps": n,
            "status": status, "updates": {"lr": [1e-3 * (1 - k / 40) for k in range(n)],
                                          "train_loss": [3 - k / 30 + seed / 100
                                                         for k in range(n)]},
            "evals": {"step": [10, 20], "val_loss": [2.9, 2.7]}}


def test_run_files_and_seed_averaging(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"runs": [_run_file(0, 0), _run_file(1, 2)]}))
    runs = read_run_file(path)
    assert [r.seed for r in runs] == [0, 2]
    assert runs[0].steps[0] == 1
    assert runs[0].losses[0] == pytest.approx(3 - 1 / 30)
    (avg,) = average_seeds(runs)
    assert avg.losses[0] == pytest.approx(math.sqrt((3 - 1 / 30) * (3 - 1 / 30 + 0.02)))
    val = read_run_file(path, "val_loss")
    assert list(val[0].steps) == [10, 20]
    assert val[0].n == 20
    path.write_text(json.dumps(_run_file(0, 0, status="diverged")))
    with pytest.raises(LawError, match="'diverged', not finished"):
        read_run_file(path)


def test_law_json_round_trip(tmp_path: Path, mpl_fit: LawFit) -> None:
    save_law(mpl_fit, tmp_path / "law.json")
    back = load_law(tmp_path / "law.json")
    assert back.params == mpl_fit.params
    assert back.samples == mpl_fit.samples
    assert back.run_samples == mpl_fit.run_samples
    assert len(back.run_samples) == 3
    assert back.run_errors == mpl_fit.run_errors
    # a law.json from before run_errors existed: its refits count as exact
    d = json.loads((tmp_path / "law.json").read_text())
    del d["run_errors"]
    (tmp_path / "old.json").write_text(json.dumps(d))
    assert load_law(tmp_path / "old.json").run_errors == [0.0, 0.0, 0.0]
    np.testing.assert_allclose(back.theta, mpl_fit.theta, rtol=1e-15)


@pytest.mark.parametrize(("edit", "match"), [
    (lambda d: "{not json", "not valid JSON"),
    (lambda d: {**d, "format": "other"}, "not a law.json"),
    (lambda d: {**d, "version": 9}, "version 9 is not supported"),
    (lambda d: {**d, "law": "magic"}, "law='magic' is invalid"),
    (lambda d: {**d, "params": {**d["params"], "L0": "NaN"}}, "params.L0='NaN'"),
    (lambda d: {**d, "params": {"L0": 1.0}}, "params must have exactly"),
    (lambda d: {**d, "unit": -1}, "unit=-1 is invalid"),
    (lambda d: {**d, "samples": [[1.0]]}, "samples must be lists of 7"),
    (lambda d: {**d, "run_samples": [[1.0] * 6 + [math.inf]]}, "run_samples must be lists"),
    (lambda d: {**d, "run_samples": {"a": 1}}, "run_samples must be lists of 7"),
    (lambda d: {**d, "run_errors": [0.1, -0.2, 0.0]}, "run_errors must be 3 finite numbers"),
    (lambda d: {**d, "run_errors": [0.1]}, "one per run_samples entry"),
    (lambda d: {**d, "options": {**d["options"], "start": -3}}, "options.start=-3"),
    (lambda d: {**d, "options": {**d["options"], "start_scores": [[0, "x"]]}},
     "options.start_scores must be"),
    (lambda d: [1, 2], "not a law.json"),
])
def test_corrupt_or_foreign_law_json(tmp_path: Path, mpl_fit: LawFit, edit, match: str) -> None:  # type: ignore[no-untyped-def]
    save_law(mpl_fit, tmp_path / "law.json")
    d = edit(json.loads((tmp_path / "law.json").read_text()))
    (tmp_path / "law.json").write_text(d if isinstance(d, str) else json.dumps(d))
    with pytest.raises(LawError, match=match):
        load_law(tmp_path / "law.json")
