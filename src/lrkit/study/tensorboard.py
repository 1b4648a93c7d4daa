"""Write a study's runs as TensorBoard runs (one run folder per run)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["run_dirname", "tag", "write_tensorboard"]


def run_dirname(label: str) -> str:
    """A folder name for a run label: ``"setr / adamw / seed 0"`` -> ``setr-adamw-seed0``."""
    name = re.sub(r"\s*/\s*", "-", label.strip())
    name = re.sub(r"\s+", "", name)
    return re.sub(r"[^A-Za-z0-9._=+-]", "_", name) or "run"


def tag(metric: str) -> str:
    """The TensorBoard tag of an evaluation metric: ``val_loss`` -> ``val/loss``,
    ``mean_train_loss`` -> ``train/mean_loss``, others ``eval/<name>``."""
    if metric == "mean_train_loss":
        return "train/mean_loss"
    head, sep, rest = metric.partition("_")
    if sep and head in ("val", "valid", "test", "train", "eval"):
        return f"{head}/{rest}"
    return f"eval/{metric}"


def write_tensorboard(folder: str | Path, runs: Sequence[Any]) -> list[Path]:
    """Write each :class:`~lrkit.study.record.RunResult` as a TensorBoard run under
    ``folder``: per update (step k = updates done, from 1) ``lr`` (the rate the update
    used), ``train/loss`` and the effective-rate band ``effective_lr/{low,median,high}``; at
    each evaluation (its step) every metric (:func:`tag`); the spec as text. Returns the run
    folders. Needs the ``tensorboard`` package (``pip install lrkit[tensorboard]``).
    """
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "--tensorboard needs the tensorboard package: pip install lrkit[tensorboard]"
        ) from err
    root = Path(folder)
    out: list[Path] = []
    for r in runs:
        d = root / run_dirname(r.config.label)
        with SummaryWriter(log_dir=str(d)) as w:
            w.add_text("spec", f"`{r.config.schedule.spec}` ({r.config.optimizer}, "
                       f"base lr {r.config.lr:g}, seed {r.config.seed})", 0)
            for k, (lr, loss) in enumerate(zip(r.lr, r.train_loss, strict=False), start=1):
                w.add_scalar("lr", lr, k)
                w.add_scalar("train/loss", loss, k)
            for key, values in (r.band or {}).items():
                for k, v in enumerate(values, start=1):
                    w.add_scalar(f"effective_lr/{key}", v, k)
            steps = r.evals.get("step", [])
            for key, values in r.evals.items():
                if key == "step":
                    continue
                for s, v in zip(steps, values, strict=False):
                    w.add_scalar(tag(key), v, int(s))
        out.append(d)
    return out
