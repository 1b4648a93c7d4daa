"""The README's Python examples run as written (in order, in one namespace)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_readme_has_examples() -> None:
    assert len(_python_blocks()) >= 3


def test_readme_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the tour writes sched.pt and effective.png
    model = torch.nn.Linear(3, 1)
    ns: dict[str, object] = {"optimizer": torch.optim.AdamW(model.parameters(), lr=1e-3)}
    for block in _python_blocks():
        exec(compile(block, str(README), "exec"), ns)
    # The tour saved its scheduler; the monitor recorded and drew its figure.
    assert ns["monitor"].history  # type: ignore[attr-defined]
    assert (tmp_path / "sched.pt").stat().st_size > 0
    assert (tmp_path / "effective.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
