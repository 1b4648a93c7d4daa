"""Finding a task: built-in names, module:factory, file.py:factory, task arguments, and every
way an entry point can be wrong (one clear error naming it)."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from lrkit.errors import ConfigError
from lrkit.tasks import load_task, parse_task_args
from lrkit.tasks.registry import BUILTIN

GOOD = """
class T:
    name = "t"; metric = "m"; higher_is_better = False; eval_every = 2
    def __init__(self, steps=4): self.steps = steps
    def describe(self): return {}
    def build(self, seed): return None
def make(steps=4): return T(steps)
"""


def _module(folder: Path, name: str, body: str) -> None:
    (folder / f"{name}.py").write_text(textwrap.dedent(body))


def test_parse_task_args() -> None:
    got = parse_task_args(["a=1", "b=2.5", "c=true", "d=null", "e=text", 'f="7"', "g=[1]",
                           "h=nan"])
    assert got == {"a": 1, "b": 2.5, "c": True, "d": None, "e": "text", "f": "7",
                   "g": "[1]", "h": "nan"}
    for bad in (["noequals"], ["1x=2"], ["a=1", "a=2"]):
        with pytest.raises(ConfigError, match="task-arg="):
            parse_task_args(bad)


def test_builtin_digits_and_arguments() -> None:
    assert set(BUILTIN) == {"digits", "tinylm"}
    t = load_task("digits", {"epochs": 3, "batch_size": 100})
    assert (t.steps, t.eval_every) == (3 * 15, 15)  # ceil(1438 / 100) = 15 updates per epoch
    with pytest.raises(ConfigError, match=r"task='digits' does not take these arguments"):
        load_task("digits", {"depth": 3})
    with pytest.raises(ConfigError, match="epochs=0"):
        load_task("digits", {"epochs": 0})


def test_module_and_file_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "mypkg"
    pkg.mkdir()
    _module(pkg, "tasks", GOOD)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    t = load_task("mypkg.tasks:make", {"steps": 9})
    assert (t.name, t.steps) == ("t", 9)
    t = load_task(f"{pkg / 'tasks.py'}:make")
    assert t.steps == 4
    t = load_task("mypkg/tasks.py:T", {"steps": 5})  # a class is a factory too
    assert t.steps == 5


@pytest.mark.parametrize(
    ("entry", "needle"),
    [
        ("nodots", "expected a built-in name"),
        ("no_such_module_xyz:make", "importing 'no_such_module_xyz' failed: ModuleNotFoundError"),
        ("broken:make", "importing 'broken' failed: ZeroDivisionError"),
        ("fine:nothing", "has no attribute 'nothing'"),
        ("fine:VALUE", "is a int, not a callable factory"),
        ("fine:returns_list", "it returned list, which is not a task"),
        ("fine:bad_steps", "steps=0: expected an integer >= 1"),
        ("fine:raises", "failed to build: RuntimeError: no GPU here"),
        ("missing.py:make", "no file missing.py"),
    ],
)
def test_bad_entry_points(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, entry: str,
                          needle: str) -> None:
    _module(tmp_path, "broken", "x = 1 / 0\n")
    _module(tmp_path, "fine", GOOD + textwrap.dedent("""
        VALUE = 3
        def returns_list(): return [1]
        def bad_steps(): return T(0)
        def raises(): raise RuntimeError("no GPU here")
    """))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("broken", "fine"):
        sys.modules.pop(name, None)
    with pytest.raises(ConfigError) as err:
        load_task(entry)
    msg = str(err.value)
    assert needle in msg
    assert "\n" not in msg
    assert msg.startswith(f"task={entry!r}")
