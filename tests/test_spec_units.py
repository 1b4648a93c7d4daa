"""Units in spec strings: ``10%`` of the total, ``N epochs``, ``0.5 steps``; and the command
line taking a spec's own ``over N`` as its length.

Expected schedules are built by hand from the definitions (a percentage of the whole total,
rounded up; epochs x steps per epoch); the HF case is checked against transformers itself.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

import lrkit
from lrkit import SpecError
from lrkit.cli import main
from lrkit.schedules import WSD, Cosine, Cyclic, Linear, MultiStep, Poly, Schedule, Warmup
from lrkit.spec import declared_total, parse_string, to_string
from lrkit.units import Units


@pytest.mark.parametrize(("text", "kw", "want"), [
    ("warmup(10%) then cosine over 1000", {}, Warmup(Cosine(900), steps=100)),
    ("warmup(10%) then cosine", {"total_steps": 1000}, Warmup(Cosine(900), steps=100)),
    # rounded up to whole steps: 10% of 15 is 1.5 -> 2 (HF: ceil(N * ratio))
    ("warmup(10%) then cosine over 15", {}, Warmup(Cosine(13), steps=2)),
    # exact decimal arithmetic: 7% of 100 is 7 (the float product 100 * 0.07 is 7.000000000000001)
    ("warmup(7%) then cosine over 100", {}, Warmup(Cosine(93), steps=7)),
    ("warmup(0%) then cosine over 10", {}, Warmup(Cosine(10), steps=0)),
    ("warmup(12.5%) then linear over 80", {}, Warmup(Linear(70), steps=10)),
    ("multistep([50%, 75%], gamma=0.1) over 200", {}, MultiStep((100, 150), gamma=0.1)),
    ("wsd(warmup_steps=10%, decay_steps=20%) over 1000", {},
     WSD(1000, warmup_steps=100, decay_steps=200)),
    # a call's own total_steps is the total its percentages are of
    ("wsd(1000, warmup_steps=10%, decay_steps=20%)", {}, WSD(1000, warmup_steps=100,
                                                           decay_steps=200)),
    ("wsd(total_steps=2 epochs, warmup_steps=10%)", {"steps_per_epoch": 50},
     WSD(100, warmup_steps=10)),
    ("cosine(10%) then linear over 1000", {}, lrkit.Join((Cosine(100), Linear(900)), (100.0,))),
    # the innermost 'over' is the total a percentage is of
    ("(warmup(10%) then cosine over 100) then linear(50)", {},
     lrkit.Join((Warmup(Cosine(90), steps=10), Linear(50)), (100.0,))),
    ("cosine over 10 epochs", {"steps_per_epoch": 50}, Cosine(500)),
    ("cosine over 1 epoch", {"steps_per_epoch": 50}, Cosine(50)),
    ("warmup(2 epochs) then cosine over 10 epochs", {"steps_per_epoch": 50},
     Warmup(Cosine(400), steps=100)),
    ("warmup(0.5 epochs) then cosine over 10 epochs", {"steps_per_epoch": 3},
     Warmup(Cosine(28.5), steps=1.5)),
    ("warmup(2 epochs) then poly(power=0.9)", {"steps_per_epoch": 10, "total_steps": 100},
     Warmup(Poly(80, power=0.9), steps=20)),
    ("multistep([30 epochs, 60 epochs], gamma=0.1)", {"steps_per_epoch": 100},
     MultiStep((3000, 6000), gamma=0.1)),
    # a Units gives its optimizer updates per epoch (100 batches, accumulation 8: 13)
    ("cosine over 2 epochs", {"steps_per_epoch": Units(100, accumulation=8)}, Cosine(26)),
    ("warmup(0.5 steps) then cosine(10)", {}, Warmup(Cosine(10), steps=0.5)),
    ("warmup(3 steps) then cosine over 10 steps", {}, Warmup(Cosine(7), steps=3)),
    ("cosine over 10 epochs", {"steps_per_epoch": 50, "total_steps": 500}, Cosine(500)),
    # a list item and a unit word as a field name stay what they were
    ("piecewise(steps=[0, 0.5, 1], values=[0, 1, 0])", {}, lrkit.Piecewise((0, 0.5, 1),
                                                                           (0, 1, 0))),
])
def test_units(text: str, kw: dict[str, Any], want: Schedule) -> None:
    got = parse_string(text, **kw)
    assert got == want
    assert parse_string(to_string(got)) == got  # printed with every unit resolved


def test_percent_matches_hf_warmup_ratio() -> None:
    """``warmup(p%) then cosine over N`` is HF's cosine with warmup_ratio p/100, step by step."""
    import torch
    from transformers.optimization import get_cosine_schedule_with_warmup

    for ratio, pct, n in ((0.1, "10%", 1000), (0.05, "5%", 333), (0.25, "25%", 10)):
        # HF's rule for a warmup given as a ratio (TrainingArguments.get_warmup_steps):
        # math.ceil(num_training_steps * ratio); importing training_args costs seconds
        warm = math.ceil(n * ratio)
        opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
        hf = get_cosine_schedule_with_warmup(opt, warm, n)
        want = [hf.lr_lambdas[0](k) for k in range(n + 1)]
        got = parse_string(f"warmup({pct}) then cosine over {n}")(np.arange(n + 1.0))
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(("text", "kw", "match"), [
    ("warmup(0.1) then cosine over 1000", {},
     r"at column 8: steps=0.1 is less than one step: for a fraction of the total write a "
     r"percentage, e.g. 10%; for a fraction of one step write '0.1 steps'"),
    ("wsd(warmup_steps=0.05, decay_fraction=0.2) over 10", {}, r"warmup_steps=0.05 .* e.g. 5%"),
    ("cosine over 0.5", {}, r"'over 0.5' is less than one step"),
    ("cosine over 10 epochs", {},
     r"at column 13: '10 epochs' needs the optimizer steps per epoch: pass steps_per_epoch= "
     r"\(Python\) or --steps-per-epoch S \(command line\)"),
    ("warmup(10%) then cosine", {}, r"steps=10% is a percentage of the total steps, but no "
                                    r"total was given: add 'over N'"),
    ("warmup(150%) then cosine over 100", {}, r"steps=150% is invalid: expected a percentage "
                                              r"between 0% and 100%"),
    ("cosine(end=10%) over 100", {}, r"percentage 10% is a number of steps, but end is not a "
                                     r"step count"),
    ("cosine(peak=2 epochs) over 100", {"steps_per_epoch": 3}, r"but peak is not a step count"),
    ("cosine over 10%", {}, r"expected a number of steps > 0 after 'over'"),
    ("cosine over 10 epochs", {"steps_per_epoch": 100, "total_steps": 999},
     r"total steps given twice: 'over 10 epochs' \(1000 steps\) and total_steps=999"),
    ("cosine over 10 epochs", {"steps_per_epoch": 0}, r"steps_per_epoch=0 is invalid"),
    ("cosine over 10 epochs", {"steps_per_epoch": math.nan}, r"steps_per_epoch=nan is invalid"),
    ("cosine over 10 epochs", {"steps_per_epoch": True}, r"steps_per_epoch=True is invalid"),
    ("cosine over 10 epochs", {"steps_per_epoch": "5"}, r"steps_per_epoch='5' is invalid"),
    ("cosine over 10 epochs", {"steps_per_epoch": 10**400}, r"steps_per_epoch=1000"),
    ("warmup(-1 epochs) then cosine over 10", {"steps_per_epoch": 3},
     r"steps=-3 is invalid"),
])
def test_unit_errors(text: str, kw: dict[str, Any], match: str) -> None:
    with pytest.raises(SpecError, match=match):
        parse_string(text, **kw)


def test_the_hints_parse() -> None:
    """What the fraction error suggests reads as the spec it names."""
    assert parse_string("warmup(10%) then cosine over 1000").steps == 100
    assert parse_string("warmup(0.1 steps) then cosine over 1000").steps == 0.1


@pytest.mark.parametrize("s", [
    Warmup(Cosine(10), steps=0.5),
    Cyclic(0.1, 1.0, step_size_up=0.25, step_size_down=0.75),
    lrkit.Hold(Linear(10), after=0.5),
    lrkit.Repeat(Linear(0.5), period=0.5, times=2),
], ids=repr)
def test_fractions_of_a_step_print_with_their_unit(s: Schedule) -> None:
    text = to_string(s)
    assert "steps" in text
    assert parse_string(text) == s


def test_declared_total() -> None:
    assert declared_total("step(30, gamma=0.1) over 100") == 100
    assert declared_total("cosine over 3 epochs", steps_per_epoch=7) == 21
    assert declared_total("cosine(10)") is None
    assert declared_total('{"kind": "cosine", "total_steps": 10}') is None
    assert declared_total({"kind": "cosine"}) is None
    assert declared_total("schedule.yaml") is None  # a file name, not a spec string


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_takes_the_specs_own_length(capsys: pytest.CaptureFixture[str]) -> None:
    # a schedule that never settles, with the length the user gave
    code, out, err = _run(["show", "step(30, gamma=0.1) over 100", "--format", "json"], capsys)
    assert code == 0, err
    assert json.loads(out)["facts"]["total_steps"] == 100
    code, out, err = _run(["export", "warmup(1 epoch) then cosine over 2 epochs",
                           "--steps-per-epoch", "5"], capsys)
    assert code == 0, err
    rows = out.splitlines()
    assert rows[0] == "step,epoch,lr"
    assert len(rows) == 1 + 11  # steps 0..10
    want = Warmup(Cosine(5), steps=5)
    assert [float(r.split(",")[2]) for r in rows[1:]] == [want(k) for k in range(11)]


def test_cli_unit_errors(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(["show", "cosine over 10 epochs"], capsys)
    assert code == 2
    assert "--steps-per-epoch" in err
    code, _, err = _run(["show", "warmup(0.1) then cosine over 1000"], capsys)
    assert code == 2
    assert "e.g. 10%" in err


def test_bad_inputs_page_shows_the_real_messages() -> None:
    """The units table of docs/bad_inputs.md: each spec example gives the message shown."""
    from pathlib import Path

    page = (Path(__file__).resolve().parents[1] / "docs" / "bad_inputs.md").read_text()
    table = page.split("## Units in spec strings", 1)[1].split("\n## ", 1)[0]
    checked = 0
    for row in table.splitlines():
        cells = [c.strip() for c in row.split("|")[1:-1]]
        if len(cells) != 3 or not cells[1].startswith("`") or cells[1].startswith("`parse("):
            continue
        example, shown = cells[1].strip("`"), cells[2].split("`")[1]
        with pytest.raises(SpecError) as info:
            lrkit.parse(example)  # a spec string or JSON text
        assert f"SpecError: {info.value}".startswith(shown.split("...")[0]), example
        checked += 1
    assert checked >= 6


@pytest.mark.parametrize(("yaml_text", "kw", "want"), [
    ("kind: warmup\nsteps: 10%\nschedule: {kind: cosine}", {"total_steps": 1000},
     Warmup(Cosine(900), steps=100)),
    ("kind: warmup\nsteps: 2 epochs\nschedule: {kind: cosine, total_steps: 8 epochs}",
     {"steps_per_epoch": 50}, Warmup(Cosine(400), steps=100)),
    ("kind: wsd\ntotal_steps: 1000\nwarmup_steps: 10%", {}, WSD(1000, warmup_steps=100)),
    ("kind: multistep\nboundaries: [30 epochs, 60 epochs]", {"steps_per_epoch": 10},
     MultiStep((300, 600))),
    ("kind: cosine\ntotal_steps: 0.5", {}, Cosine(0.5)),  # a dict's number is taken as given
])
def test_units_in_dicts(yaml_text: str, kw: dict[str, Any], want: Schedule) -> None:
    import yaml

    from lrkit.spec import from_dict, load_json, load_yaml

    assert load_yaml(yaml_text, **kw) == want
    d = yaml.safe_load(yaml_text)
    assert from_dict(d, **kw) == want
    assert load_json(json.dumps(d), **kw) == want
    assert lrkit.parse(d, **kw) == want


@pytest.mark.parametrize(("d", "kw", "match"), [
    ({"kind": "cosine", "total_steps": "10 epochs"}, {},
     r"schedule\.total_steps: '10 epochs' needs the optimizer steps per epoch"),
    ({"kind": "wsd", "warmup_steps": "10%", "total_steps": "2 epochs"}, {},
     r"schedule\.total_steps: '2 epochs' needs"),
    ({"kind": "warmup", "steps": "10%", "schedule": {"kind": "cosine", "total_steps": 5}}, {},
     r"schedule\.steps: steps=10% is a percentage of the total steps, but no total"),
    ({"kind": "cosine", "end": "10%"}, {"total_steps": 10},
     r"schedule\.end: expected a number or a relative value"),
    ({"kind": "warmup", "steps": "200%", "schedule": {"kind": "cosine"}}, {"total_steps": 10},
     r"schedule\.steps: steps=200% is invalid"),
])
def test_unit_errors_in_dicts(d: dict[str, Any], kw: dict[str, Any], match: str) -> None:
    from lrkit.spec import from_dict

    with pytest.raises(SpecError, match=match):
        from_dict(d, **kw)


def test_cli_spec_files_take_units(tmp_path: Any, capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.yaml").write_text("kind: warmup\nsteps: 1 epoch\nschedule: {kind: cosine}\n")
    code, out, err = _run(["show", "s.yaml", "--epochs", "4", "--steps-per-epoch", "5",
                           "--format", "json"], capsys)
    assert code == 0, err
    shown = json.loads(out)
    assert shown["facts"]["total_steps"] == 20
    assert lrkit.spec.from_dict(shown["dict"]) == Warmup(Cosine(15), steps=5)
    (tmp_path / "bad.json").write_text("[" * 100 + "]" * 100)
    code, _, err = _run(["show", "bad.json", "--steps", "5"], capsys)
    assert code == 2
    assert "bad.json: JSON text nested too deeply" in err
