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

TINY = ["--schedules", "setr,onecycle", "--optimizers", "sgd,adamw", "--epochs", "1",
        "--seeds", "0,1", "--workers", "2"]
ROOT = Path(__file__).resolve().parents[2]



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
                 "metric.png", "lr.png", "training.png", "effective_lr.png"):
        assert (tiny_report / name).is_file(), name
    for png in ("metric.png", "lr.png", "training.png", "effective_lr.png"):
        w, h = png_size(tiny_report / png)
        assert 300 < w <= 1100  # shown at its own size in the page: fonts stay >= 10 px
        assert h > 200
    res = json.loads((tiny_report / "results.json").read_text())
    assert res["partial"] is False
    runs = res["runs"]
    assert [(r["schedule"]["name"], r["optimizer"]["name"], r["seed"]) for r in runs] == [
        (s, o, seed) for s in ("setr", "onecycle") for o in ("sgd", "adamw") for seed in (0, 1)]
    assert res["task"]["name"] == "digits"
    assert res["task"]["metric"] == "val_loss"
    assert res["study"]["seeds"] == [0, 1]
    assert res["study"]["workers"] == 2
    spe = 23
    for r in runs:
        assert r["steps"] == spe
        assert len(r["updates"]["lr"]) == len(r["updates"]["train_loss"]) == spe
        assert r["evals"]["step"] == [spe]
        assert 0.0 < r["final"]["val_loss"] < 3.0
        band = r["effective_lr"]
        assert (band is None) == (r["optimizer"]["name"] == "sgd")
    # the rates applied are the schedule's own (SETR: poly 0.9 to an absolute 1e-4 floor)
    t = np.arange(spe)
    for r in runs[:4]:
        base = r["optimizer"]["base_lr"]
        want = 1e-4 + (base - 1e-4) * (1 - t / spe) ** 0.9
        np.testing.assert_allclose(r["updates"]["lr"], want, rtol=1e-12)
    # one run file per run, the same objects as results.json
    files = sorted((tiny_report / "runs").glob("*.json"))
    assert [f.stem for f in files] == sorted(r["id"] for r in runs)
    assert json.loads(files[0].read_text()) == next(r for r in runs if r["id"] == files[0].stem)
    # results.csv holds the same numbers, one row per run and update
    rows = list(csv.DictReader((tiny_report / "results.csv").open()))
    assert len(rows) == 8 * spe
    assert [float(x["lr"]) for x in rows[:spe]] == runs[0]["updates"]["lr"]
    assert float(rows[spe - 1]["val_loss"]) == runs[0]["final"]["val_loss"]
    # summary: per optimizer, best first, means over the two seeds
    summary = list(csv.DictReader((tiny_report / "summary.csv").open()))
    assert len(summary) == 4
    for row in summary:
        vals = [r["final"]["val_loss"] for r in runs if r["schedule"]["name"] ==
                row["schedule"] and r["optimizer"]["name"] == row["optimizer"]]
        assert float(row["val_loss mean"]) == pytest.approx(np.mean(vals), rel=1e-12)
        assert float(row["base lr"]) == runs[0 if row["optimizer"] == "sgd" else 2][
            "optimizer"]["base_lr"]
    for opt in ("sgd", "adamw"):
        means = [float(r["val_loss mean"]) for r in summary if r["optimizer"] == opt]
        assert means == sorted(means)
    html = (tiny_report / "report.html").read_text()
    assert html.count('<table class="results">') == 2
    assert html.count("<tr") == 2 * 3
    conclusion = html.index("<h2>Conclusion</h2>")
    assert conclusion < html.index("<h2>Figures</h2>")
    for v in res["verdicts"]:
        assert v["sentence"].startswith(f"{v['optimizer']}: ")
        assert v["sentence"].replace("±", "&#177;") in html or v["sentence"] in html
    assert "http://" not in html
    assert "https://" not in html
    for src in re.findall(r'<img src="([^"]+)"', html):
        assert (tiny_report / src).is_file()
    # the per-layer heat map: one per optimizer, from run files that carry the fields
    assert "<h2>Per-layer update sizes</h2>" in html
    for opt in ("sgd", "adamw"):
        assert f'<img src="layers_{opt}.png"' in html
        assert png_size(tiny_report / f"layers_{opt}.png")[0] > 300
    for r in runs:
        assert r["layers"]["steps"] == list(range(1, spe + 1))  # stride 1 for 23 updates


@pytest.mark.slow
def test_same_seed_same_numbers(tiny_report: Path, tmp_path: Path) -> None:
    r = lrkit("compare", *TINY[:-1], "1", "-o", "again", "-q", cwd=tmp_path)  # 1 worker
    assert r.returncode == 0, r.stderr
    a = json.loads((tiny_report / "results.json").read_text())
    b = json.loads((tmp_path / "again" / "results.json").read_text())
    assert without_wall_times(a["runs"]) == without_wall_times(b["runs"])
    assert [v["sentence"] for v in a["verdicts"]] == [v["sentence"] for v in b["verdicts"]]
    assert any(x["wall_time_s"] > 0 for x in a["runs"])


@pytest.mark.slow
def test_tinylm_from_the_command_line(tmp_path: Path) -> None:
    tiny = [f"--task-arg={k}={v}" for k, v in (("context", 16), ("width", 16), ("layers", 1),
            ("heads", 2), ("batch_size", 4), ("corpus_bytes", 150_000), ("val_windows", 16),
            ("eval_every", 10), ("steps", 20))]
    r = lrkit("compare", "--task", "tinylm", *tiny, "--schedules", "wsd",
              "--optimizers", "adamw", "--seeds", "0,1", "--workers", "1", "-o", "lm", "-q",
              cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path / "lm" / "results.json").read_text())
    assert res["task"]["name"] == "tinylm"
    assert [x["evals"]["step"] for x in res["runs"]] == [[10, 20], [10, 20]]
    assert res["task"]["describe"]["corpus"]["train_sha256"]
    f = lrkit("find-lr", "--task", "tinylm", *tiny, "--num-steps", "8", "--end-lr", "0.1",
              "-q", cwd=tmp_path)
    assert f.returncode == 0, f.stderr
    assert f.stdout.strip().startswith("onecycle(peak=")


FLAKY = """
import torch
class Run:
    def __init__(self, seed):
        self.seed = seed
        self.model = torch.nn.Linear(2, 1)
    def param_groups(self): return self.model.parameters()
    def batch(self, step):
        if self.seed == 1 and step == 3:
            raise ValueError("corrupt record 17")
        return torch.ones(4, 2)
    def loss(self, x): return self.model(x).pow(2).mean()
    def evaluate(self): return {"val": float(self.model.weight.abs().sum())}
class Task:
    name, metric, higher_is_better, steps, eval_every = "flaky", "val", False, 6, 3
    def describe(self): return {}
    def build(self, seed): return Run(seed)
def make(): return Task()
"""


@pytest.mark.slow
def test_a_failing_run_keeps_the_others_and_exits_2(tmp_path: Path) -> None:
    (tmp_path / "flaky.py").write_text(FLAKY)
    r = lrkit("compare", "--task", "flaky.py:make", "--schedules", "constant",
              "--optimizers", "sgd", "--seeds", "0,1,2", "--workers", "1", "-o", "rep", "-q",
              cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "lrkit compare: error: run constant / sgd / seed 1 failed: ValueError: corrupt "
        "record 17"]
    res = json.loads((tmp_path / "rep" / "results.json").read_text())
    assert [x["status"] for x in res["runs"]] == ["finished", "failed", "finished"]
    html = (tmp_path / "rep" / "report.html").read_text()
    assert "Failed runs" in html
    assert "corrupt record 17" in html


@pytest.mark.slow
def test_existing_report_needs_force(tmp_path: Path) -> None:
    cheap = ["compare", "--schedules", "constant", "--optimizers", "sgd", "--epochs", "1",
             "--seeds", "0", "-q"]
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
        (["--task", "nowhere_xyz:make"], "importing 'nowhere_xyz' failed"),
        (["--task", "os:getcwd"], "it returned str, which is not a task"),
        (["--task", "os:sep"], "not a callable factory"),
        (["--task-arg", "oops"], "task-arg='oops'"),
        (["--task-arg", "depth=3"], "does not take these arguments"),
        (["--epochs", "2", "--task-arg", "epochs=3"], "both given"),
        (["--workers", "0"], "workers=0"),
        (["--ray-address", "127.0.0.1:9"], "--ray-address needs --backend ray"),
        (["--backend", "ray", "--ray-address", "127.0.0.1:9"], "cannot be reached"),
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
            "--epochs", "40", "--seeds", "0", "--workers", "2", "-o", "rep"]
    # a test run started in the background (``cmd &`` in a script) ignores SIGINT and its
    # children inherit that: give the study the Ctrl-C handling it has in a terminal
    proc = subprocess.Popen(
        [sys.executable, "-m", "lrkit", *args], cwd=tmp_path, env=ENV,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
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
    names = [x["schedule"]["name"] for x in res["runs"]]
    assert names == [n for n in ("constant", "setr", "step", "onecycle") if n in names]
    assert "Partial report" in (tmp_path / "rep" / "report.html").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep"]


_CHECK = """<script>
window.addEventListener("load", function () {
  var out = [];
  for (var i = 0; i < document.images.length; i++) {
    var im = document.images[i];
    out.push(im.getAttribute("src") + "=" + im.naturalWidth + "x" + im.naturalHeight);
  }
  var rows = 0;
  var ts = document.querySelectorAll("table.results");
  for (var j = 0; j < ts.length; j++) rows += ts[j].tBodies[0].rows.length;
  var shown = [];
  for (var k = 0; k < document.images.length; k++) {
    shown.push(document.images[k].getAttribute("src") + "=" + document.images[k].width);
  }
  var p = document.createElement("pre");
  p.id = "lrkit-check";
  p.textContent = "IMAGES " + out.join(" ") + " ROWS " + rows + " SHOWN " + shown.join(" ");
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
    m = re.search(r"IMAGES (.*) ROWS (-?\d+) SHOWN ([^<]*)", r.stdout)
    assert m, (r.stdout[-2000:], r.stderr[-2000:])
    images = dict(item.split("=") for item in m.group(1).split())
    assert set(images) == {"metric.png", "lr.png", "training.png", "effective_lr.png",
                           "layers_sgd.png", "layers_adamw.png"}  # the per-layer heat maps
    for src, size in images.items():
        w, h = (int(v) for v in size.split("x"))
        assert (w, h) == png_size(folder / src), src  # loaded, at the file's own size
    assert int(m.group(2)) == 4
    # as rendered in the 800 px window of --dump-dom, the smallest figure text (FONT_PT
    # points at DPI, scaled by the width shown over the file's width) is 10 px or more
    from lrkit.study.figures import DPI, FONT_PT

    for item in m.group(3).split():
        src, width = item.split("=")
        natural = int(images[src].split("x")[0])
        assert FONT_PT * DPI / 72 * int(width) / natural >= 10, (src, width, natural)
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
    names = {(x["schedule"]["name"], x["optimizer"]["name"]) for x in res["runs"]}
    assert len(names) == 16
    assert len(res["runs"]) == 48  # three seeds each
    assert res["study"]["seeds"] == [0, 1, 2]
    assert {n for n, _ in names} == {"setr", "segmenter", "poly-warmup", "step",
                                     "cosine-warmup", "onecycle", "plateau", "constant"}
