"""Running ``python -m lrkit`` in a subprocess for the end-to-end tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
