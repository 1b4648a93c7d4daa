"""``lrkit compare``: a schedule study on a task (built-in or yours) across seeds."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from typing import Any

from lrkit.cli._common import UsageError, add_output_options, new_folder, positive_int

__all__ = ["SUMMARY", "add_parser", "add_task_options", "task_from_args"]

# the line in 'lrkit --help'
SUMMARY = "train a task under several schedules, optimizers and seeds; write a report"


def _csv_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(t) for t in _csv_list(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds={text!r}: expected integers, e.g. 0,1,2") from None
    if not seeds or min(seeds) < 0:
        raise argparse.ArgumentTypeError(f"seeds={text!r}: expected integers >= 0, e.g. 0,1,2")
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"seeds={text!r}: a seed is repeated")
    return seeds


def add_task_options(p: argparse.ArgumentParser) -> None:
    """``--task``, ``--task-arg``, and the ``--epochs``/``--batch-size`` shortcuts."""
    p.add_argument("--task", default="digits", metavar="NAME|MODULE:FACTORY",
                   help="what to train: a built-in task (digits, tinylm), an importable "
                   "'package.module:factory' (the current folder is on the import path, e.g. "
                   "'mypkg.tasks:make') or 'path/to/file.py:factory' (default digits)")
    p.add_argument("--task-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="keyword argument of the task factory (repeatable; VALUE is read as "
                   "a JSON number/true/false/null/\"string\", else as text)")
    p.add_argument("--epochs", type=positive_int("epochs"), default=None,
                   help="shortcut for --task-arg epochs=E (digits: default 10)")
    p.add_argument("--batch-size", type=positive_int("batch-size"), default=None,
                   help="shortcut for --task-arg batch_size=B (digits: default 64)")


def task_from_args(args: argparse.Namespace) -> tuple[Any, Any, dict[str, Any]]:
    """(task, worker source, task record) from the task options."""
    from lrkit.study.api import resolve_task
    from lrkit.tasks.registry import parse_task_args

    targs = parse_task_args(args.task_arg)
    for key, value in (("epochs", args.epochs), ("batch_size", args.batch_size)):
        if value is not None:
            if key in targs:
                raise UsageError(f"--{key.replace('_', '-')} and --task-arg {key}=... both "
                                 "given: keep one")
            targs[key] = value
    return resolve_task(args.task, targs)


def add_parser(sub: Any, parent: argparse.ArgumentParser) -> None:
    from lrkit.study.config import OPTIMIZERS, PRESETS

    p = sub.add_parser(
        "compare", parents=[parent],
        help=SUMMARY,
        description="Train a task (default: a small CNN on scikit-learn's 8x8 digits, no "
        "download; or your own model: --task module:factory) under several schedules and "
        "optimizers, each with several seeds, in parallel worker processes (or on Ray), and "
        "write a report folder: report.html (the verdict per optimizer first: best schedule, "
        "or a tie within noise, from paired comparisons across seeds), PNG figures, "
        "results.json, results.csv (per update), summary.csv and runs/ (one run file per "
        "run). Fixed seeds give identical numbers run to run and for any number of workers. "
        "Ctrl-C keeps the finished runs and writes a partial report. Under torchrun runs use "
        "DistributedDataParallel one after another; only rank 0 writes.",
        epilog="lrkit's schedules: " + ", ".join(PRESETS) + " (see --list).",
        examples=[
            "lrkit compare --schedules setr,onecycle --schedule 'fast=onecycle over 100' "
            "--optimizers adamw --epochs 3 --seeds 0 -o out",
            "lrkit compare --list",
        ],
    )
    add_task_options(p)
    p.add_argument(
        "--schedules", type=_csv_list, metavar="NAMES",
        help="named schedules to run, comma-separated (default: the task's own set, else "
        "lrkit's eight, unless --schedule is given)",
    )
    p.add_argument(
        "--schedule", action="append", default=[], metavar="[LABEL=]SPEC",
        help="a custom schedule spec (repeatable); its horizon defaults to the whole run",
    )
    p.add_argument(
        "--optimizers", type=_csv_list, default=["sgd", "adamw"], metavar="NAMES",
        help="comma-separated, from " + ", ".join(OPTIMIZERS) + " (default: sgd,adamw; "
        "muon: torch's Muon on the hidden weight matrices, AdamW at adamw's rate on the "
        "rest, one schedule for both)",
    )
    p.add_argument(
        "--lr", action="append", default=[], metavar="OPT=LR",
        help="base learning rate of an optimizer (repeatable); defaults: the task's, else "
        + ", ".join(f"{k}={v[0]:g}" for k, v in OPTIMIZERS.items()),
    )
    p.add_argument("--steps", type=positive_int("steps"), default=None, metavar="N",
                   help="optimizer updates per run (default: the task's)")
    p.add_argument("--seeds", type=_seeds, default=[0, 1, 2], metavar="S[,S...]",
                   help="seeds; one run per seed and configuration, paired across schedules "
                   "(default 0,1,2)")
    p.add_argument("--threads", type=positive_int("threads"), default=1,
                   help="torch threads per run, fixed for reproducibility (default 1)")
    p.add_argument("--accumulate", type=positive_int("accumulate"), default=1, metavar="K",
                   help="gradient accumulation: split each batch into K micro-batches per "
                   "optimizer update (the schedule counts updates; default 1)")
    p.add_argument("--workers", type=positive_int("workers"), default=None, metavar="N",
                   help="runs in parallel (default: the number of CPUs, at most one per "
                   "run; 1: one after another in this process)")
    p.add_argument("--backend", choices=("local", "ray"), default="local",
                   help="local worker processes (default) or Ray (pip install 'lrkit[ray]')")
    p.add_argument("--ray-address", default=None, metavar="HOST:PORT",
                   help="the Ray cluster to use (ray://HOST:PORT, HOST:PORT or auto); default: "
                   "a local Ray instance with --workers CPUs")
    p.add_argument("--checkpoint-every", type=positive_int("checkpoint-every"), default=None,
                   metavar="N",
                   help="save each run's full state every N optimizer updates (and at its end), "
                   "atomically, to --checkpoint-dir (default with --resume: 100)")
    p.add_argument("--checkpoint-dir", type=Path, default=None, metavar="DIR",
                   help="checkpoint folder (default: OUTPUT-checkpoints beside the report "
                   "folder; shared by all workers, so on a Ray cluster a shared file system)")
    p.add_argument("--resume", action="store_true",
                   help="continue from the checkpoints in --checkpoint-dir after a crash or "
                   "kill: finished runs are not repeated, the others continue bit for bit")
    p.add_argument("-o", "--output", type=Path, default=Path("lrkit-report"), metavar="DIR",
                   help="report folder (default ./lrkit-report)")
    p.add_argument("--tensorboard", type=Path, default=None, metavar="DIR",
                   help="also write every run as a TensorBoard run under DIR (needs the "
                   "tensorboard package)")
    p.add_argument("--predict", type=_csv_list, default=None, metavar="NAMES",
                   help="after the study, fit a loss-curve law per optimizer on these "
                   "schedules' runs (comma-separated names of the study's schedules, seeds "
                   "averaged) and predict every other schedule: the report shows predicted "
                   "against measured curves with their errors and gets law.json")
    p.add_argument("--law", choices=("multi-power", "annealing"), default=None,
                   help="the law --predict fits (default multi-power)")
    p.add_argument("--list", action="store_true",
                   help="list the task's default schedules with their specs and exit")
    add_output_options(p)
    p.set_defaults(func=cmd_compare)


def _lrs(items: list[str], optimizers: list[str]) -> dict[str, float]:
    from lrkit._validate import check_number

    out: dict[str, float] = {}
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


def _print_summary(verdicts: list[Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    from lrkit.study.stats import decimals_for, fmt

    console = Console(highlight=False)
    for v in verdicts:
        t = Table(title=f"{v.optimizer} (ranked on final {v.metric})", title_justify="left")
        for col in ("schedule", "mean", "sd", "diff vs best [95%]", "verdict"):
            t.add_column(col, justify="left" if col in ("schedule", "verdict") else "right")
        dec = decimals_for([r.mean for r in v.rows])
        for r in v.rows:
            ci = "" if r.verdict == "best" or r.verdict in ("diverged", "failed") else (
                f"{fmt(r.diff, dec)} [{fmt(r.low, dec)}, {fmt(r.high, dec)}]")
            t.add_row(r.schedule, fmt(r.mean, dec), fmt(r.sd, dec), ci,
                      r.verdict + (f" ({r.note})" if r.note else ""))
        console.print(t)
        console.print(v.sentence)


def _checkpoint_dir(args: argparse.Namespace, rank: int) -> Path | None:
    """The checkpoint folder (checked and created by rank 0), or None without checkpoints."""
    if args.checkpoint_every is None and not args.resume:
        return None
    folder: Path = args.checkpoint_dir or args.output.with_name(
        args.output.name + "-checkpoints")
    if rank != 0:
        return folder
    from lrkit.study.checkpoint import remove_stale

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
    from lrkit.study.config import OPTIMIZERS, default_schedules

    for o in args.optimizers:
        if o not in OPTIMIZERS:
            raise UsageError(f"--optimizers: unknown optimizer {o!r}; expected one of "
                             + ", ".join(OPTIMIZERS))
    if not args.optimizers:
        raise UsageError("--optimizers: give at least one optimizer")
    if args.list:
        task, _, _ = task_from_args(args)
        steps = args.steps or task.steps
        for c in default_schedules(task, steps):
            print(f"{c.name:<14} {c.spec}")
        print(f"(specs shown for task {task.name!r}: {steps} steps, evaluated every "
              f"{task.eval_every})")
        return 0
    if args.ray_address and args.backend != "ray":
        raise UsageError("--ray-address needs --backend ray")
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


def _check_predict(args: argparse.Namespace, names: list[str]) -> None:
    """--predict names schedules of the study and leaves at least one to predict."""
    if args.predict is None:
        if args.law is not None:
            raise UsageError("--law needs --predict NAMES (the schedules to fit it on)")
        return
    study = list(dict.fromkeys(names))
    given = ",".join(args.predict)
    unknown = [n for n in args.predict if n not in study]
    if not args.predict:
        raise UsageError(f"--predict {given!r}: give the schedules to fit on, among "
                         f"{', '.join(study)}")
    if unknown:
        raise UsageError(f"--predict {given!r}: {', '.join(map(repr, unknown))} "
                         f"{'is not a schedule' if len(unknown) == 1 else 'are not schedules'}"
                         f" of this study; expected names among {', '.join(study)}")
    if len(set(args.predict)) == len(study):
        raise UsageError(f"--predict {given!r}: names every schedule of the study, so "
                         "nothing is left to predict; leave at least one out")


def _compare(args: argparse.Namespace, rank: int, world: int) -> int:
    from lrkit.study.api import default_workers, execute_study, plan_runs, study_facts
    from lrkit.study.executors import InProcess, make_executor
    from lrkit.study.progress import Progress

    t0 = time.perf_counter()
    task, source, info = task_from_args(args)
    lrs = _lrs(args.lr, args.optimizers)
    configs = plan_runs(task, schedules=args.schedules, specs=args.schedule,
                        optimizers=args.optimizers, lrs=lrs, seeds=args.seeds,
                        steps=args.steps, accumulate=args.accumulate)
    _check_predict(args, [c.schedule.name for c in configs])
    if rank == 0 and args.output.exists() and any(args.output.iterdir()) and not args.force:
        raise UsageError(f"{args.output} exists and is not empty: use --force to overwrite it")
    if rank == 0 and args.output.exists() and not args.output.is_dir():
        raise UsageError(f"{args.output} exists and is not a folder")
    ckpt_dir = _checkpoint_dir(args, rank)
    workers = args.workers or default_workers(len(configs))
    if world > 1:
        import torch.distributed as dist

        dist.barrier()  # rank 0 has checked and prepared the folders
        executor: Any = InProcess()  # every rank runs every run, DDP inside
    else:
        executor = make_executor(args.backend, workers, args.ray_address)
    quiet = args.quiet or rank != 0
    labels = {i: c.label for i, c in enumerate(configs)}
    with Progress(quiet, labels, {i: c.steps for i, c in enumerate(configs)},
                  task.metric) as bar:
        done, interrupted = execute_study(
            source, configs, info, executor=executor, threads=args.threads,
            checkpoint_dir=ckpt_dir, checkpoint_every=args.checkpoint_every,
            resume=args.resume, progress=bar)
    if rank != 0:
        return 130 if interrupted else 0
    if interrupted and not done:
        print("lrkit compare: interrupted before any run finished: nothing written",
              file=sys.stderr)
        raise KeyboardInterrupt
    partial = None
    if interrupted:
        partial = f"interrupted by the user after {len(done)} of {len(configs)} runs"
    facts = study_facts(configs, done, 1 if world > 1 else workers, executor.name,
                        args.threads, world)
    with new_folder(args.output, args.force) as stage:
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)  # finish writing what we have
        try:
            from lrkit.study.report import write_report

            extra = []
            if args.predict:
                from lrkit.study.prediction import predict_section

                extra.append(predict_section(args.predict, args.law or "multi-power"))
            write_report(stage, done, task=info, study=facts, partial=partial,
                         sections=extra)
        finally:
            signal.signal(signal.SIGINT, old)
    if args.tensorboard is not None and done:
        from lrkit.study.tensorboard import write_tensorboard

        write_tensorboard(args.tensorboard, done)
    report = args.output / "report.html"
    elapsed = time.perf_counter() - t0
    failed = [r for r in done if r.status == "failed"]
    for r in failed:
        print(f"lrkit compare: error: run {r.config.label} failed: {r.error}", file=sys.stderr)
    if args.quiet:
        print(report)
    else:
        from lrkit.study.stats import summarize

        _print_summary(summarize(done, info["metric"], info["higher_is_better"]))
        print(f"{len(done)} runs in {elapsed:.1f} s; report: {report}")
    if interrupted:
        print(f"lrkit compare: interrupted: partial report ({len(done)} of {len(configs)} "
              f"runs) at {report}", file=sys.stderr)
        return 130
    return 2 if failed else 0
