"""Every spec lrkit prints parses back: ``compare --list`` and the report's spec column (the
built-in schedules), ``lrkit show``'s dict form, the names error hints suggest, and every
example of docs/spec.md. (``to_string`` of every registered kind: tests/test_spec.py.)
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

import lrkit
from lrkit import SpecError
from lrkit.cli import main
from lrkit.compat.segmenter import Segmenter, segmenter_schedule
from lrkit.spec import _registry as reg
from lrkit.spec import from_dict, kinds, parse_string, to_string
from lrkit.study.config import PRESETS, default_schedules
from lrkit.tasks.digits import Digits

PAGE = (Path(__file__).resolve().parents[1] / "docs" / "spec.md").read_text()
NAMES = PAGE.split("## Every name", 1)[1].split("\n## ", 1)[0]  # the table of names


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    try:
        code = main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    assert code == 0, out.err
    return out.out


def test_compare_list_prints_specs_that_parse(capsys: pytest.CaptureFixture[str]) -> None:
    out = _run(["compare", "--list", "--epochs", "3"], capsys)
    rows = [line.split(None, 1) for line in out.splitlines() if not line.startswith("(")]
    assert [name for name, _ in rows] == list(PRESETS)
    for name, spec in rows:
        s = lrkit.parse(spec)
        assert lrkit.parse(to_string(s)) == s, name


def test_the_report_specs_parse_and_segmenter_is_the_drop_in() -> None:
    task = Digits(epochs=3)
    for choice in default_schedules(task):
        lrkit.parse(choice.spec)  # the report prints choice.spec
    seg = next(c for c in default_schedules(task) if c.name == "segmenter")
    s = lrkit.parse(seg.spec)
    assert isinstance(s, Segmenter)
    # the same rates as the drop-in's schedule the comparison trains with (see study/runner.py)
    want = segmenter_schedule(step_size=1, iter_warmup=0, iter_max=task.steps,
                              power=0.9, min_lr=1e-5)
    steps = np.arange(task.steps + 5, dtype=np.float64)
    assert np.array_equal(s(steps, base=0.05), want(steps, base=0.05))


@pytest.mark.parametrize("spec", ["warmup(2 epochs) then cosine over 10 epochs",
                                  "segmenter(1000, power=0.9, warmup_steps=10%, end=1e-5)"])
def test_show_dict_form_reads_back(spec: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = _run(["show", spec, "--steps-per-epoch", "7", "--format", "json"], capsys)
    shown = json.loads(out)
    assert from_dict(shown["dict"]) == lrkit.parse(spec, steps_per_epoch=7)


@pytest.mark.parametrize(("typo", "want"), [("segmentr(100)", "segmenter"),
                                            ("segmenter_pol(100)", "segmenter_poly"),
                                            ("cosin over 10", "cosine"),
                                            ("warmpu(10) then cos over 100", "warmup")])
def test_suggested_names_parse(typo: str, want: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_string(typo)
    suggested = re.findall(r"did you mean ([^?]*)\?", str(info.value))[0]
    names = re.findall(r"'([^']*)'", suggested)
    assert want in names
    fixed = typo.replace(typo.split("(")[0].split()[0], want, 1)
    parse_string(fixed)


def test_segmenter_hint_names_the_whole_scheduler() -> None:
    with pytest.raises(SpecError, match=r"did you mean 'segmenter'"):
        parse_string("segmentr(100)")
    assert isinstance(parse_string("segmenter(100)"), Segmenter)


def test_every_kind_and_alias_is_on_the_spec_page() -> None:
    table = [line.split("|") for line in NAMES.splitlines() if line.startswith("| `")]
    names: set[str] = set()
    for row in table:
        names.update(re.findall(r"`([a-z_]+)`", row[1]))
    registered = {k for k, cls in kinds().items() if cls.__module__.startswith("lrkit.")}
    aliases = {n for n in reg.names() if n not in kinds()}
    assert registered | aliases <= names


def test_every_spec_example_on_the_page_parses() -> None:
    """Examples in tables and the command-line block (the python blocks run in tests/docs)."""
    cells = [row.split("|")[3].strip().strip("`")
             for row in NAMES.splitlines() if row.startswith("| `")]
    for example in cells:
        s = parse_string(example, steps_per_epoch=100)
        assert parse_string(to_string(s)) == s
    commands = re.findall(r'^lrkit \w+ "([^"]+)" --steps-per-epoch (\d+)', PAGE, re.M)
    assert commands
    for spec, spe in commands:
        parse_string(spec, steps_per_epoch=int(spe))
