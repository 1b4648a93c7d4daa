"""The subprocess helpers of the CLI tests, shared (``python -m lrkit``, PNG sizes)."""

from __future__ import annotations

from cli._util import ENV, lrkit, png_size, without_wall_times

__all__ = ["ENV", "lrkit", "png_size", "without_wall_times"]
