"""scripts/compare.sh and scripts/test.sh: what they decide, in a throwaway copy of the repo.

pip, ``lrkit`` and the browser tools are stand-ins on PATH that record their calls (that
``lrkit compare --force`` replaces an earlier report is tested in tests/cli/test_compare.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tool(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A copy of the scripts and pyproject.toml, and a '.venv' whose python records pip."""
    (tmp_path / "scripts").mkdir()
    for f in ("compare.sh", "test.sh", "_setup.sh", "_browser.sh"):
        shutil.copy(ROOT / "scripts" / f, tmp_path / "scripts" / f)
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    bin_ = tmp_path / ".venv" / "bin"
    bin_.mkdir(parents=True)
    log = tmp_path / "calls.log"
    # python: `-m pip ...` is recorded; anything else is the real interpreter
    _tool(bin_, "python", f'if [ "$1 $2" = "-m pip" ]; then echo "pip $*" >> {log}; exit 0; fi\n'
                          f'exec {sys.executable} "$@"')
    _tool(bin_, "lrkit", f'echo "lrkit $*" >> {log}')
    (bin_ / "activate").write_text(f'PATH="{bin_}:$PATH"\n')
    return tmp_path


def _run(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    r = subprocess.run(["bash", "scripts/compare.sh", *args], cwd=repo, capture_output=True,
                       text=True, timeout=300, check=False,
                       env={**os.environ, "COLUMNS": "120", **(env or {})})
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def _calls(repo: Path) -> list[str]:
    log = repo / "calls.log"
    lines = log.read_text().splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    return lines


def test_compare_twice_installs_once_and_replaces_the_report(repo: Path) -> None:
    _run(repo, "--epochs", "1")
    assert _calls(repo) == ["pip -m pip install -q torch==2.13.0",
                            "pip -m pip install -q -e .[cli]",
                            "lrkit compare --force --epochs 1"]  # --force: a rerun replaces
    _run(repo, "--epochs", "1")
    assert _calls(repo) == ["lrkit compare --force --epochs 1"]  # nothing changed: no pip
    # a changed pyproject.toml, or another torch index, installs again
    with (repo / "pyproject.toml").open("a") as f:
        f.write("\n# changed\n")
    _run(repo)
    assert len(_calls(repo)) == 3
    _run(repo, env={"TORCH_INDEX_URL": "https://download.pytorch.org/whl/cpu"})
    assert _calls(repo)[0] == ("pip -m pip install -q torch==2.13.0 --index-url "
                               "https://download.pytorch.org/whl/cpu")
    _run(repo, env={"TORCH_INDEX_URL": "https://download.pytorch.org/whl/cpu"})
    assert _calls(repo) == ["lrkit compare --force"]
    assert len(list((repo / ".venv").glob(".installed-compare-*"))) == 1


def _browser_check(tmp_path: Path, tools: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Source scripts/_browser.sh with only ``tools`` on PATH; print the variable it sets."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    for name, body in tools.items():
        _tool(bin_, name, body)
    return subprocess.run(
        [shutil.which("bash") or "/bin/bash", "-c", f'. {ROOT / "scripts" / "_browser.sh"}; '
                       'echo "REQUIRE=${LRKIT_REQUIRE_BROWSER:-}"'],
        capture_output=True, text=True, timeout=60, check=False,
        env={"PATH": str(bin_), "HOME": str(tmp_path)})


@pytest.mark.parametrize(
    ("tools", "why"),
    [
        ({"id": "echo 1000", "apt-get": "exit 0"}, "this is not root"),
        ({"id": "echo 1000"}, "no apt-get"),
        ({"id": "echo 0", "apt-get": "exit 100"}, "apt-get could not install"),
    ],
)
def test_without_a_browser_the_check_is_skipped_and_explained(
        tmp_path: Path, tools: dict[str, str], why: str) -> None:
    r = _browser_check(tmp_path, tools)
    assert r.returncode == 0, r.stderr
    assert why in r.stdout
    assert "test_report_renders_in_headless_chromium" in r.stdout
    assert r.stdout.strip().endswith("REQUIRE=")  # so the test skips instead of failing


def test_with_a_browser_the_check_must_run(tmp_path: Path) -> None:
    r = _browser_check(tmp_path, {"id": "echo 1000", "chromium": "exit 0"})
    assert r.stdout.strip() == "REQUIRE=1"
