"""End to end: ``lrkit plot``, ``show``, ``export``, help and bad input (subprocesses)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from ._util import lrkit, png_size

SPEC = "warmup(100) then poly(power=0.9, end=1e-5) over 1000"


def expected(spec_steps: np.ndarray, base: float = 1.0) -> np.ndarray:
    """The warmup + poly values typed from the formula, independent of lrkit."""
    t = spec_steps
    w, total, p, end = 100.0, 900.0, 0.9, 1e-5
    ramp = base * t / w
    u = np.clip(t - w, 0, total) / total
    decay = end + (base - end) * (1 - u) ** p
    return np.where(t < w, ramp, decay)


@pytest.mark.parametrize("command", ["", "plot", "show", "export", "compare", "find-lr"])
def test_help(tmp_path: Path, command: str) -> None:
    args = [command, "--help"] if command else ["--help"]
    r = lrkit(*args, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "usage: lrkit" in r.stdout
    if not command:
        for sub in ("plot", "show", "export", "compare", "find-lr"):
            assert sub in r.stdout


def test_export_csv_equals_vectorized_values(tmp_path: Path) -> None:
    r = lrkit("export", SPEC, "--base-lr", "0.01", "-o", "v.csv", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader((tmp_path / "v.csv").open()))
    steps = np.array([float(row["step"]) for row in rows])
    values = np.array([float(row["lr"]) for row in rows])
    np.testing.assert_array_equal(steps, np.arange(1001))
    np.testing.assert_allclose(values, expected(steps, 0.01), rtol=1e-12, atol=0)

    from lrkit.spec import parse

    lib = parse(SPEC)(np.arange(1001), base=0.01)
    np.testing.assert_array_equal(values, lib)  # exact: repr() round-trips floats


def test_export_json_with_epochs(tmp_path: Path) -> None:
    r = lrkit("export", "cosine", "--epochs", "4", "--steps-per-epoch", "25",
              "--format", "json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    obj = json.loads(r.stdout)
    assert obj["total_steps"] == 100
    assert obj["steps"] == list(range(101))
    t = np.arange(101)
    np.testing.assert_allclose(obj["values"], 0.5 * (1 + np.cos(np.pi * t / 100)),
                               rtol=1e-12, atol=1e-15)


def test_export_csv_epoch_column(tmp_path: Path) -> None:
    r = lrkit("export", "multistep(boundaries=[3, 6], gamma=0.1)", "--steps", "8",
              "--steps-per-epoch", "2", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    rows = list(csv.reader(r.stdout.splitlines()))
    assert rows[0] == ["step", "epoch", "lr"]
    assert [float(x[2]) for x in rows[1:]] == pytest.approx(
        [1, 1, 1, 0.1, 0.1, 0.1, 0.01, 0.01, 0.01], rel=1e-12)
    assert [float(x[1]) for x in rows[1:]] == [s / 2 for s in range(9)]


@pytest.mark.parametrize(("suffix", "size"), [(".png", (640, 360)), (".svg", (700, 400))])
def test_plot_file_and_terminal(tmp_path: Path, suffix: str, size: tuple[int, int]) -> None:
    out = tmp_path / f"s{suffix}"
    r = lrkit("plot", SPEC, "warmup(100) then cosine over 1000", "-o", out.name,
              "--size", f"{size[0]}x{size[1]}", "--log", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert out.exists()
    if suffix == ".png":
        assert png_size(out) == size
    else:
        text = out.read_text()
        assert text.lstrip().startswith("<?xml")
        assert "<svg" in text
        assert f'width="{size[0] * 0.72:g}pt"' in text  # 72 pt per inch at 100 dpi
    # the terminal rendering names each schedule and its marks
    assert "warmup end 1 @ 100" in r.stdout
    assert "final 1e-05 @ 1000" in r.stdout
    assert "final 0 @ 1000" in r.stdout


def test_plot_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    out = tmp_path / "a.png"
    out.write_bytes(b"precious")
    r = lrkit("plot", SPEC, "-o", "a.png", cwd=tmp_path)
    assert r.returncode == 2
    assert "exists" in r.stderr
    assert "--force" in r.stderr
    assert out.read_bytes() == b"precious"
    r = lrkit("plot", SPEC, "-o", "a.png", "--force", "-q", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert png_size(out) == (900, 500)


def test_show_table_and_json(tmp_path: Path) -> None:
    r = lrkit("show", SPEC, "--base-lr", "0.1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    for word in ("start", "warmup end", "peak", "end", "total steps: 1000", '"kind": "warmup"'):
        assert word in r.stdout
    r = lrkit("show", "onecycle over 200", "--format", "json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    obj = json.loads(r.stdout)
    facts = obj["facts"]
    assert facts["total_steps"] == 200
    # one-cycle (torch's defaults): starts at peak/25, peaks at 1 after 30 % of the steps
    assert facts["start"]["value"] == pytest.approx(1 / 25)
    assert facts["peak"]["value"] == pytest.approx(1.0)
    assert facts["end"]["value"] == pytest.approx(1 / 25 / 1e4)
    assert obj["dict"]["kind"] == "onecycle"


def test_show_reads_a_yaml_file(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text("kind: poly\ntotal_steps: 50\npower: 2\nend: 0.0\n")
    r = lrkit("show", "s.yaml", "--format", "json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    facts = json.loads(r.stdout)["facts"]
    assert facts["total_steps"] == 50
    assert facts["milestones"] == {}
    assert math.isclose(facts["end"]["value"], 0.0, abs_tol=1e-15)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["export", "polly(3)", "--steps", "5"], "unknown schedule 'polly'"),
        (["export", "poly(power=0.9 end=1)", "--steps", "5"], "column"),
        (["export", "poly(power=-1)", "--steps", "5"], "power=-1"),
        (["export", "poly(power=0.9)"], "total_steps"),
        (["export", "constant"], "--steps"),
        (["export", "cosine", "--steps", "0"], "steps=0"),
        (["export", "cosine", "--steps", "-3"], "steps=-3"),
        (["export", "cosine", "--epochs", "2"], "--steps-per-epoch"),
        (["plot", "cosine", "--steps", "10", "--frobnicate"], "unrecognized arguments"),
        (["plot", "cosine", "--steps", "10", "-o", "x.gif"], ".png or .svg"),
        (["plot", "cosine", "--steps", "10", "-o", "no/such/dir/x.png"], "does not exist"),
        (["plot", "cosine", "--steps", "10", "--size", "big"], "--size"),
        (["export", "cosine", "--steps", "10", "-o", "."], "folder"),
        (["show", "{not json"], "JSON"),
        (["bogus"], "invalid choice"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    args: list[str], needle: str,
) -> None:
    """In process (fast); the subprocess test below checks the same through `python -m`."""
    from lrkit.cli import main

    monkeypatch.chdir(tmp_path)
    try:
        code = main(args)
    except SystemExit as e:  # argparse's own errors
        code = int(e.code or 0)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert needle in lines[0]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["export", "warmup(10) then polly(3)", "--steps", "50"], "column 17"),
        (["plot", "cosine", "--steps", "10", "--frobnicate"], "unrecognized arguments"),
    ],
)
def test_bad_input_subprocess(tmp_path: Path, args: list[str], needle: str) -> None:
    r = lrkit(*args, cwd=tmp_path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert needle in lines[0]
    assert "Traceback" not in r.stderr
    assert r.stdout == ""


def test_unwritable_output_exits_2(tmp_path: Path) -> None:
    import os

    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        # root ignores directory permissions; /proc refuses new files even to root
        target = "locked/v.csv" if not os.access(locked, os.W_OK) else "/proc/lrkit-v.csv"
        if target.startswith("/proc") and not Path("/proc/self").exists():
            pytest.skip("running as root without /proc: no unwritable folder to try")
        r = lrkit("export", "cosine", "--steps", "5", "-o", target, cwd=tmp_path)
        assert r.returncode == 2
        assert len(r.stderr.strip().splitlines()) == 1
        assert target in r.stderr
    finally:
        locked.chmod(0o700)


def test_output_path_through_a_file_exits_2(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    r = lrkit("export", "cosine", "--steps", "5", "-o", "f/v.csv", cwd=tmp_path)
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1
    assert "f/v.csv" in r.stderr
    assert (tmp_path / "f").read_text() == "x"



@pytest.mark.parametrize(("command", "status"), [("export", 0), ("show", 1)])
def test_reader_closing_the_pipe_is_not_an_error(tmp_path: Path, command: str,
                                                 status: int) -> None:
    # `lrkit export ... | head -1`: the reader has gone; lrkit stops quietly (status 0; `show`
    # prints through rich, whose own broken-pipe handler exits 1 without a message)
    import os
    import subprocess
    import sys

    from ._util import ENV

    read_end, write_end = os.pipe()
    os.close(read_end)  # every write now fails with EPIPE, whatever the timing
    try:
        proc = subprocess.run([sys.executable, "-m", "lrkit", command, "cosine over 100000"],
                              cwd=tmp_path, env=ENV, stdout=write_end, capture_output=False,
                              stderr=subprocess.PIPE, timeout=120, check=False)
    finally:
        os.close(write_end)
    assert (proc.returncode, proc.stderr.decode()) == (status, "")
