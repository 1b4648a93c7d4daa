"""``lrkit find-lr``: a learning-rate range test on the built-in task."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from lrkit.cli._common import (
    UsageError,
    add_output_options,
    check_new_file,
    positive_float,
    positive_int,
)

__all__ = ["SUMMARY", "add_parser"]

# the line in 'lrkit --help'
SUMMARY = "learning-rate range test on a task"


def add_parser(sub: Any, parent: argparse.ArgumentParser) -> None:
    from lrkit.cli.compare_cmd import add_task_options
    from lrkit.study.config import OPTIMIZERS, PARTNERS
    from lrkit.study.findlr import METHODS

    p = sub.add_parser(
        "find-lr", parents=[parent], help=SUMMARY,
        description="Raise the learning rate step by step (exponential or linear ramp) while "
        "training a task (default: the built-in digits CNN; yours with --task "
        "module:factory), smooth the loss, stop on divergence, and suggest "
        "rates (valley, steepest descent, min-loss/10). Model and optimizer are restored "
        "afterwards. Prints the spec of a one-cycle or poly schedule peaking at the "
        "suggestion for the task's horizon. From Python: lrkit.study.range_test(task) or "
        "range_test(model, optimizer, loader) (docs/howto/range_test.md).",
        examples=[
            "lrkit find-lr --num-steps 40 -o range.png",
            "lrkit find-lr --optimizer sgd --schedule poly --epochs 5 --num-steps 40 "
            "--json range.json",
        ],
    )
    add_task_options(p)
    p.add_argument("--optimizer", choices=tuple(o for o in OPTIMIZERS if o not in PARTNERS),
                   default="adamw", help="optimizer (default adamw; not " + ", ".join(PARTNERS)
                   + ": two base rates, one sweep)")
    p.add_argument("--start-lr", type=positive_float("start-lr"), default=1e-6,
                   help="first rate of the ramp (default 1e-6)")
    p.add_argument("--end-lr", type=positive_float("end-lr"), default=1.0,
                   help="last rate of the ramp (default 1)")
    p.add_argument("--num-steps", type=positive_int("num-steps"), default=100,
                   help="updates in the ramp (default 100)")
    p.add_argument("--ramp", choices=("exp", "linear"), default="exp",
                   help="exponential (geometric, default) or linear ramp")
    p.add_argument("--smoothing", type=float, default=0.9,
                   help="moving-average factor of the loss, 0 <= b < 1 (default 0.9)")
    p.add_argument("--diverge", type=float, default=4.0,
                   help="stop when the smoothed loss exceeds this many times its minimum "
                   "(default 4)")
    p.add_argument("--method", choices=METHODS, default="steepest",
                   help="the suggestion that seeds the printed spec (default steepest)")
    p.add_argument("--schedule", choices=("onecycle", "poly"), default="onecycle",
                   help="the schedule to print a spec for (default onecycle)")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.add_argument("--threads", type=positive_int("threads"), default=1,
                   help="torch threads (default 1)")
    p.add_argument("-o", "--output", type=Path, metavar="FILE",
                   help="plot of the curve with the suggestions (.png or .svg)")
    p.add_argument("--json", type=Path, metavar="FILE",
                   help="write the curve and suggestions as JSON")
    add_output_options(p)
    p.set_defaults(func=cmd_find_lr)


def cmd_find_lr(args: argparse.Namespace) -> int:
    from lrkit.cli.compare_cmd import task_from_args
    from lrkit.study.findlr import plot_range_test, range_test, spec_for

    if args.output is not None:
        if args.output.suffix.lower() not in (".png", ".svg"):
            raise UsageError(f"{args.output}: the plot must end in .png or .svg")
        check_new_file(args.output, args.force)
    if args.json is not None:
        check_new_file(args.json, args.force)
    if args.end_lr <= args.start_lr:
        raise UsageError(f"--end-lr {args.end_lr:g} must be above --start-lr {args.start_lr:g}")
    task, _, _ = task_from_args(args)

    progress: Any = None
    if not args.quiet:
        from rich.progress import Progress

        progress = Progress(transient=True, console=_stderr_console())
        progress.start()
        bar = progress.add_task("range test", total=args.num_steps)

    def on_step(i: int, lr: float, loss: float) -> None:
        if progress is not None:
            progress.update(bar, advance=1, description=f"range test lr={lr:.2e} loss={loss:.3f}")

    try:
        result = range_test(
            task, args.optimizer, seed=args.seed, threads=args.threads,
            start_lr=args.start_lr, end_lr=args.end_lr,
            num_steps=args.num_steps, ramp=args.ramp, smoothing=args.smoothing,
            diverge=args.diverge, on_step=on_step,
        )
    finally:
        if progress is not None:
            progress.stop()
    if not result.suggestions:
        raise UsageError("the range test stopped after too few steps to suggest a rate: "
                         "lower --start-lr or raise --diverge")
    lr = result.suggestions[args.method]
    total = task.steps
    spec = spec_for(lr, args.schedule, total)
    if args.output is not None:
        plot_range_test(result, args.output)
    if args.json is not None:
        args.json.write_text(json.dumps({**result.to_dict(), "method": args.method,
                                         "spec": spec}, indent=1) + "\n")
    if args.quiet:
        print(spec)
        return 0
    stop = "diverged, stopped early" if result.stopped_early else "ran to the end"
    print(f"range test: {len(result.lrs)} steps, {args.optimizer}, "
          f"{result.lrs[0]:.2g} -> {result.lrs[-1]:.2g} ({stop})")
    for name, value in result.suggestions.items():
        mark = "  <- used" if name == args.method else ""
        print(f"  {name:<9} {value:.3g}{mark}")
    print(f"spec ({args.schedule}, peak = {args.method}): {spec}")
    again = "" if args.task == "digits" else f"--task {args.task} "
    again += "".join(f"--task-arg {a} " for a in args.task_arg)
    again += "".join(f"--{k} {v} " for k, v in (("epochs", args.epochs),
                                                  ("batch-size", args.batch_size)) if v)
    print(f"try: lrkit compare {again}--optimizers {args.optimizer} "
          f"--schedule '{args.schedule}={spec}'")
    for path in (args.output, args.json):
        if path is not None:
            print(f"wrote {path}", file=sys.stderr)
    return 0


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)
