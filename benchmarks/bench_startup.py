"""Start-up time of the ``lrkit`` command, as a ratio to a bare ``python -c pass``.

Each command runs in a fresh interpreter (``python -m lrkit ...``, what the ``lrkit`` console
script runs), from the repository's ``src/``, in interleaved rounds; the median wall time of
each is reported, and its ratio to the bare interpreter's median measured in the same rounds.
``--version``, ``--help``, ``show`` and ``export`` import neither torch nor matplotlib
(``tests/cli/test_help_examples.py`` checks that); ``compare --help`` needs torch and is shown
for scale, with ``python -c "import torch"``.

Run alone: ``python benchmarks/bench_startup.py [--rounds N]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

COMMANDS: list[tuple[str, list[str]]] = [
    ("python -c pass", ["-c", "pass"]),
    ("lrkit --version", ["-m", "lrkit", "--version"]),
    ("lrkit --help", ["-m", "lrkit", "--help"]),
    ("lrkit show 'cosine over 100'", ["-m", "lrkit", "show", "cosine over 100"]),
    ("lrkit export 'cosine over 100'", ["-m", "lrkit", "export", "cosine over 100"]),
    ("lrkit compare --help (imports torch)", ["-m", "lrkit", "compare", "--help"]),
    ("python -c 'import torch'", ["-c", "import torch"]),
]
LIGHT = 5  # the first LIGHT commands after the bare interpreter must stay light


def timings(rounds: int) -> dict[str, list[float]]:
    """Wall seconds of each command, ``rounds`` times, interleaved (round-robin)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])])}
    out: dict[str, list[float]] = {name: [] for name, _ in COMMANDS}
    for _ in range(rounds):
        for name, args in COMMANDS:
            t0 = time.perf_counter()
            subprocess.run([sys.executable, *args], env=env, cwd=ROOT, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            out[name].append(time.perf_counter() - t0)
    return out


def measure(rounds: int = 7) -> list[dict[str, Any]]:
    """Rows for the table: median wall time of each command and its ratio to bare python."""
    t = timings(rounds)
    bare = statistics.median(t["python -c pass"])
    sec = f"startup, median of {rounds} fresh interpreters (ratio to python -c pass)"
    rows: list[dict[str, Any]] = []
    for i, (name, _) in enumerate(COMMANDS):
        med = statistics.median(t[name])
        row: dict[str, Any] = {"section": sec, "name": name, "value": med * 1e3, "unit": "ms"}
        rows.append(row)
        if i == 0:
            continue
        ratio = {"section": sec, "name": f"{name} / python -c pass", "value": med / bare,
                 "unit": "x"}
        if i <= LIGHT - 1:
            ratio |= {"note": "no torch, no matplotlib; target < 20x"}
            ratio["ok"] = med / bare < 20
        rows.append(ratio)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    for r in measure(args.rounds):
        print(f"{r['name']:<52} {r['value']:10.3f} {r['unit']}  {r.get('note', '')}")


if __name__ == "__main__":
    main()
