"""Crash-safe checkpoints of a study run: atomic writes, ``weights_only`` loads.

A checkpoint is one ``torch.save`` file of plain data and tensors (model, optimizer and
scheduler states, the run's recorded numbers, the RNG states), so
``torch.load(weights_only=True)`` reads it. It is written atomically: to a temporary file in
the same folder, flushed and ``fsync``-ed, renamed over the old file with :func:`os.replace`
and the folder ``fsync``-ed. A process killed at any moment leaves either the previous
complete checkpoint or the new complete one (and at worst a stray ``.*.tmp`` file, which
:func:`remove_stale` deletes and which is never read).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import torch

from lrkit._validate import check_int
from lrkit.errors import StateError

__all__ = ["FORMAT", "VERSION", "Checkpointing", "load_checkpoint", "remove_stale",
           "run_file", "save_atomic"]

FORMAT = "lrkit.study.checkpoint"
VERSION = 2


@dataclasses.dataclass(frozen=True)
class Checkpointing:
    """Where and how often one run saves: ``path`` every ``every`` optimizer updates (and at
    the end); ``resume`` continues from ``path`` when it exists."""

    path: Path
    every: int = 100
    resume: bool = False

    def __post_init__(self) -> None:
        check_int("checkpoint_every", self.every, low=1)


def save_atomic(obj: Any, path: str | os.PathLike[str]) -> None:
    """``torch.save(obj)`` to ``path`` atomically (temp file, fsync, os.replace, fsync dir).

    Example:
        >>> import tempfile, torch
        >>> path = Path(tempfile.mkdtemp()) / "state.pt"
        >>> save_atomic({"step": 3, "w": torch.ones(2)}, path)
        >>> torch.load(path, weights_only=True)["step"]
        3
    """
    path = Path(path)
    folder = path.parent
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on folders
        pass
    finally:
        os.close(fd)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint with ``torch.load(weights_only=True)``; check its header.

    Raises:
        StateError: not a checkpoint of this format and version (or unreadable).

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "run.pt"
        >>> save_atomic({"format": FORMAT, "version": VERSION, "updates": 7}, path)
        >>> load_checkpoint(path)["updates"]
        7
        >>> _ = path.write_bytes(b"half a file")
        >>> load_checkpoint(path)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        lrkit.errors.StateError: checkpoint='...' is invalid: expected a complete lrkit ...
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except OSError:  # missing, unreadable: the caller's business
        raise
    except Exception as exc:  # a corrupt file makes torch's reader raise anything at all
        raise StateError(f"checkpoint={str(path)!r} is invalid: expected a complete lrkit "
                         f"checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise StateError(f"checkpoint={str(path)!r} is invalid: expected a file written by "
                         f"lrkit compare (format {FORMAT!r})")
    if state.get("version") != VERSION:
        raise StateError(f"checkpoint['version']={state.get('version')!r} is invalid: "
                         f"expected {VERSION}")
    return state


def remove_stale(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete temporary files a killed writer left in ``folder``; return them."""
    out = []
    for p in Path(folder).glob(".*.tmp"):
        if p.is_file():
            with contextlib.suppress(OSError):
                p.unlink()
                out.append(p)
    return out


def run_file(folder: str | os.PathLike[str], label: str) -> Path:
    """The checkpoint file of the run ``label`` (schedule / optimizer / seed): its label made
    file-name safe plus a short hash of it. It does not depend on the run's place in the
    study, so a study resumed with more seeds or schedules reuses every finished run.

    Example:
        >>> run_file("ck", "setr / sgd / seed 0").name
        'run-setr-sgd-seed-0-abc22d.pt'
    """
    import hashlib

    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", label).strip("-")[:80]
    digest = hashlib.sha256(label.encode()).hexdigest()[:6]
    return Path(folder) / f"run-{slug}-{digest}.pt"
