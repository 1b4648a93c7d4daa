"""Hostile spec text: how long lrkit takes to accept or refuse it, against a plain safe_load.

Each text is just under the 1 000 000-character limit (or deeply nested), the inputs that
took ``yaml.safe_load`` 8-11 s before lrkit checked size and nesting first. For each:

- ``lrkit``: ``load_yaml(text)`` / ``load_json(text)`` until it raises ``SpecError``;
- ``safe_load``: ``yaml.safe_load(text)`` (pure-Python loader), what lrkit used to call.

Plus the accepted side: a valid 2 000-point piecewise spec in YAML and JSON, and the longest
spec string (10 000 characters). Run alone: ``python benchmarks/bench_spec.py``.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Callable
from typing import Any

import yaml

from lrkit.errors import SpecError
from lrkit.spec import load_json, load_yaml, parse_string

N = 999_000

TEXTS = {
    "YAML flow list, 1e6 chars": "[" + "1," * (N // 2 - 1) + "1]",
    "YAML block list, 1e6 chars": "- 1\n" * (N // 4),
    "YAML mapping, 1e6 chars": "".join(f"k{i}: 1\n" for i in range(N // 10)),
    "2000 nested brackets": "[" * 2000 + "]" * 2000,
}


def once(fn: Callable[[], Any]) -> float:
    t = time.perf_counter()
    with contextlib.suppress(SpecError, yaml.YAMLError, RecursionError):
        fn()
    return time.perf_counter() - t


def best(fn: Callable[[], Any], repeat: int = 3) -> float:
    return min(once(fn) for _ in range(repeat))


def measure() -> list[dict[str, Any]]:
    """Rows: lrkit's time to refuse each text, safe_load's, and the ratio (one run)."""
    rows: list[dict[str, Any]] = []
    sec = "hostile spec text (refused)"
    for name, text in TEXTS.items():
        ours = best(lambda text=text: load_yaml(text))
        theirs = once(lambda text=text: yaml.safe_load(text))
        rows += [
            {"section": sec, "name": f"{name}: lrkit load_yaml", "value": ours * 1e3,
             "unit": "ms", "note": "target < 100 ms", "ok": ours < 0.1},
            {"section": sec, "name": f"{name}: yaml.safe_load", "value": theirs * 1e3,
             "unit": "ms"},
            {"section": sec, "name": f"{name}: safe_load / lrkit", "value": theirs / ours,
             "unit": "x"},
        ]
        j = best(lambda text=text: load_json(text))
        rows.append({"section": sec, "name": f"{name}: lrkit load_json", "value": j * 1e3,
                     "unit": "ms", "ok": j < 0.1})
    sec = "valid specs (accepted)"
    doc = {"kind": "piecewise", "steps": list(range(2000)),
           "values": [1.0 / (1 + i) for i in range(2000)]}
    as_yaml, as_json = yaml.safe_dump(doc), json.dumps(doc)
    k = 1580  # a piecewise string of about 10 000 characters: the longest spec accepted
    text = f"piecewise({list(range(k))}, {[1] * k})".replace(" ", "")
    assert 9000 < len(text) <= 10_000, len(text)
    for name, fn in (("2000-point piecewise, load_yaml", lambda: load_yaml(as_yaml)),
                     ("2000-point piecewise, load_json", lambda: load_json(as_json)),
                     ("10 000-character spec string", lambda: parse_string(text))):
        t = best(fn)
        rows.append({"section": sec, "name": name, "value": t * 1e3, "unit": "ms",
                     "note": "target < 1 s", "ok": t < 1.0})
    return rows


if __name__ == "__main__":
    for row in measure():
        print(f"{row['name']:<55} {row['value']:>10.2f} {row['unit']}", file=sys.stdout)
