"""Run every lrkit benchmark, print one table and write it to BENCHMARKS.md.

Usage (from the repository root, in the project's environment)::

    python benchmarks/run.py                  # everything; GPU rows print 'no GPU' without CUDA
    python benchmarks/run.py --only scheduler vectorized
    python benchmarks/run.py --output -       # print only, do not write BENCHMARKS.md

Each ``bench_*.py`` module exposes ``measure() -> list[row]`` where a row is a dict with
``section``, ``name``, ``value``, ``unit`` and optionally ``note`` and ``ok`` (whether a
target from the issue is met). Ratios are computed from timings taken in the same run, in
the same process, so they are the figures to quote; absolute times depend on the machine.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import os
import platform
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

#: (key, module) in the order they run; bench_inspect is optional (written separately).
#: A module without ``measure()`` runs as a script with ``SCRIPT_ARGS`` (its printed output
#: goes into the table verbatim), under ``SCRIPT_TIMEOUT`` seconds.
SUITES = [
    ("scheduler", "bench_scheduler"),
    ("vectorized", "bench_vectorized"),
    ("compile", "bench_compile"),
    ("gpu", "bench_gpu"),
    ("spec", "bench_spec"),
    ("inspect", "bench_inspect"),
    ("startup", "bench_startup"),
    ("study", "bench_study"),
]

SCRIPT_ARGS = {"bench_inspect": ["--params", "1000000", "--steps", "4"]}
SCRIPT_TIMEOUT = 60

Row = dict[str, Any]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_rev() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT, capture_output=True, text=True, check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT, capture_output=True, text=True, check=True,
        ).stdout.strip()
        return out + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine_info() -> dict[str, str]:
    import numpy as np
    import torch

    import lrkit

    info = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{_cpu_model()}, {os.cpu_count()} logical CPUs, "
        f"torch threads {torch.get_num_threads()}",
        "os": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "lrkit": f"{lrkit.__version__} (git {_git_rev()})",
        "gpu": "no GPU",
    }
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info["gpu"] = (
            f"{props.name}, {props.total_memory / 2**30:.0f} GiB, CUDA {torch.version.cuda}"
        )
    return info


def _fmt_value(row: Row) -> str:
    v = row.get("value")
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    unit = row.get("unit", "")
    if unit == "x":
        return f"{v:.3g}x" if v < 100 else f"{v:.0f}x"
    if isinstance(v, int):
        return f"{v} {unit}".strip()
    if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e6):
        return f"{v:.2e} {unit}".strip()
    return f"{v:.4g} {unit}".strip()


def _fmt_ok(row: Row) -> str:
    ok = row.get("ok")
    return "" if ok is None else ("met" if ok else "MISSED")


def run_script(key: str, module: str) -> list[Row]:
    """Run a benchmark that only prints; its output lines become rows of text."""
    cmd = [sys.executable, str(HERE / f"{module}.py"), *SCRIPT_ARGS.get(module, [])]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=SCRIPT_TIMEOUT,
                              cwd=ROOT, check=False)
        lines = proc.stdout.splitlines() or proc.stderr.splitlines()[-3:]
    except subprocess.TimeoutExpired:
        lines = [f"timed out after {SCRIPT_TIMEOUT} s"]
    section = f"{key}: python benchmarks/{module}.py {' '.join(SCRIPT_ARGS.get(module, []))}"
    return [{"section": section.strip(), "name": line.strip(), "value": ""} for line in lines
            if line.strip()]


def run_suites(keys: list[str] | None) -> list[Row]:
    rows: list[Row] = []
    for key, module in SUITES:
        if keys and key not in keys:
            continue
        if not (HERE / f"{module}.py").exists():
            if keys:
                rows.append({"section": key, "name": f"{module}.py not present", "value": None})
            continue
        start = time.perf_counter()
        print(f"[{key}] running {module} ...", file=sys.stderr, flush=True)
        try:
            mod = importlib.import_module(module)
            got = mod.measure() if hasattr(mod, "measure") else run_script(key, module)
        except Exception as exc:  # a broken suite must not hide the others
            traceback.print_exc()
            got = [{"section": key, "name": f"{module} failed", "value": None,
                    "note": f"{type(exc).__name__}: {exc}"[:120]}]
        print(f"[{key}] done in {time.perf_counter() - start:.1f} s", file=sys.stderr,
              flush=True)
        rows.extend(got)
    return rows


def text_table(rows: list[Row]) -> str:
    lines: list[str] = []
    section = None
    width = min(max([len(r["name"]) for r in rows] + [20]), 58)
    for r in rows:
        if r["section"] != section:
            section = r["section"]
            lines.append("")
            lines.append(f"== {section}")
        lines.append(
            f"  {r['name']:<{width}}  {_fmt_value(r):>14}  {_fmt_ok(r):6}  {r.get('note', '')}"
            .rstrip()
        )
    return "\n".join(lines)


def markdown(rows: list[Row], info: dict[str, str], command: str, elapsed: float) -> str:
    out = [
        "# lrkit benchmarks",
        "",
        "Generated by `" + command + "` (do not edit by hand; rerun to update).",
        "Ratios are measured within this one run; absolute times depend on the machine.",
        "",
        "| | |",
        "|---|---|",
    ]
    out += [f"| {k} | {v} |" for k, v in info.items()]
    out += [f"| total time | {elapsed:.0f} s |", ""]
    section = None
    for r in rows:
        if r["section"] != section:
            section = r["section"]
            out += ["", f"## {section}", "", "| measurement | value | target | note |",
                    "|---|---:|---|---|"]
        note = str(r.get("note", "")).replace("|", "\\|")
        out.append(f"| {r['name']} | {_fmt_value(r)} | {_fmt_ok(r)} | {note} |")
    out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=[k for k, _ in SUITES],
                        help="run only these suites")
    parser.add_argument("--output", default=str(ROOT / "BENCHMARKS.md"),
                        help="where to write the markdown table ('-' for nowhere)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    info = machine_info()
    rows = run_suites(args.only)
    elapsed = time.perf_counter() - start
    print("\n".join(f"{k:8s} {v}" for k, v in info.items()))
    print(text_table(rows))
    print(f"\ntotal {elapsed:.1f} s")
    if args.output != "-":
        command = "python benchmarks/run.py" + (
            " --only " + " ".join(args.only) if args.only else ""
        )
        Path(args.output).write_text(markdown(rows, info, command, elapsed))
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
