"""``lrkit compare --predict``: the report's predicted-against-measured section.

The numbers of the section are checked against lrkit.laws used directly on the run files the
study wrote (fit on the named schedules' seed-averaged runs, predict the held-out one), and
the measured final loss and seed spread against plain numpy on the same files.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np
import pytest

from lrkit.cli import main
from lrkit.cli._common import UsageError
from lrkit.cli.compare_cmd import _check_predict
from lrkit.laws import fit, predict
from lrkit.laws.io import average_seeds, load_law, read_run_file
from lrkit.study.prediction import BOOTSTRAP, predicted_vs_measured
from lrkit.study.record import RunResult

STUDY = ["--schedules", "constant,cosine-warmup,setr", "--optimizers", "sgd", "--steps", "30",
         "--seeds", "0,1", "--workers", "1"]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("predict") / "rep"
    # in this process: the same code path as the command line without a second interpreter
    assert main(["compare", *STUDY, "--predict", "constant,cosine-warmup", "-o", str(out),
                 "-q"]) == 0
    return out


def _tail_mean(losses: np.ndarray, n: int) -> float:
    """Mean of the training losses logged after the last 5 % of the n updates."""
    k = max(1, round(0.05 * n))
    steps = np.arange(losses.size)
    sel = (steps >= 1) & (steps > n - k)
    return float(losses[sel].mean())


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::lrkit.laws.fit.LawWarning")
def test_section_numbers_equal_lrkit_laws_on_the_run_files(report: Path) -> None:
    files = sorted((report / "runs").glob("*.json"))
    by_name: dict[str, list[Path]] = {}
    for f in files:
        by_name.setdefault(json.loads(f.read_text())["schedule"]["name"], []).append(f)
    assert sorted(by_name) == ["constant", "cosine-warmup", "setr"]

    def runs(name: str) -> list:  # type: ignore[type-arg]
        return [r for f in by_name[name] for r in read_run_file(f)]

    law = fit(average_seeds(runs("constant") + runs("cosine-warmup")), "multi-power",
              bootstrap=BOOTSTRAP)
    (held,) = average_seeds(runs("setr"))
    p = predict(law, held.rates, held.n, at=held.steps)
    k = max(1, round(0.05 * held.n))
    sel = held.steps > held.n - k
    predicted = float(np.mean(p.loss[sel]))

    seeds = [np.asarray(json.loads(f.read_text())["updates"]["train_loss"])
             for f in by_name["setr"]]
    finals = [_tail_mean(s, held.n) for s in seeds]
    measured = float(np.exp(np.mean(np.log(seeds), axis=0))[1:][sel].mean())
    spread = (max(finals) - min(finals)) / np.mean(finals)

    (res,) = json.loads((report / "prediction.json").read_text())
    assert res["error"] is None
    assert res["fitted_on"] == ["constant", "cosine-warmup"]
    (row,) = res["held_out"]
    assert row["schedule"] == "setr"
    assert row["seeds"] == 2
    assert row["updates"] == 30
    assert row["predicted_final"] == pytest.approx(predicted, rel=1e-9)
    assert row["measured_final"] == pytest.approx(measured, rel=1e-9)
    assert row["final_error"] == pytest.approx(predicted / measured - 1, rel=1e-9)
    assert row["seed_spread"] == pytest.approx(spread, rel=1e-9)
    after = np.isfinite(p.loss)
    curve = np.mean(np.abs(p.loss[after] / held.losses[after] - 1))
    assert row["curve_error"] == pytest.approx(curve, rel=1e-9)

    saved = load_law(report / "law.json")
    assert saved.params == pytest.approx(law.params, rel=1e-9)

    html = (report / "report.html").read_text()
    section = html.split("<h2>Predicted against measured</h2>", 1)[1].split("<h2>", 1)[0]
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", section)
    assert cells[:9] == ["setr", "2", "30", f"{predicted:.4f}", f"{measured:.4f}",
                         f"{100 * (predicted / measured - 1):+.2f}", f"{100 * curve:.2f}",
                         f"{row['r2']:.3f}", f"{100 * spread:.2f}"]
    assert 'src="prediction.png"' in section
    assert 'href="law.json"' in section
    assert (report / "prediction.png").stat().st_size > 0


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::lrkit.laws.fit.LawWarning")
def test_more_schedules_than_needed_choose_the_first_step(report: Path, tmp_path: Path) -> None:
    runs = [RunResult.from_dict(json.loads(f.read_text()))
            for f in sorted((report / "runs").glob("*.json"))]
    names = ["constant", "cosine-warmup", "setr"]  # three schedules: one more than needed
    predicted_vs_measured(tmp_path, runs, names)
    law = load_law(tmp_path / "law.json")

    def avg(name: str) -> list:  # type: ignore[type-arg]
        files = [f for f in sorted((report / "runs").glob("*.json"))
                 if json.loads(f.read_text())["schedule"]["name"] == name]
        return average_seeds([r for f in files for r in read_run_file(f)])

    want = fit([r for n in names for r in avg(n)], "multi-power", bootstrap=BOOTSTRAP,
               start="auto")
    assert law.options["start_scores"] == want.options["start_scores"]
    assert law.options["start"] == want.options["start"]
    assert law.params == pytest.approx(want.params, rel=1e-9)


@pytest.mark.slow
def test_a_fit_that_fails_says_why_and_gives_no_number(
        report: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = [RunResult.from_dict(json.loads(f.read_text()))
            for f in sorted((report / "runs").glob("*.json"))]
    title, body = predicted_vs_measured(tmp_path, runs, ["constant"])  # one schedule: too few
    assert title == "Predicted against measured"
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("lrkit compare: prediction: sgd: no law fitted on constant: ")
    assert "at least 2 runs" in err[0]
    assert "<table>" not in body
    assert 'class="failed"' in body
    assert not (tmp_path / "law.json").exists()
    (res,) = json.loads((tmp_path / "prediction.json").read_text())
    assert res["held_out"] == []
    assert res["params"] is None
    assert "at least 2 runs" in res["error"]


@pytest.mark.slow
def test_a_bad_predict_name_exits_2_before_training(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["compare", "--schedules", "constant,setr", "--optimizers", "sgd", "--seeds",
                 "0", "--predict", "constant,cosin", "-o", str(tmp_path / "rep"), "-q"])
    assert code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "lrkit compare: error: --predict 'constant,cosin': 'cosin' is not a schedule of this "
        "study; expected names among constant, setr"]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("predict", "law", "needle"), [
    (["constant", "setr"], None, "names every schedule of the study, so nothing is left to "
     "predict"),
    ([], None, "--predict '': give the schedules to fit on, among constant, setr"),
    (None, "annealing", "--law needs --predict NAMES"),
])
def test_predict_options_checked(predict: list[str] | None, law: str | None,
                                 needle: str) -> None:
    args = argparse.Namespace(predict=predict, law=law)
    with pytest.raises(UsageError, match=re.escape(needle)):
        _check_predict(args, ["constant", "setr", "constant"])
    _check_predict(argparse.Namespace(predict=["setr"], law=law), ["constant", "setr"])
