"""Write ``lrkit compare`` results as TensorBoard runs (one run folder per run)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["run_dirname", "write_tensorboard"]


def run_dirname(label: str) -> str:
    """A folder name for a run label: ``"setr / adamw / seed 0"`` -> ``setr-adamw-seed0``."""
    name = re.sub(r"\s*/\s*", "-", label.strip())
    name = re.sub(r"\s+", "", name)
    return re.sub(r"[^A-Za-z0-9._=+-]", "_", name) or "run"


def write_tensorboard(folder: str | Path, runs: Sequence[Any], steps_per_epoch: int) -> list[Path]:
    """Write each :class:`~lrkit.train.runner.RunResult` as a TensorBoard run under
    ``folder``: per step ``lr`` (the rate the update used), ``train/loss`` and the effective
    rate band ``effective_lr/{low,median,high}``; per epoch (at the epoch's last update)
    ``val/loss``, ``val/acc`` and ``train/epoch_loss``; the spec as text. Returns the run
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
            for e, (vl, va) in enumerate(zip(r.val_loss, r.val_acc, strict=False), start=1):
                w.add_scalar("val/loss", vl, e * steps_per_epoch)
                w.add_scalar("val/acc", va, e * steps_per_epoch)
            for e, tl in enumerate(r.epoch_train_loss, start=1):
                w.add_scalar("train/epoch_loss", tl, e * steps_per_epoch)
        out.append(d)
    return out
