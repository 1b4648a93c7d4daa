"""Running ``python -m lrkit`` in a subprocess for the end-to-end tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ENV = {**os.environ, "PYTHONWARNINGS": "ignore", "COLUMNS": "120", "NO_COLOR": "1"}


def lrkit(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``python -m lrkit ARGS`` in ``cwd``; return the completed process (text mode)."""
    return subprocess.run(
        [sys.executable, "-m", "lrkit", *args],
        cwd=cwd,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def png_size(path: Path) -> tuple[int, int]:
    """Decode the PNG (matplotlib's reader) and return (width, height)."""
    import matplotlib.image

    img = matplotlib.image.imread(path)
    return int(img.shape[1]), int(img.shape[0])


def without_wall_times(obj: Any) -> Any:
    """results.json without wall times (the only numbers allowed to differ run to run)."""
    if isinstance(obj, dict):
        return {k: without_wall_times(v) for k, v in obj.items() if k != "wall_time_s"}
    if isinstance(obj, list):
        return [without_wall_times(v) for v in obj]
    return obj
