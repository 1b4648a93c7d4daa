"""``lrkit plot``, ``lrkit show`` and ``lrkit export``: look at schedules without training."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from lrkit.cli._common import (
    UsageError,
    add_output_options,
    add_range_options,
    check_new_file,
    load_spec,
    positive_int,
    requested_steps,
    step_range,
)

__all__ = ["add_parsers"]

SPEC_HELP = (
    "a schedule spec, e.g. \"warmup(1500) then poly(power=0.9, end=1e-5) over 160000\" "
    "(0.1x = relative to the base rate; step counts may be '10%%' of the total or 'N epochs' "
    "with --steps-per-epoch), or a .json/.yaml file with its dict form; the language: "
    "docs/spec.md"
)


def add_parsers(sub: Any, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "plot", parents=[parent], help="draw schedules to a PNG/SVG file and the terminal",
        description="Draw one or more schedules (rate against step) to a PNG or SVG file and "
        "as text in the terminal, marking the end of warmup, the peak and the final value.",
        examples=[
            "lrkit plot 'warmup(100) then cosine over 1000' -o cosine.png",
            "lrkit plot 'onecycle over 1000' 'warmup(50) then poly(power=0.9) over 1000' "
            "--label onecycle --label poly --base-lr 0.01 --log -o two.svg",
            "lrkit plot 'step(30, gamma=0.1)' --epochs 90 --steps-per-epoch 10 --no-terminal "
            "-o step.png",
        ],
    )
    p.add_argument("specs", nargs="+", metavar="SPEC", help=SPEC_HELP)
    add_range_options(p)
    p.add_argument("-o", "--output", type=Path, metavar="FILE",
                   help="image file, .png or .svg (default: terminal only)")
    p.add_argument("--size", default="900x500", metavar="WxH",
                   help="image size in pixels (default 900x500)")
    p.add_argument("--log", action="store_true", help="logarithmic rate axis")
    p.add_argument("--label", action="append", default=[], metavar="NAME",
                   help="legend label, once per SPEC in order (default: the spec)")
    p.add_argument("--no-terminal", action="store_true", help="skip the terminal rendering")
    p.add_argument("--width", type=positive_int("width"), default=72,
                   help="terminal plot width in characters, >= 24 (default 72)")
    p.add_argument("--height", type=positive_int("height"), default=16,
                   help="terminal plot height in lines, >= 5 (default 16)")
    add_output_options(p)
    p.set_defaults(func=cmd_plot)

    s = sub.add_parser(
        "show", parents=[parent], help="key facts of a schedule and its dict form",
        description="Print the key facts of a schedule (value at start, end of warmup, peak, "
        "milestones, end; total steps) as a table, and its dict form.",
        examples=[
            "lrkit show 'warmup(1500) then poly(power=0.9, end=1e-5) over 160000' --base-lr 0.01",
            "lrkit show 'cosine(end=0.1x)' --epochs 10 --steps-per-epoch 100 --format json",
        ],
    )
    s.add_argument("spec", metavar="SPEC", help=SPEC_HELP)
    add_range_options(s)
    s.add_argument("--format", choices=("table", "json"), default="table",
                   help="table (default) or one JSON object")
    s.set_defaults(func=cmd_show)

    e = sub.add_parser(
        "export", parents=[parent], help="the values at every step as CSV or JSON",
        description="Write the schedule's value at steps 0..N (vectorized evaluation) as CSV "
        "(columns step, epoch when --steps-per-epoch is given, lr) or JSON.",
        examples=[
            "lrkit export 'warmup(10) then cosine over 100' -o cosine.csv",
            "lrkit export 'onecycle over 50' --base-lr 0.1 --format json",
        ],
    )
    e.add_argument("spec", metavar="SPEC", help=SPEC_HELP)
    add_range_options(e)
    e.add_argument("--format", choices=("csv", "json"),
                   help="csv or json (default: from the output's suffix, else csv)")
    e.add_argument("-o", "--output", type=Path, metavar="FILE",
                   help="output file (default: standard output)")
    add_output_options(e)
    e.set_defaults(func=cmd_export)


def _evaluate(args: argparse.Namespace, specs: list[str]) -> tuple[list[Any], int, np.ndarray]:
    n_req = requested_steps(args)
    spe = args.steps_per_epoch
    schedules = [load_spec(s, n_req, spe) for s in specs]
    n = step_range(schedules, specs, n_req, spe)
    return schedules, n, np.arange(n + 1, dtype=np.float64)


def facts(schedule: Any, n: int, base_lr: float) -> dict[str, Any]:
    """Start, warmup end, peak, milestones, end and horizon of a schedule over steps 0..n."""
    steps = np.arange(n + 1, dtype=np.float64)
    values = schedule(steps, base=base_lr)
    peak_at = int(np.argmax(values))
    out: dict[str, Any] = {
        "total_steps": n,
        "horizon": schedule.horizon,
        "start": {"step": 0, "value": float(values[0])},
    }
    marks = dict(schedule.milestones())
    if "warmup_end" in marks:
        w = float(marks.pop("warmup_end"))
        out["warmup_end"] = {"step": w, "value": float(schedule(w, base=base_lr))}
    out["peak"] = {"step": peak_at, "value": float(values[peak_at])}
    out["min"] = {"step": int(np.argmin(values)), "value": float(np.min(values))}
    out["milestones"] = {
        k: {"step": float(v), "value": float(schedule(float(v), base=base_lr))}
        for k, v in sorted(marks.items(), key=lambda kv: kv[1])
        if v >= 0
    }
    out["end"] = {"step": n, "value": float(values[-1])}
    return out


def _dict_form(schedule: Any) -> Any:
    from lrkit.spec import to_dict

    return to_dict(schedule)


def cmd_show(args: argparse.Namespace) -> int:
    (schedule,), n, _ = _evaluate(args, [args.spec])
    info = facts(schedule, n, args.base_lr)
    form = _dict_form(schedule)
    if args.format == "json":
        print(json.dumps({"spec": args.spec, "base_lr": args.base_lr, "facts": info,
                          "dict": form}, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=args.spec, title_justify="left")
    table.add_column("")
    table.add_column("step", justify="right")
    table.add_column("value", justify="right")
    spe = args.steps_per_epoch

    def row(name: str, item: dict[str, Any]) -> None:
        step = item["step"]
        where = f"{step:g}" + (f" (epoch {step / spe:g})" if spe else "")
        table.add_row(name, where, f"{item['value']:.6g}")

    row("start", info["start"])
    if "warmup_end" in info:
        row("warmup end", info["warmup_end"])
    row("peak", info["peak"])
    for k, v in info["milestones"].items():
        row(k.replace("_", " "), v)
    row("end", info["end"])
    console = Console(highlight=False, soft_wrap=True)
    console.print(table)
    h = info["horizon"]
    console.print(
        f"total steps: {n}  (horizon: {'never settles' if h is None else f'{h:g}'}; "
        f"base lr {args.base_lr:g})"
    )
    console.print("dict form:")
    console.print(json.dumps(form, indent=2), markup=False)
    return 0


def _format_values(
    values: np.ndarray, steps: np.ndarray, fmt: str, args: argparse.Namespace, n: int
) -> str:
    spe = args.steps_per_epoch
    if fmt == "json":
        obj: dict[str, Any] = {
            "spec": args.spec,
            "base_lr": args.base_lr,
            "total_steps": n,
            "steps": [int(s) for s in steps],
            "values": [float(v) for v in values],
        }
        if spe:
            obj["steps_per_epoch"] = spe
        return json.dumps(obj) + "\n"
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["step", "epoch", "lr"] if spe else ["step", "lr"])
    for s, v in zip(steps, values, strict=False):
        epoch = [repr(float(s) / spe)] if spe else []
        w.writerow([int(s), *epoch, repr(float(v))])
    return buf.getvalue()


def cmd_export(args: argparse.Namespace) -> int:
    fmt = args.format
    if fmt is None:
        suffix = args.output.suffix.lower() if args.output else ""
        fmt = "json" if suffix == ".json" else "csv"
    if args.output is not None:
        check_new_file(args.output, args.force)
    (schedule,), n, steps = _evaluate(args, [args.spec])
    values = schedule(steps, base=args.base_lr)
    text = _format_values(values, steps, fmt, args, n)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    args.output.write_text(text)
    if not args.quiet:
        print(f"wrote {n + 1} values ({fmt}) to {args.output}", file=sys.stderr)
    return 0


def _parse_size(text: str) -> tuple[int, int]:
    w, sep, h = text.lower().partition("x")
    try:
        size = (int(w), int(h))
    except ValueError:
        size = (0, 0)
    if not sep or min(size) < 50 or max(size) > 10000:
        raise UsageError(f"--size {text!r}: expected WIDTHxHEIGHT in pixels, e.g. 900x500 "
                         "(each 50..10000)")
    return size


def _marks_line(schedule: Any, n: int, base_lr: float) -> str:
    info = facts(schedule, n, base_lr)
    parts = []
    if "warmup_end" in info:
        w = info["warmup_end"]
        parts.append(f"warmup end {w['value']:.4g} @ {w['step']:g}")
    parts.append(f"peak {info['peak']['value']:.4g} @ {info['peak']['step']}")
    parts.append(f"final {info['end']['value']:.4g} @ {n}")
    return ", ".join(parts)


def _draw(args: argparse.Namespace, schedules: list[Any], labels: list[str], n: int,
          size: tuple[int, int]) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from lrkit.plot import plot_schedules

    dpi = 100
    fig = Figure(figsize=(size[0] / dpi, size[1] / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    curves = dict(zip(labels, schedules, strict=True))
    plot_schedules(curves, steps=n, base_lr=args.base_lr, log=args.log, ax=ax)
    spe = args.steps_per_epoch
    if spe:
        top = ax.secondary_xaxis(
            "top", functions=(lambda s: s / spe, lambda e: e * spe)
        )
        top.set_xlabel("epoch")
    fig.tight_layout()
    out: Path = args.output
    fig.savefig(out, format=out.suffix.lower()[1:], dpi=dpi)


def cmd_plot(args: argparse.Namespace) -> int:
    if args.label and len(args.label) != len(args.specs):
        raise UsageError(f"--label given {len(args.label)} times for {len(args.specs)} specs: "
                         "give one per SPEC")
    size = _parse_size(args.size)
    if args.output is not None:
        if args.output.suffix.lower() not in (".png", ".svg"):
            raise UsageError(f"{args.output}: the image must end in .png or .svg")
        check_new_file(args.output, args.force)
    elif args.no_terminal:
        raise UsageError("nothing to draw: --no-terminal needs -o FILE")
    schedules, n, _ = _evaluate(args, args.specs)
    labels = args.label or args.specs
    if len(set(labels)) != len(labels):
        raise UsageError("two schedules have the same label: give --label for each SPEC")
    if args.output is not None:
        _draw(args, schedules, labels, n, size)
    if not args.no_terminal and not args.quiet:
        from lrkit.plot import render_terminal

        for label, sched in zip(labels, schedules, strict=False):
            print(label)
            print(render_terminal(sched, n, width=args.width, height=args.height,
                                  base_lr=args.base_lr))
            print("  " + _marks_line(sched, n, args.base_lr))
    if args.output is not None:
        if args.quiet:
            print(args.output)
        else:
            print(f"wrote {args.output} ({size[0]}x{size[1]})", file=sys.stderr)
    return 0
