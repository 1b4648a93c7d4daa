"""Shared CLI plumbing: one-line usage errors, spec loading, step ranges, safe output paths."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

from lrkit._validate import check_int, check_number
from lrkit.errors import ConfigError

__all__ = [
    "Parser",
    "UsageError",
    "add_output_options",
    "add_range_options",
    "check_new_file",
    "load_spec",
    "new_folder",
    "step_range",
]


class UsageError(Exception):
    """A user error the CLI reports as one line on stderr with exit status 2."""


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the problem and where to get help.

    ``examples``: command lines shown at the end of ``--help``, one per line and unwrapped,
    so that each can be copied as is (a test runs every one of them).
    """

    def __init__(self, *args: Any, examples: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.examples = tuple(examples)

    def format_help(self) -> str:
        text = super().format_help()
        if not self.examples:
            return text
        return text + "\nexamples:\n" + "".join(f"  {e}\n" for e in self.examples)

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see '{self.prog} --help')\n")
        raise SystemExit(2)


def positive_int(name: str) -> Any:
    def conv(text: str) -> int:
        try:
            value: float = int(text)
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                raise argparse.ArgumentTypeError(
                    f"{name}={text!r} is invalid: expected an integer >= 1"
                ) from None
        try:
            return check_int(name, value, low=1)
        except ConfigError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    return conv


def positive_float(name: str) -> Any:
    def conv(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{name}={text!r} is invalid: expected a number > 0"
            ) from None
        try:
            return check_number(name, value, low=0, low_open=True)
        except ConfigError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    return conv


def add_range_options(p: argparse.ArgumentParser) -> None:
    """``--steps`` or ``--epochs``/``--steps-per-epoch``, and ``--base-lr``."""
    g = p.add_argument_group("range")
    g.add_argument(
        "--steps", type=positive_int("steps"), metavar="N",
        help="optimizer updates to cover (also the horizon of specs without 'over N'); "
        "default: the schedule's own horizon",
    )
    g.add_argument(
        "--epochs", type=positive_int("epochs"), metavar="E",
        help="cover E epochs (with --steps-per-epoch); N = E x steps per epoch",
    )
    g.add_argument(
        "--steps-per-epoch", type=positive_int("steps-per-epoch"), metavar="S",
        help="optimizer updates per epoch: for --epochs and for 'N epochs' in a spec "
        "(also puts epochs on the x axis)",
    )
    g.add_argument(
        "--base-lr", type=positive_float("base-lr"), default=1.0, metavar="LR",
        help="base learning rate that relative values (0.1x, the default peak) multiply "
        "(default 1: values read as multipliers)",
    )


def add_output_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but results/paths")


def load_spec(text: str, total_steps: int | None, steps_per_epoch: int | None = None) -> Any:
    """Parse a spec string, or a ``.json``/``.yaml``/``.yml`` file holding the dict form
    (read with :func:`lrkit.spec.load_json` / :func:`~lrkit.spec.load_yaml`, which check
    size and nesting before parsing)."""
    from lrkit.errors import SpecError
    from lrkit.spec import load_json, load_yaml, parse
    from lrkit.spec._text import MAX_DOCUMENT

    path = Path(text)
    suffix = path.suffix.lower()
    if suffix in (".json", ".yaml", ".yml") and path.is_file():
        if path.stat().st_size > 4 * MAX_DOCUMENT:  # before reading it
            raise UsageError(f"{text}: file too large for a spec ({path.stat().st_size} bytes)")
        raw = path.read_bytes()
        load = load_json if suffix == ".json" else load_yaml
        try:
            return load(raw, total_steps, steps_per_epoch=steps_per_epoch)
        except SpecError as e:
            raise SpecError(f"{text}: {e}") from None
    return parse(text, total_steps=total_steps, steps_per_epoch=steps_per_epoch)


def requested_steps(args: argparse.Namespace) -> int | None:
    """N from ``--steps`` or ``--epochs`` x ``--steps-per-epoch`` (None when neither)."""
    if args.epochs is not None:
        if args.steps_per_epoch is None:
            raise UsageError("--epochs needs --steps-per-epoch (optimizer updates per epoch)")
        n = int(args.epochs * args.steps_per_epoch)
        if args.steps is not None and args.steps != n:
            raise UsageError(
                f"--steps {args.steps} disagrees with --epochs x --steps-per-epoch = {n}"
            )
        return n
    return int(args.steps) if args.steps is not None else None


def step_range(
    schedules: list[Any], specs: list[str], requested: int | None,
    steps_per_epoch: int | None = None,
) -> int:
    """The number of updates N to cover: requested, else the longest horizon (a spec's own
    ``over N`` counts as its horizon: ``step(30) over 100`` never settles but asks for 100)."""
    from lrkit.spec import declared_total

    if requested is not None:
        return requested
    horizons = []
    for sched, spec in zip(schedules, specs, strict=False):
        h = sched.horizon
        over = declared_total(spec, steps_per_epoch=steps_per_epoch)
        if over is not None:
            h = over if h is None else max(h, over)
        if h is None or h <= 0:
            raise UsageError(
                f"spec {spec!r} has no finite horizon: give --steps N "
                "(or --epochs E --steps-per-epoch S)"
            )
        # a declared total (onecycle over 200 settles at step 199) counts as well
        declared = getattr(sched, "total_steps", None)
        horizons.append(max(h, declared) if isinstance(declared, (int, float)) else h)
    return max(1, int(-(-max(horizons) // 1)))


def check_new_file(path: Path, force: bool) -> None:
    """Refuse to overwrite an existing file without ``--force``; check the folder exists."""
    if path.is_dir():
        raise UsageError(f"{path}: is a folder, expected a file name")
    if path.exists() and not force:
        raise UsageError(f"{path} exists: use --force to overwrite it")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"{path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise UsageError(f"{path}: folder {parent} is not writable")


@contextmanager
def new_folder(folder: Path, force: bool) -> Iterator[Path]:
    """Yield an empty staging folder that replaces ``folder`` when the block completes.

    Without ``force`` an existing, non-empty ``folder`` is an error (raised before any work).
    The old folder is only removed once the new one is complete, so an error or a crash half
    way never destroys what was there. On an exception the staging folder is deleted.
    """
    if folder.exists():
        if not folder.is_dir():
            raise UsageError(f"{folder} exists and is not a folder")
        if any(folder.iterdir()) and not force:
            raise UsageError(f"{folder} exists and is not empty: use --force to overwrite it")
    parent = folder.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=parent))
    except OSError as e:
        raise UsageError(f"{folder}: cannot create the report folder: {e.strerror or e}") from None
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    os.chmod(stage, 0o755)
    old = None
    if folder.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".old", dir=parent))
        os.rename(folder, old / folder.name)
    os.rename(stage, folder)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
