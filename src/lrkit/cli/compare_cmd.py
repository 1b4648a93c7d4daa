"""``lrkit compare``: train the built-in task under several schedules and optimizers."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from typing import Any

from lrkit.cli._common import UsageError, add_output_options, new_folder, positive_int

__all__ = ["SUMMARY", "add_parser"]

# the line in 'lrkit --help'
SUMMARY = "train a small CNN under several schedules and optimizers; write a report"


def _csv_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(t) for t in _csv_list(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds={text!r}: expected integers, e.g. 0,1,2") from None
    if not seeds or min(seeds) < 0:
        raise argparse.ArgumentTypeError(f"seeds={text!r}: expected integers >= 0, e.g. 0,1,2")
    return seeds


def add_parser(sub: Any, parent: argparse.ArgumentParser) -> None:
    from lrkit.train.runner import OPTIMIZERS, PRESETS

    p = sub.add_parser(
        "compare", parents=[parent],
        help=SUMMARY,
        description="Train the same small CNN on scikit-learn's 8x8 handwritten digits (no "
        "download) under several schedules and optimizers, and write a report folder: "
        "report.html (opens from disk), PNG figures, results.json, results.csv (per step) and "
        "summary.csv. Fixed seeds give identical numbers run to run. Ctrl-C keeps the finished "
        "runs and writes a partial report. Runs under torchrun (DistributedDataParallel, gloo "
        "on CPU, NCCL on GPU; --batch-size is the global batch, so the schedule does not "
        "depend on the number of processes); only rank 0 writes.",
        epilog="built-in schedules: " + ", ".join(PRESETS) + " (see --list).",
        examples=[
            "lrkit compare --schedules setr,onecycle --schedule 'fast=onecycle over 100' "
            "--optimizers adamw --epochs 3 -o out",
            "lrkit compare --list",
        ],
    )
    p.add_argument(
        "--schedules", type=_csv_list, metavar="NAMES",
        help="built-in schedules to run, comma-separated (default: all eight, unless "
        "--schedule is given)",
    )
    p.add_argument(
        "--schedule", action="append", default=[], metavar="[LABEL=]SPEC",
        help="a custom schedule spec (repeatable); its horizon defaults to the whole run",
    )
    p.add_argument(
        "--optimizers", type=_csv_list, default=["sgd", "adamw"], metavar="NAMES",
        help="comma-separated, from " + ", ".join(OPTIMIZERS) + " (default: sgd,adamw)",
    )
    p.add_argument(
        "--lr", action="append", default=[], metavar="OPT=LR",
        help="base learning rate of an optimizer (repeatable); defaults: "
        + ", ".join(f"{k}={v[0]:g}" for k, v in OPTIMIZERS.items()),
    )
    p.add_argument("--epochs", type=positive_int("epochs"), default=10,
                   help="epochs per run (default 10)")
    p.add_argument("--batch-size", type=positive_int("batch-size"), default=64,
                   help="mini-batch size (default 64)")
    p.add_argument("--seeds", type=_seeds, default=[0], metavar="S[,S...]",
                   help="seeds; one run per seed (default 0)")
    p.add_argument("--threads", type=positive_int("threads"), default=1,
                   help="torch threads, fixed for reproducibility (default 1: fastest for "
                   "this tiny model and robust on a busy machine)")
    p.add_argument("--accumulate", type=positive_int("accumulate"), default=1, metavar="K",
                   help="gradient accumulation: split each batch into K micro-batches per "
                   "optimizer update (the schedule counts updates; default 1)")
    p.add_argument("--checkpoint-every", type=positive_int("checkpoint-every"), default=None,
                   metavar="N",
                   help="save each run's full state every N optimizer updates (and at its end), "
                   "atomically, to --checkpoint-dir (default with --resume: 100)")
    p.add_argument("--checkpoint-dir", type=Path, default=None, metavar="DIR",
                   help="checkpoint folder (default: OUTPUT-checkpoints beside the report "
                   "folder); kept after the report is written")
    p.add_argument("--resume", action="store_true",
                   help="continue from the checkpoints in --checkpoint-dir after a crash or "
                   "kill: finished runs are not repeated, the others continue bit for bit")
    p.add_argument("-o", "--output", type=Path, default=Path("lrkit-report"), metavar="DIR",
                   help="report folder (default ./lrkit-report)")
    p.add_argument("--tensorboard", type=Path, default=None, metavar="DIR",
                   help="also write every run as a TensorBoard run under DIR (needs the "
                   "tensorboard package)")
    p.add_argument("--list", action="store_true",
                   help="list the built-in schedules with their specs and exit")
    add_output_options(p)
    p.set_defaults(func=cmd_compare)


def _lrs(items: list[str], optimizers: list[str]) -> dict[str, float]:
    from lrkit._validate import check_number
    from lrkit.train.runner import OPTIMIZERS

    out = {o: OPTIMIZERS[o][0] for o in optimizers}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or name.strip() not in optimizers:
            raise UsageError(f"--lr {item!r}: expected OPT=LR with OPT one of "
                             + ", ".join(optimizers))
        try:
            lr = float(value)
        except ValueError:
            raise UsageError(f"--lr {item!r}: {value!r} is not a number") from None
        out[name.strip()] = check_number(f"--lr {name.strip()}", lr, low=0, low_open=True)
    return out


class _Progress:
    """Progress on stderr: rich bars (overall and per run) on a terminal, else one line per
    finished run (logs, CI); nothing when quiet."""

    def __init__(self, quiet: bool, total_runs: int, steps_per_run: int) -> None:
        self.bar: Any = None
        self.lines = False
        self.total_runs = total_runs
        self.finished = 0
        self.steps = steps_per_run
        self.done_in_run = 0
        if quiet:
            return
        from rich.console import Console

        console = Console(stderr=True)
        if not console.is_terminal:
            self.lines = True
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.bar = Progress(
            TextColumn("{task.description:<34}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TimeRemainingColumn(), console=console,
        )
        self.overall = self.bar.add_task(f"all {total_runs} runs (steps)",
                                         total=total_runs * steps_per_run)
        self.run: Any = None

    def __enter__(self) -> _Progress:
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def start_run(self, label: str) -> None:
        self.done_in_run = 0
        if self.bar is None:
            return
        if self.run is not None:
            self.bar.remove_task(self.run)
        self.run = self.bar.add_task(label, total=self.steps)

    def step(self) -> None:
        self.done_in_run += 1
        if self.bar is not None:
            self.bar.advance(self.run)
            self.bar.advance(self.overall)

    def end_run(self, result: Any) -> None:
        self.finished += 1
        if self.bar is not None and self.done_in_run < self.steps:  # a diverged run
            self.bar.advance(self.overall, self.steps - self.done_in_run)
        if self.lines:
            s = result.summary()
            print(f"[{self.finished}/{self.total_runs}] {result.config.label}: best acc "
                  f"{s['best_val_acc']:.4f}, final loss {s['final_train_loss']:.4f} "
                  f"({s['wall_time_s']:.1f} s)", file=sys.stderr, flush=True)


def _print_summary(runs: list[Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title="lrkit compare", title_justify="left")
    for col in ("schedule", "optimizer", "seed", "best acc", "final acc", "final loss", "time"):
        t.add_column(col, justify="left" if col in ("schedule", "optimizer") else "right")
    for r in runs:
        s = r.summary()
        t.add_row(s["schedule"], s["optimizer"], str(s["seed"]), f"{s['best_val_acc']:.4f}",
                  f"{s['final_val_acc']:.4f}", f"{s['final_train_loss']:.4f}",
                  f"{s['wall_time_s']:.1f}s" + (" diverged" if s["diverged"] else ""))
    Console(highlight=False).print(t)


def _checkpoint_dir(args: argparse.Namespace, rank: int) -> Path | None:
    """The checkpoint folder (checked and created by rank 0), or None without checkpoints."""
    if args.checkpoint_every is None and not args.resume:
        return None
    folder: Path = args.checkpoint_dir or args.output.with_name(
        args.output.name + "-checkpoints")
    if rank != 0:
        return folder
    from lrkit.train.checkpoint import remove_stale

    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--checkpoint-dir {folder}: exists and is not a folder")
    old = sorted(folder.glob("run*.pt")) if folder.is_dir() else []
    if old and not args.resume:
        if not args.force:
            raise UsageError(f"--checkpoint-dir {folder} holds checkpoints of an earlier run: "
                             "use --resume to continue it or --force to start over")
        for f in old:
            f.unlink()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"--checkpoint-dir {folder}: {e.strerror or e}") from None
    remove_stale(folder)
    return folder


def _init_distributed() -> tuple[int, int, bool]:
    """Join the torchrun group when started by torchrun: (rank, world size, we started it)."""
    import os

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0, 1, False
    import torch
    import torch.distributed as dist

    started = False
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        started = True
    return dist.get_rank(), dist.get_world_size(), started


def cmd_compare(args: argparse.Namespace) -> int:
    from lrkit.train.runner import OPTIMIZERS, TaskConfig, default_schedules

    if args.list:
        task = TaskConfig(epochs=args.epochs, steps_per_epoch=23)
        for c in default_schedules(task):
            print(f"{c.name:<14} {c.spec}")
        print(f"(specs shown for --epochs {args.epochs} at 23 steps per epoch)")
        return 0
    for o in args.optimizers:
        if o not in OPTIMIZERS:
            raise UsageError(f"--optimizers: unknown optimizer {o!r}; expected one of "
                             + ", ".join(OPTIMIZERS))
    if not args.optimizers:
        raise UsageError("--optimizers: give at least one optimizer")
    rank, world, started = _init_distributed()
    try:
        code = _compare(args, rank, world)
        if started:  # every rank done with its collectives before the group goes away
            import torch.distributed as dist

            dist.barrier()
        return code
    finally:
        if started:
            import torch.distributed as dist

            dist.destroy_process_group()


def _compare(args: argparse.Namespace, rank: int, world: int) -> int:
    from lrkit.train.runner import RunConfig, TaskConfig, resolve_schedules, train_run

    lrs = _lrs(args.lr, args.optimizers)
    quiet = args.quiet or rank != 0

    from lrkit.train.data import load_digits

    t0 = time.perf_counter()
    data = load_digits()
    task = TaskConfig(
        epochs=args.epochs, batch_size=args.batch_size, threads=args.threads,
        steps_per_epoch=load_digits_steps(data, args.batch_size), accumulate=args.accumulate,
    )
    schedules = resolve_schedules(args.schedules, args.schedule, task)
    if not schedules:
        raise UsageError("--schedules: give at least one schedule")
    configs = [
        RunConfig(s, o, lrs[o], seed)
        for s in schedules for o in args.optimizers for seed in args.seeds
    ]
    data_info = {
        "dataset": "sklearn digits (8x8, 10 classes)",
        "n_train": data.n_train,
        "n_val": int(data.x_val.shape[0]),
        "model": "TinyCNN",
        "processes": world,
    }
    if rank == 0 and args.output.exists() and any(args.output.iterdir()) and not args.force:
        raise UsageError(f"{args.output} exists and is not empty: use --force to overwrite it")
    ckpt_dir = _checkpoint_dir(args, rank)
    if world > 1:
        import torch.distributed as dist

        dist.barrier()  # rank 0 has checked and prepared the folders
    from lrkit.train.checkpoint import Checkpointing, run_file

    done: list[Any] = []
    interrupted = False
    with _Progress(quiet, len(configs), task.total_steps) as bar:
        try:
            for i, cfg in enumerate(configs):
                ckpt = None
                if ckpt_dir is not None:
                    ckpt = Checkpointing(run_file(ckpt_dir, i, cfg.label),
                                         args.checkpoint_every or 100, args.resume)
                bar.start_run(cfg.label)
                result = train_run(cfg, task, data, on_step=bar.step, checkpoint=ckpt)
                done.append(result)
                bar.end_run(result)
        except KeyboardInterrupt:
            interrupted = True
    if rank != 0:
        return 130 if interrupted else 0
    if interrupted and not done:
        print("lrkit compare: interrupted before any run finished: nothing written",
              file=sys.stderr)
        raise KeyboardInterrupt
    partial = None
    if interrupted:
        partial = f"interrupted by the user after {len(done)} of {len(configs)} runs"
    with new_folder(args.output, args.force) as stage:
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)  # finish writing what we have
        try:
            from lrkit.train.report import write_report

            write_report(stage, done, task, data_info=data_info, partial=partial)
        finally:
            signal.signal(signal.SIGINT, old)
    if args.tensorboard is not None and done:
        from lrkit.train.tensorboard import write_tensorboard

        write_tensorboard(args.tensorboard, done, task.steps_per_epoch)
    report = args.output / "report.html"
    elapsed = time.perf_counter() - t0
    if args.quiet:
        print(report)
    else:
        _print_summary(done)
        print(f"{len(done)} runs in {elapsed:.1f} s; report: {report}")
    if interrupted:
        print(f"lrkit compare: interrupted: partial report ({len(done)} of {len(configs)} "
              f"runs) at {report}", file=sys.stderr)
        return 130
    return 0


def load_digits_steps(data: Any, batch_size: int) -> int:
    return int(data.steps_per_epoch(batch_size))
