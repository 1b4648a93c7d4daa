"""End to end: ``lrkit compare`` (report files, determinism, --force, Ctrl-C, the browser)."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ._util import ENV, lrkit, png_size, without_wall_times

TINY = ["--schedules", "setr,onecycle", "--optimizers", "sgd,adamw", "--epochs", "1"]



@pytest.fixture(scope="module")
def tiny_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("compare")
    r = lrkit("compare", *TINY, "-o", "rep", "-q", cwd=root)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(Path("rep") / "report.html")
    return root / "rep"


@pytest.mark.slow
def test_report_files(tiny_report: Path) -> None:
    for name in ("report.html", "results.json", "results.csv", "summary.csv",
                 "lr.png", "training.png", "effective_lr.png"):
        assert (tiny_report / name).is_file(), name
    for png in ("lr.png", "training.png", "effective_lr.png"):
        w, h = png_size(tiny_report / png)
        assert w > 300
        assert h > 200
    res = json.loads((tiny_report / "results.json").read_text())
    assert res["partial"] is False
    runs = res["runs"]
    assert [(r["schedule"], r["optimizer"]) for r in runs] == [
        ("setr", "sgd"), ("setr", "adamw"), ("onecycle", "sgd"), ("onecycle", "adamw")]
    spe = res["task"]["steps_per_epoch"]
    assert spe == 23
    assert res["task"]["total_steps"] == 23
    for r in runs:
        assert len(r["per_step"]["lr"]) == len(r["per_step"]["train_loss"]) == spe
        assert len(r["per_epoch"]["val_acc"]) == 1
        assert 0.1 < r["best_val_acc"] <= 1.0
        band = r["per_step"]["effective_lr"]
        assert (band is None) == (r["optimizer"] == "sgd")
        if band is not None:
            assert len(band["median"]) == spe
            assert all(lo <= m <= hi for lo, m, hi in
                       zip(band["low"], band["median"], band["high"], strict=False))
    # the rates applied are the schedule's own (SETR: poly 0.9 to an absolute 1e-4 floor)
    t = np.arange(spe)
    for r in runs[:2]:
        base = r["base_lr"]
        want = 1e-4 + (base - 1e-4) * (1 - t / spe) ** 0.9
        np.testing.assert_allclose(r["per_step"]["lr"], want, rtol=1e-12)
    # results.csv holds the same numbers, one row per run and step
    rows = list(csv.DictReader((tiny_report / "results.csv").open()))
    assert len(rows) == 4 * spe
    first = [float(x["lr"]) for x in rows[:spe]]
    assert first == runs[0]["per_step"]["lr"]
    last = rows[spe - 1]
    assert float(last["val_acc"]) == runs[0]["per_epoch"]["val_acc"][0]
    summary = list(csv.DictReader((tiny_report / "summary.csv").open()))
    assert [float(s["best_val_acc"]) for s in summary] == [r["best_val_acc"] for r in runs]
    html = (tiny_report / "report.html").read_text()
    assert '<table id="results">' in html
    assert html.count("<tr") == 5
    assert "http://" not in html
    assert "https://" not in html
    for src in re.findall(r'<img src="([^"]+)"', html):
        assert (tiny_report / src).is_file()


@pytest.mark.slow
def test_same_seed_samewithout_wall_times(tiny_report: Path, tmp_path: Path) -> None:
    r = lrkit("compare", *TINY, "-o", "again", "-q", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    a = json.loads((tiny_report / "results.json").read_text())
    b = json.loads((tmp_path / "again" / "results.json").read_text())
    assert without_wall_times(a) == without_wall_times(b)
    assert any(x["wall_time_s"] > 0 for x in a["runs"])


@pytest.mark.slow
def test_existing_report_needs_force(tmp_path: Path) -> None:
    cheap = ["compare", "--schedules", "constant", "--optimizers", "sgd", "--epochs", "1", "-q"]
    out = tmp_path / "rep"
    out.mkdir()
    (out / "keep.txt").write_text("old")
    r = lrkit(*cheap, "-o", "rep", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0
    assert "--force" in r.stderr
    assert (out / "keep.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep"]  # no stray staging folder
    r = lrkit(*cheap, "-o", "rep", "--force", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert not (out / "keep.txt").exists()
    assert (out / "report.html").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--schedules", "setr,nope"], "schedule='nope'"),
        (["--schedule", "fast=onecycle(pct_start=2)"], "pct_start"),
        (["--schedule", "polly"], "unknown schedule 'polly'"),
        (["--optimizers", "lion"], "unknown optimizer 'lion'"),
        (["--lr", "sgd=-1"], "--lr sgd"),
        (["--epochs", "0"], "epochs=0"),
        (["--seeds", "a"], "seeds"),
        (["--schedules", "constant", "-o", "file.txt/rep"], "file.txt"),
    ],
)
def test_bad_input(tmp_path: Path, args: list[str], needle: str) -> None:
    (tmp_path / "file.txt").write_text("x")
    r = lrkit("compare", *args, "-q", cwd=tmp_path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert needle in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]  # nothing written


@pytest.mark.slow
def test_ctrl_c_writes_a_partial_report(tmp_path: Path) -> None:
    # runs long enough (about 2 s each here) that the interrupt lands before the last ends
    args = ["compare", "--schedules", "constant,setr,step,onecycle", "--optimizers", "sgd",
            "--epochs", "40", "-o", "rep"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "lrkit", *args], cwd=tmp_path, env=ENV,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 240
    for line in proc.stderr:  # one line per finished run when stderr is not a terminal
        if line.startswith("[1/4]"):
            break
        assert time.monotonic() < deadline, "no run finished in time"
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "partial report" in err
    assert "Traceback" not in err
    res = json.loads((tmp_path / "rep" / "results.json").read_text())
    assert res["partial"] is True
    assert 1 <= len(res["runs"]) < 4
    assert res["runs"][0]["schedule"] == "constant"
    assert "Partial report" in (tmp_path / "rep" / "report.html").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep"]


_CHECK = """<script>
window.addEventListener("load", function () {
  var out = [];
  for (var i = 0; i < document.images.length; i++) {
    var im = document.images[i];
    out.push(im.getAttribute("src") + "=" + im.naturalWidth + "x" + im.naturalHeight);
  }
  var t = document.getElementById("results");
  var rows = t ? t.tBodies[0].rows.length : -1;
  var p = document.createElement("pre");
  p.id = "lrkit-check";
  p.textContent = "IMAGES " + out.join(" ") + " ROWS " + rows;
  document.body.appendChild(p);
});
</script>"""


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.mark.slow
def test_report_renders_in_headless_chromium(tiny_report: Path, tmp_path: Path) -> None:
    browser = _chromium()
    if browser is None:
        if os.environ.get("LRKIT_REQUIRE_BROWSER") == "1":  # set by scripts/test.sh (CI)
            pytest.fail("chromium is required (LRKIT_REQUIRE_BROWSER=1) but not installed")
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    folder = tmp_path / "rep"
    shutil.copytree(tiny_report, folder)
    page = folder / "check.html"  # the report plus a probe, next to the report's images
    page.write_text((folder / "report.html").read_text().replace("</body>", _CHECK + "</body>"))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--allow-file-access-from-files", "--virtual-time-budget=5000"]
    r = subprocess.run([browser, *flags, "--dump-dom", page.as_uri()], capture_output=True,
                       text=True, timeout=120, check=False)
    m = re.search(r"IMAGES (.*) ROWS (-?\d+)", r.stdout)
    assert m, (r.stdout[-2000:], r.stderr[-2000:])
    images = dict(item.split("=") for item in m.group(1).split())
    assert set(images) == {"lr.png", "training.png", "effective_lr.png"}
    for src, size in images.items():
        w, h = (int(v) for v in size.split("x"))
        assert (w, h) == png_size(folder / src), src  # loaded, at the file's own size
    assert int(m.group(2)) == 4
    shot = tmp_path / "shot.png"
    subprocess.run([browser, *flags, "--window-size=1200,1600", f"--screenshot={shot}",
                    (folder / "report.html").as_uri()], capture_output=True, timeout=120,
                   check=False)
    assert shot.is_file()
    assert png_size(shot) == (1200, 1600)


@pytest.mark.slow
def test_default_compare(tmp_path: Path) -> None:
    """The README's main job, with defaults (its wall time is reported, not asserted:
    timings belong in benchmarks; the README quotes the figure)."""
    r = lrkit("compare", "-o", "rep", cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "report: rep/report.html" in r.stdout
    res = json.loads((tmp_path / "rep" / "results.json").read_text())
    names = {(x["schedule"], x["optimizer"]) for x in res["runs"]}
    assert len(names) == 16
    assert {n for n, _ in names} == {"setr", "segmenter", "poly-warmup", "step",
                                     "cosine-warmup", "onecycle", "plateau", "constant"}
