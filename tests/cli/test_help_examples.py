"""Every example shown by ``lrkit ... --help`` runs as written, and the CLI starts light.

The examples are parsed out of the help texts themselves (the ``examples:`` section each
subcommand prints), so a new example is tested the day it is written; each runs in its own
empty folder through ``lrkit.cli.main`` (the console script's entry point).
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from lrkit.cli import build_parser, main

from ._util import ENV


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (action,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _help_examples(text: str) -> list[str]:
    """The command lines of the ``examples:`` section at the end of a help text."""
    _, sep, section = text.partition("\nexamples:\n")
    return [line.strip() for line in section.splitlines() if line.strip()] if sep else []


SUBCOMMANDS = _subcommands()
EXAMPLES = [(name, ex) for name, p in SUBCOMMANDS.items()
            for ex in _help_examples(p.format_help())]


def test_every_subcommand_shows_examples() -> None:
    assert {"plot", "show", "export", "compare", "find-lr"} <= set(SUBCOMMANDS)
    for name, p in SUBCOMMANDS.items():
        text = p.format_help()
        examples = _help_examples(text)
        assert examples, f"lrkit {name} --help shows no example"
        assert all(e.startswith(f"lrkit {name} ") for e in examples), examples
        # no example hides elsewhere in the text (where this test would not find it)
        assert text.lower().count("example") == 1, text


@pytest.mark.parametrize(("name", "example"), EXAMPLES, ids=[e for _, e in EXAMPLES])
def test_help_example_runs(name: str, example: str, tmp_path: Path,
                           monkeypatch: pytest.MonkeyPatch,
                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    argv = shlex.split(example)
    assert argv[0] == "lrkit"
    status = main(argv[1:])
    out, err = capsys.readouterr()
    assert status == 0, f"{example!r} exited {status}: {err}"
    for flag in ("-o", "--json"):  # the files it says it writes are there
        if flag in argv:
            written = tmp_path / argv[argv.index(flag) + 1]
            assert written.exists(), f"{example!r} did not write {written}"
    if name == "compare" and "-o" in argv:
        res = json.loads((tmp_path / argv[argv.index("-o") + 1] / "results.json").read_text())
        # the custom 'fast=onecycle over 100' keeps its own horizon (not the run's 69)
        fast = next(r for r in res["runs"] if r["schedule"] == "fast")
        lr = fast["per_step"]["lr"]
        assert len(lr) == res["task"]["total_steps"] == 69
        # torch's OneCycleLR over 100 steps (same defaults), stepped for the run's 69 updates
        import torch

        opt = torch.optim.AdamW([torch.zeros(1, requires_grad=True)], lr=fast["base_lr"])
        ref = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=fast["base_lr"], total_steps=100)
        expected = []
        for _ in range(69):
            expected.append(opt.param_groups[0]["lr"])
            opt.step()
            ref.step()
        assert lr == pytest.approx(expected, rel=1e-9)
    if "--format" in argv and "json" in argv:
        json.loads(out)


def test_custom_schedule_horizon() -> None:
    """A custom spec with its own horizon is taken as given; one without gets the run's."""
    from lrkit.study.config import ScheduleChoice, build_schedule

    steps = 3 * 23
    assert build_schedule(ScheduleChoice("a", "cosine over 100"), steps).horizon == 100
    assert build_schedule(ScheduleChoice("b", "cosine(40)"), steps).horizon == 40
    assert build_schedule(ScheduleChoice("c", "warmup(5) then cosine"), steps).horizon == 69


LIGHT = ["--version", "--help", "show 'cosine over 100'", "export 'cosine over 10'",
         "plot --help", "show --help", "export --help"]


def test_light_commands_import_neither_torch_nor_matplotlib(tmp_path: Path) -> None:
    """``--help``, ``--version``, ``show`` and ``export`` start without torch or matplotlib
    (they took seconds to start when they imported torch)."""
    runner = (
        "import shlex, sys\n"
        "from lrkit.cli import main\n"
        "for cmd in sys.argv[1:]:\n"
        "    try:\n"
        "        main(shlex.split(cmd))\n"
        "    except SystemExit:\n"
        "        pass\n"
        "    heavy = sorted(m for m in ('torch', 'matplotlib') if m in sys.modules)\n"
        "    print('IMPORTED', cmd, heavy, file=sys.stderr)\n"
    )
    r = subprocess.run([sys.executable, "-c", runner, *LIGHT], cwd=tmp_path, env=ENV,
                       capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("IMPORTED")]
    assert lines == [f"IMPORTED {cmd} []" for cmd in LIGHT]
