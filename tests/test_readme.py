"""The README's examples run as written: its Python blocks in order, in one namespace, with
nothing given to them; its ``lrkit`` commands; and no code block escapes this test.

The two set-up-and-run commands (``bash scripts/compare.sh``, ``bash scripts/test.sh``)
install a virtual environment: they are what a new user runs, not run here (see
``tests/_markdown.py``; CI runs the second one through ``.ci/run``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from _markdown import FENCE, NOT_RUN, blocks, commands, run_commands

README = Path(__file__).resolve().parents[1] / "README.md"
TEXT = README.read_text(encoding="utf-8")


def test_every_block_is_python_or_bash() -> None:
    langs = [m.group(2) for m in FENCE.finditer(TEXT)]
    assert set(langs) == {"python", "bash"}
    assert TEXT.count("```") == 2 * len(langs)  # no block the pattern missed


def test_exactly_two_setup_commands() -> None:
    setup = [c for b in blocks(TEXT, "bash") for c in commands(b) if not c.startswith("lrkit")]
    assert setup == ["bash scripts/compare.sh", "bash scripts/test.sh"]
    assert set(setup) <= set(NOT_RUN)


def test_readme_python_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)  # the tour writes sched.pt and effective.png
    code = blocks(TEXT, "python")
    assert len(code) >= 4
    ns: dict[str, object] = {"__name__": "readme"}  # nothing predefined: as a user runs it
    for i, block in enumerate(code):
        try:
            exec(compile(block, f"README.md [python block {i + 1}]", "exec"), ns)
        except Exception as exc:  # pragma: no cover - the failure message
            raise AssertionError(f"README.md, python block {i + 1} failed: {exc!r}") from exc
    # the quick start stepped its scheduler; the tour saved its own; the monitor drew
    assert ns["monitor"].history  # type: ignore[attr-defined]
    assert (tmp_path / "sched.pt").stat().st_size > 0
    assert (tmp_path / "effective.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the range test suggested rates, and a spec that parses
    out = capsys.readouterr().out
    spec = out.strip().splitlines()[-1]
    assert re.fullmatch(r"onecycle\(peak=[0-9.e-]+\) over 1000", spec), out
    import lrkit

    assert lrkit.parse(spec).total_steps == 1000  # type: ignore[attr-defined]


def test_readme_lrkit_commands_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    ran = run_commands(TEXT, "README.md")
    assert any(c.startswith("lrkit plot ") for c in ran)
    assert (tmp_path / "schedules.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
