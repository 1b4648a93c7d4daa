"""``lrkit fit / predict / optimize`` end to end from CSV files, checking the numbers."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

import lrkit
from lrkit.cli import main
from lrkit.laws import predict, synthetic_run
from lrkit.laws.io import load_law
from lrkit.laws.optimize import final_loss

TRUE = {"L0": 3.0, "A": 0.5, "alpha": 0.5, "B": 400.0, "C": 2.0, "beta": 0.6, "gamma": 0.6}
PEAK, N = 3e-4, 2000
RUNS = {"const": "warmup(100) then const", "cos": "warmup(100) then cos",
        "wsd": f"wsd({N}, warmup_steps=100, decay_fraction=0.2)"}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("laws")
    for i, (name, spec) in enumerate(RUNS.items()):
        run = synthetic_run("multi-power", TRUE, spec, N, peak=PEAK, noise=0.002, every=5,
                            seed=i)
        losses = dict(zip(run.steps.tolist(), run.losses.tolist(), strict=True))
        with (d / f"{name}.csv").open("w") as fh:
            fh.write("step,lr,loss\n")
            for s in range(N):  # the wsd run has no lr column values: its spec gives them
                lr = "" if name == "wsd" else repr(float(run.rates[s]))
                fh.write(f"{s},{lr},{losses.get(s, '')}\n")
    assert main(["fit", *(str(d / f"{n}.csv") for n in RUNS), "--schedule",
                 f"{d / 'wsd.csv'}=wsd(decay_fraction=0.2, warmup_steps=100)",
                 "--base-lr", str(PEAK), "--bootstrap", "4", "-o", str(d / "law.json")]) == 0
    return d


def test_fit_table_and_law_json(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    law = load_law(folder / "law.json")
    for k in ("L0", "A", "alpha"):
        assert law.params[k] == pytest.approx(TRUE[k], rel=0.03)
    assert law.unit == PEAK
    assert law.warmup == 100
    assert len(law.runs) == 3
    assert {r["label"] for r in law.runs} == set(RUNS)


def test_predict_outputs(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    specs = ["warmup(100) then linear", "warmup(100) then cos(end=0.1x)"]
    assert main(["predict", str(folder / "law.json"), *specs, "--steps", str(N), "--csv",
                 str(folder / "p.csv"), "--json", str(folder / "p.json"), "--plot",
                 str(folder / "p.png")]) == 0
    out = capsys.readouterr().out
    law = load_law(folder / "law.json")
    data = json.loads((folder / "p.json").read_text())
    with (folder / "p.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    for i, spec in enumerate(specs):
        want = predict(law, spec, N, base=PEAK)
        curve = data["curves"][i]
        np.testing.assert_allclose(curve["loss"], want.loss, rtol=1e-12)
        mine = [float(r["loss"]) for r in rows if r["schedule"] == str(i)]
        np.testing.assert_allclose(mine, want.loss, rtol=1e-12)
        assert f"{want.final:.5f}" in out
        # and the law's prediction is close to the truth it was fitted from
        truth = synthetic_run("multi-power", TRUE, spec, N, peak=PEAK, every=10)
        assert curve["final"] == pytest.approx(truth.losses[-1], rel=3e-3)
    assert (folder / "p.png").stat().st_size > 1000


def test_optimize_outputs(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["optimize", str(folder / "law.json"), "--steps", str(N), "--knots", "12",
                 "--json", str(folder / "o.json")]) == 0
    res = json.loads((folder / "o.json").read_text())
    law = load_law(folder / "law.json")
    assert len(law.run_samples) == 3  # three fitted runs: one refit per left-out run
    for key in ("optimized", "best_wsd", "cosine"):
        spec = res[key]["spec"]
        r = lrkit.parse(spec)(np.arange(N, dtype=np.float64))
        assert res[key]["final_loss"] == pytest.approx(final_loss(law, r), rel=1e-9)
        worst = max([final_loss(law, r)] + [final_loss(law, r, th)
                                             for th in law.run_sample_thetas()])
        assert res[key]["worst_refit"] == pytest.approx(worst, rel=1e-9)
    # robust (the default): ranked by the worst prediction over the fit and its refits
    assert res["optimized"]["worst_refit"] <= res["best_wsd"]["worst_refit"]
    assert res["gain_vs_cosine"] == pytest.approx(
        res["cosine"]["final_loss"] - res["optimized"]["final_loss"])
    assert res["optimized"]["spec"] in capsys.readouterr().out
    assert main(["optimize", str(folder / "law.json"), "--steps", str(N), "--knots", "12",
                 "--no-robust", "--json", str(folder / "o2.json")]) == 0
    own = json.loads((folder / "o2.json").read_text())
    assert own["optimized"]["final_loss"] <= own["best_wsd"]["final_loss"]


def test_bad_inputs_write_nothing(folder: Path, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("step,lr,loss\n0,0.1,3\n2,0.1,2.9\n1,0.1,2.8\n")
    out = tmp_path / "law.json"
    assert main(["fit", str(bad), str(folder / "cos.csv"), "-o", str(out)]) == 2
    assert "not increasing" in capsys.readouterr().err
    assert not out.exists()
    assert main(["fit", str(folder / "cos.csv"), str(folder / "cos.csv"), "-o", str(out)]) == 2
    assert "same schedule" in capsys.readouterr().err
    assert not out.exists()
    foreign = tmp_path / "foreign.json"
    foreign.write_text('{"format": "something else"}')
    assert main(["predict", str(foreign), "cos", "--steps", "100", "--csv",
                 str(tmp_path / "p.csv")]) == 2
    assert "not a law.json" in capsys.readouterr().err
    assert not (tmp_path / "p.csv").exists()
    assert main(["predict", str(folder / "law.json"), "cos(", "--steps", "100", "--csv",
                 str(tmp_path / "p.csv")]) == 2
    assert not (tmp_path / "p.csv").exists()
    for args, says in (
            (["fit", str(folder / "cos.csv"), "--from-step", "-5"], "--from-step: '-5'"),
            (["fit", str(folder / "cos.csv"), "--from-step", "soon"], "--from-step: 'soon'"),
            (["predict", str(folder / "law.json"), "cos", "--steps", "100", "--base-lr", "nan"],
             "--base-lr"),
            (["optimize", str(folder / "law.json"), "--steps", "100", "--peak", "nan"],
             "peak=nan is invalid"),
            (["optimize", str(folder / "law.json"), "--steps", "100", "--peak", "-1"],
             "--peak")):
        with pytest.raises(SystemExit):
            main([*args, {"fit": "-o", "predict": "--csv"}.get(args[0], "--json"), str(out)])
        assert says in capsys.readouterr().err
        assert not out.exists()
    assert sorted(tmp_path.iterdir()) == sorted([bad, foreign])


def test_predict_against_held_out_runs(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from lrkit.laws.evaluate import held_out
    from lrkit.laws.io import read_csv

    spec = "warmup(100) then linear"
    run = synthetic_run("multi-power", TRUE, spec, N, peak=PEAK, noise=0.002, every=5, seed=7)
    with (folder / "linear.csv").open("w") as fh:
        fh.write("step,lr,loss\n")
        losses = dict(zip(run.steps.tolist(), run.losses.tolist(), strict=True))
        for s in range(N):
            fh.write(f"{s},{float(run.rates[s])!r},{losses.get(s, '')}\n")
    assert main(["predict", str(folder / "law.json"), "--against", str(folder / "linear.csv"),
                 "--json", str(folder / "h.json")]) == 0
    (row,) = json.loads((folder / "h.json").read_text())["held_out"]
    (want,) = held_out(load_law(folder / "law.json"), [read_csv(folder / "linear.csv")])
    assert row["predicted_final"] == pytest.approx(want["predicted_final"], rel=1e-12)
    # measured: the mean of the last 5 % of logged losses, computed here independently
    tail = run.losses[(run.steps > N - 100) & (run.steps < N)]  # the CSV stops at N - 1
    assert row["measured_final"] == pytest.approx(float(np.mean(tail)), rel=1e-9)
    assert abs(row["final_error"]) < 3e-3
    assert "band covers" in capsys.readouterr().out


def test_fit_only_selects_runs(folder: Path, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "law.json"
    assert main(["fit", str(folder / "cos.csv"), "--only", "nothing", "-o", str(out)]) == 2
    assert "no run label contains" in capsys.readouterr().err
    assert not out.exists()


def test_fit_from_step_auto(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "law.json"
    assert main(["fit", "synthetic:const", "synthetic:cos", "synthetic:wsd", "--bootstrap",
                 "0", "--from-step", "auto", "-o", str(out)]) == 0
    law = load_law(out)
    scores = dict(law.options["start_scores"])
    assert len(scores) == 5
    assert law.options["start"] == min(scores, key=scores.__getitem__)
    assert law.run_errors
    assert np.mean(law.run_errors) == pytest.approx(scores[law.options["start"]], rel=1e-9)
    assert "chosen by the mean left-out-run error" in capsys.readouterr().out
