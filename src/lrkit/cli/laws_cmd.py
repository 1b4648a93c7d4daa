"""``lrkit fit``, ``lrkit predict``, ``lrkit optimize``: loss-curve laws from the command line.

Everything heavy (NumPy, SciPy, matplotlib) is imported inside the commands. Outputs are
written only after every computation succeeded, each through a temporary file renamed into
place, so a failing command writes nothing.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lrkit.cli._common import (
    UsageError,
    add_output_options,
    check_new_file,
    positive_float,
    positive_int,
)

__all__ = ["add_parsers"]


def add_parsers(sub: Any, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "fit", parents=[parent], help="fit a loss-curve law to runs; write law.json",
        description="Fit the multi-power law (Luo et al., 2025) or the annealing law "
        "(Tissue et al., 2024) to runs: CSV files with columns step,lr,loss, TensorBoard "
        "event folders (--loss-tag, --lr-tag) or lrkit compare run files / results.json. "
        "Prints the parameters with standard errors, whether they are determined by the "
        "data, and the fit per run; writes law.json. RUN may also be synthetic:SHAPE "
        "(const, cos, wsd, linear): a run drawn from the multi-power law Luo et al. fitted to "
        "their 400M model, with 0.3 %% noise, to try the commands without data.",
        examples=[
            "lrkit fit synthetic:const synthetic:cos synthetic:wsd --bootstrap 2 -o law.json",
        ],
    )
    p.add_argument("runs", nargs="+", metavar="RUN", help="a CSV file, TensorBoard folder, "
                   "run file or results.json")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="FILE",
                   help="the law.json to write")
    p.add_argument("--law", choices=("multi-power", "annealing"), default="multi-power",
                   help="the law (default multi-power)")
    p.add_argument("--schedule", action="append", default=[], metavar="RUN=SPEC",
                   help="the schedule spec of a CSV/TensorBoard run (repeatable): its rates, "
                   "and the check of its lr column")
    p.add_argument("--base-lr", type=positive_float("base-lr"), default=1.0, metavar="LR",
                   help="base rate that relative values in --schedule specs multiply "
                   "(default 1)")
    p.add_argument("--loss-tag", default="loss", help="TensorBoard scalar of the loss")
    p.add_argument("--lr-tag", default=None, help="TensorBoard scalar of the rate")
    p.add_argument("--metric", default="train_loss",
                   help="run files: train_loss (every update) or an eval metric")
    p.add_argument("--average-seeds", action="store_true",
                   help="average runs that share one rate sequence (seeds) before fitting")
    p.add_argument("--only", default=None, metavar="LABELS",
                   help="fit only the runs whose label contains one of these comma-separated "
                   "words (e.g. the schedules of a study to fit on; predict the rest with "
                   "lrkit predict --against)")
    p.add_argument("--from-step", type=_from_step, default=0, metavar="S",
                   help="leave out losses logged before step S (an early transient the law "
                   "does not describe); the rates before S still count. 'auto': the S "
                   "(0 to 40 %% of the shortest run) whose left-out-run refits predict the "
                   "left-out runs best (needs 3 runs for the multi-power law)")
    p.add_argument("--bootstrap", type=int, default=12, metavar="N",
                   help="bootstrap refits behind prediction bands (default 12; 0: none)")
    add_output_options(p)
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser(
        "predict", parents=[parent], help="predict schedules' loss curves from law.json",
        description="Predict the loss curve of each schedule spec from a fitted law: a "
        "table of final losses with the band (bootstrap and left-out-run refits), and "
        "optionally the curves (CSV, JSON: the loss at every step after warmup) and a plot. "
        "Relative values in specs multiply --base-lr (default: the law's fitted peak rate). "
        "LAW is a law.json or luo2025-400m (the multi-power law Luo et al. fitted to their "
        "400M model: peak rate 3e-4, warmup 2160).",
        examples=[
            "lrkit predict luo2025-400m 'warmup(2160) then cos' "
            "'wsd(decay_fraction=0.2, warmup_steps=2160)' --steps 24000 --csv curves.csv",
        ],
    )
    p.add_argument("law", type=Path, help="law.json written by lrkit fit, or luo2025-400m")
    p.add_argument("specs", nargs="*", metavar="SPEC", help="schedule specs")
    p.add_argument("--steps", type=positive_int("steps"), default=None, metavar="N",
                   help="horizon in optimizer updates (needed with SPECs)")
    p.add_argument("--against", nargs="+", default=[], metavar="RUN",
                   help="runs to check the law on (CSV, TensorBoard folder, run file or "
                   "results.json): their predicted and measured losses and the errors")
    p.add_argument("--metric", default="train_loss",
                   help="run files given to --against: train_loss or an eval metric")
    p.add_argument("--average-seeds", action="store_true",
                   help="average --against runs that share one rate sequence")
    p.add_argument("--loss-tag", default="loss", help=argparse.SUPPRESS)
    p.add_argument("--lr-tag", default=None, help=argparse.SUPPRESS)
    p.add_argument("--base-lr", type=positive_float("base-lr"), default=None, metavar="LR",
                   help="base rate that relative values in SPECs multiply (default: the "
                   "law's fitted peak rate)")
    p.add_argument("--extend", type=positive_int("extend"), default=None, metavar="M",
                   help="also predict M more updates (holding the last rate; WSD: moving "
                   "its cooldown to the new end)")
    p.add_argument("--csv", type=Path, metavar="FILE", help="write step,loss,low,high rows")
    p.add_argument("--json", type=Path, metavar="FILE", help="write the curves as JSON")
    p.add_argument("--plot", type=Path, metavar="FILE", help="write a PNG/SVG plot")
    add_output_options(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser(
        "optimize", parents=[parent], help="find the schedule a law predicts to end lowest",
        description="Search the WSD family (decay fraction, linear/cosine/1-sqrt decay, final "
        "value) and a free-form non-increasing schedule after warmup for the lowest "
        "predicted final loss; print its spec next to cosine's and the best WSD's. With "
        "leave-one-run-out refits in the law (fits of three or more runs) candidates are "
        "ranked by their worst prediction over the fit and the refits (--no-robust: the "
        "fit's own prediction). LAW is a law.json or luo2025-400m.",
        examples=["lrkit optimize luo2025-400m --steps 24000 --knots 16 --json best.json"],
    )
    p.add_argument("law", type=Path, help="law.json written by lrkit fit, or luo2025-400m")
    p.add_argument("--steps", type=positive_int("steps"), required=True, metavar="N")
    p.add_argument("--peak", type=positive_float("peak"), default=None, metavar="LR",
                   help="peak rate (default: the fitted one)")
    p.add_argument("--warmup", type=int, default=None, metavar="W",
                   help="warmup updates (default: the fitted runs')")
    p.add_argument("--knots", type=positive_int("knots"), default=40,
                   help="free-form points after warmup (default 40)")
    p.add_argument("--no-robust", dest="robust", action="store_false",
                   help="rank by the fit's own prediction, not the worst over its refits")
    p.add_argument("--json", type=Path, metavar="FILE", help="write the result as JSON")
    p.add_argument("--plot", type=Path, metavar="FILE", help="write a PNG/SVG plot")
    add_output_options(p)
    p.set_defaults(func=cmd_optimize)


def _from_step(text: str) -> int | str:
    """``--from-step``: a step >= 0 or ``auto``."""
    if text == "auto":
        return text
    try:
        step = int(text)
    except ValueError:
        step = -1
    if step < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a step >= 0 or 'auto'")
    return step


def _write(path: Path, write: Callable[[Path], object]) -> None:
    """Write through a temporary file in the same folder, renamed into place."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix or ".tmp",
                               dir=path.parent if str(path.parent) else ".")
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _law_errors() -> tuple[type[Exception], ...]:
    from lrkit.laws import LawError

    return (LawError,)


def _read_runs(args: argparse.Namespace) -> list[Any]:
    from lrkit.laws.io import read_csv, read_run_file, read_tensorboard

    specs: dict[str, Any] = {}
    for item in args.schedule:
        path, sep, spec = item.partition("=")
        if not sep or not spec.strip():
            raise UsageError(f"--schedule {item!r}: expected RUN=SPEC")
        specs[path] = spec
    runs = []
    for name in args.runs:
        if name.startswith("synthetic:"):
            from lrkit.laws.builtin import synthetic

            runs.append(synthetic(name))
            continue
        path = Path(name)
        if not path.exists():
            raise UsageError(f"{name}: no such file or folder")
        spec = specs.pop(name, None)
        if path.is_dir():
            runs.append(read_tensorboard(path, args.loss_tag, args.lr_tag, spec=spec,
                                         base=args.base_lr))
        elif path.suffix.lower() == ".json":
            runs.extend(read_run_file(path, args.metric))
        else:
            runs.append(read_csv(path, spec=spec, base=args.base_lr))
    if specs:
        raise UsageError(f"--schedule names runs not given: {', '.join(specs)}")
    return runs


def cmd_fit(args: argparse.Namespace) -> int:
    import warnings

    from lrkit.laws import LawWarning, fit
    from lrkit.laws.io import average_seeds, save_law

    check_new_file(args.output, args.force)
    if args.bootstrap < 0:
        raise UsageError(f"--bootstrap {args.bootstrap}: expected an integer >= 0")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", LawWarning)
            runs = _read_runs(args)
            if args.only:
                words = [w.strip() for w in args.only.split(",") if w.strip()]
                runs = [r for r in runs if any(w in r.label for w in words)]
                if not runs:
                    raise UsageError(f"--only {args.only}: no run label contains these words")
            if args.average_seeds:
                runs = average_seeds(runs)
            result = fit(runs, args.law, bootstrap=args.bootstrap, start=args.from_step)
    except _law_errors() as e:
        raise UsageError(str(e)) from None
    _write(args.output, lambda p: save_law(result, p))
    for w in caught:
        print(f"warning: {w.message}")
    print(result.table())
    if not args.quiet:
        print(f"wrote {args.output}")
    return 0


def _load(path: Path) -> Any:
    from lrkit.laws.builtin import BUILTIN_LAWS, builtin_law
    from lrkit.laws.io import load_law

    if str(path) in BUILTIN_LAWS and not path.exists():
        return builtin_law(str(path))
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    try:
        return load_law(path)
    except _law_errors() as e:
        raise UsageError(str(e)) from None


def cmd_predict(args: argparse.Namespace) -> int:
    import json
    import warnings

    import numpy as np

    from lrkit.laws import LawWarning, predict
    from lrkit.laws.optimize import extend
    from lrkit.spec import parse

    law = _load(args.law)
    if not args.specs and not args.against:
        raise UsageError("give schedule SPECs (with --steps) or --against RUN...")
    if args.specs and args.steps is None:
        raise UsageError("--steps N is required with SPECs")
    outs = [p for p in (args.csv, args.json, args.plot) if p is not None]
    for out in outs:
        check_new_file(out, args.force)
    if args.against:
        return _predict_against(args, law)
    base = law.unit if args.base_lr is None else args.base_lr
    preds, ext = [], []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", LawWarning)  # listed in the table instead
            for spec in args.specs:
                sched = parse(spec, total_steps=args.steps)
                preds.append(predict(law, sched, args.steps, base=base, label=spec))
                if args.extend:
                    ext.append(extend(law, sched, args.steps, args.extend, base=base))
    except _law_errors() as e:
        raise UsageError(str(e)) from None
    if args.csv:
        def write_csv(p: Path) -> None:
            with p.open("w") as fh:
                fh.write("schedule,step,loss,low,high\n")
                for i, pr in enumerate(preds):
                    lo = pr.low if pr.low is not None else np.full(pr.loss.size, np.nan)
                    hi = pr.high if pr.high is not None else np.full(pr.loss.size, np.nan)
                    for s, v, a, b in zip(pr.steps, pr.loss, lo, hi, strict=True):
                        fh.write(f"{i},{s},{float(v)!r},{float(a)!r},{float(b)!r}\n")
        _write(args.csv, write_csv)
    if args.json:
        data = {"law": str(args.law), "steps": args.steps, "curves": [
            {"spec": pr.label, "step": pr.steps.tolist(), "loss": pr.loss.tolist(),
             "low": None if pr.low is None else pr.low.tolist(),
             "high": None if pr.high is None else pr.high.tolist(),
             "final": pr.final, "warnings": pr.warnings} for pr in preds]}
        _write(args.json, lambda p: p.write_text(json.dumps(data) + "\n"))
    if args.plot:
        _write(args.plot, lambda p: _plot_predictions(preds, p, args.plot.suffix))
    print(f"{'#':>2}  {'final loss':>11}  {'band':>21}  spec")
    for i, pr in enumerate(preds):
        band = pr.final_band
        b = f"{band[0]:.5f} .. {band[1]:.5f}" if band else "-"
        print(f"{i:>2}  {pr.final:>11.5f}  {b:>21}  {pr.label}")
        for w in pr.warnings:
            print(f"    warning: {w}")
    for i, ex in enumerate(ext):
        more = f", cooldown moved to the end {ex['rewsd']:.5f}" if "rewsd" in ex else ""
        print(f"{i:>2}  +{args.extend} updates: holding the last rate {ex['hold']:.5f}{more}")
    if not args.quiet:
        for out in outs:
            print(f"wrote {out}")
    return 0


def _predict_against(args: argparse.Namespace, law: Any) -> int:
    """Predicted against measured for runs the law was not fitted to."""
    import json

    from lrkit.laws.evaluate import held_out, held_out_table
    from lrkit.laws.io import average_seeds

    ns = argparse.Namespace(runs=args.against, schedule=[], base_lr=1.0,
                            loss_tag=args.loss_tag, lr_tag=args.lr_tag, metric=args.metric)
    try:
        runs = _read_runs(ns)
        if args.average_seeds:
            runs = average_seeds(runs)
        rows = held_out(law, runs)
    except _law_errors() as e:
        raise UsageError(str(e)) from None
    if args.json:
        _write(args.json, lambda p: p.write_text(json.dumps({"held_out": rows}, indent=1)
                                                 + "\n"))
    if args.csv:
        def write_csv(p: Path) -> None:
            with p.open("w") as fh:
                fh.write("run,updates,predicted_final,measured_final,final_error,curve_error,"
                         "r2,in_band\n")
                for r in rows:
                    fh.write(f"{r['label']},{r['updates']},{r['predicted_final']!r},"
                             f"{r['measured_final']!r},{r['final_error']!r},"
                             f"{r['curve_error']!r},{r['r2']!r},{int(r['in_band'])}\n")
        _write(args.csv, write_csv)
    if args.plot:
        from lrkit.laws import predict

        def plot(p: Path) -> None:
            import warnings

            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure

            from lrkit.laws import LawWarning

            fig = Figure(figsize=(7, 4.2))
            FigureCanvasAgg(fig)
            ax = fig.add_subplot()
            for run in runs:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", LawWarning)
                    pr = predict(law, run.rates, run.n, band=False, at=run.steps)
                (line,) = ax.plot(run.steps, run.losses, lw=0.6, alpha=0.5)
                ax.plot(run.steps, pr.loss, color=line.get_color(), lw=1.4, label=run.label)
            ax.set_xlabel("step")
            ax.set_ylabel("loss (thin: measured, thick: predicted)")
            ax.legend(fontsize=7)
            fig.tight_layout()
            fig.savefig(p, format=(args.plot.suffix.lower()[1:] or "png"))
        _write(args.plot, plot)
    print(held_out_table(rows))
    if not args.quiet:
        for out in (args.csv, args.json, args.plot):
            if out is not None:
                print(f"wrote {out}")
    return 0


def _plot_predictions(preds: list[Any], path: Path, suffix: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.2))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for pr in preds:
        (line,) = ax.plot(pr.steps, pr.loss, label=pr.label, lw=1.2)
        if pr.low is not None and pr.high is not None:
            ax.fill_between(pr.steps, pr.low, pr.high, color=line.get_color(), alpha=0.2)
    ax.set_xlabel("step")
    ax.set_ylabel("predicted loss")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, format=(suffix.lower()[1:] or "png"))


def cmd_optimize(args: argparse.Namespace) -> int:
    import json

    from lrkit.laws.optimize import optimize
    from lrkit.laws.predict import rates_of

    law = _load(args.law)
    outs = [p for p in (args.json, args.plot) if p is not None]
    for out in outs:
        check_new_file(out, args.force)
    if args.warmup is not None and not 0 <= args.warmup < args.steps - 1:
        raise UsageError(f"--warmup {args.warmup}: expected 0 <= W < steps - 1")
    try:
        res = optimize(law, args.steps, peak=args.peak, warmup=args.warmup, knots=args.knots,
                       robust=args.robust)
    except _law_errors() as e:
        raise UsageError(str(e)) from None
    if args.json:
        data = {"steps": args.steps, **{k: {"spec": c.spec, "final_loss": c.loss,
                                            "worst_refit": c.worst}
                for k, c in (("optimized", res.best), ("best_wsd", res.wsd),
                             ("cosine", res.cosine))},
                "gain_vs_cosine": res.gain_vs_cosine, "gain_vs_wsd": res.gain_vs_wsd}
        _write(args.json, lambda p: p.write_text(json.dumps(data, indent=1) + "\n"))
    if args.plot:
        def plot(p: Path) -> None:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure

            fig = Figure(figsize=(7, 3.6))
            FigureCanvasAgg(fig)
            ax = fig.add_subplot()
            for name, c in (("optimized", res.best), ("best WSD", res.wsd),
                            ("cosine", res.cosine)):
                ax.plot(rates_of(c.schedule, args.steps), label=f"{name}: {c.loss:.4f}")
            ax.set_xlabel("step")
            ax.set_ylabel("rate")
            ax.legend(fontsize=8)
            fig.tight_layout()
            fig.savefig(p, format=(args.plot.suffix.lower()[1:] or "png"))
        _write(args.plot, plot)
    print(res.table())
    if not args.quiet:
        for out in outs:
            print(f"wrote {out}")
    return 0
