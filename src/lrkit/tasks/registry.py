"""Finding a task: built-in names and ``module:factory`` entry points (imported, never run
as text), with ``key=value`` arguments.

Forms of ``--task``:

- a built-in name: ``digits``, ``tinylm`` (:data:`BUILTIN`);
- ``package.module:factory``: imported with the current folder on ``sys.path``, so
  ``examples.my_task:make`` works from the repository root;
- ``path/to/file.py:factory``: the file is imported as a module (no package needed).

``factory(**args)`` must return a task (:func:`lrkit.tasks.base.check_task`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.util
import inspect
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lrkit.errors import ConfigError
from lrkit.tasks.base import check_task

__all__ = ["BUILTIN", "TaskRef", "load_task", "parse_task_args", "resolve_factory"]

#: Built-in tasks: name -> entry point.
BUILTIN: dict[str, str] = {
    "digits": "lrkit.tasks.digits:Digits",
    "tinylm": "lrkit.tasks.tinylm:TinyLM",
}


def parse_task_args(items: Sequence[str]) -> dict[str, Any]:
    """``["lr=0.1", "name=x", "deep=true"]`` -> keyword arguments (JSON scalars, else strings).

    Example:
        >>> parse_task_args(["width=16", "text=abc", "flag=true", "eps=1e-3", 'q="7"'])
        {'width': 16, 'text': 'abc', 'flag': True, 'eps': 0.001, 'q': '7'}
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise ConfigError(f"task-arg={item!r} is invalid: expected KEY=VALUE with KEY a "
                              "Python identifier, e.g. width=16")
        if key in out:
            raise ConfigError(f"task-arg={item!r} is invalid: {key!r} is given twice")
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        if isinstance(value, (list, dict)) or (isinstance(value, float) and value != value):
            value = raw
        out[key] = value
    return out


def _import_file(path: Path) -> Any:
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    name = f"_lrkit_task_{path.stem}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def resolve_factory(entry: str) -> Any:
    """The callable an entry point names (``name``, ``module:attr`` or ``file.py:attr``).

    Raises:
        ConfigError: the form is wrong, the module does not import, the attribute is missing
            or not callable (one line naming the entry point).
    """
    target = BUILTIN.get(entry, entry)
    module_name, sep, attr = target.rpartition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"task={entry!r} is invalid: expected a built-in name ("
                          + ", ".join(BUILTIN) + "), module:factory or path/to/file.py:factory")
    try:
        if module_name.endswith(".py"):
            path = Path(module_name)
            if not path.is_file():
                raise ConfigError(f"task={entry!r} is invalid: no file {module_name}")
            module = _import_file(path)
        else:
            cwd = os.getcwd()
            if cwd not in sys.path and "" not in sys.path:
                sys.path.insert(0, cwd)
            module = importlib.import_module(module_name)
    except ConfigError:
        raise
    except Exception as exc:  # the user's module may raise anything while importing
        raise ConfigError(f"task={entry!r} is invalid: importing {module_name!r} failed: "
                          f"{type(exc).__name__}: {exc}") from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ConfigError(f"task={entry!r} is invalid: {module_name!r} has no attribute "
                              f"{attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ConfigError(f"task={entry!r} is invalid: {attr!r} is a {type(obj).__name__}, "
                          "not a callable factory")
    return obj


def load_task(entry: str, args: Mapping[str, Any] | None = None) -> Any:
    """Import ``entry``, call it with ``args`` and check that the result is a task.

    Raises:
        ConfigError: a bad entry point, arguments the factory does not take, a factory that
            raises, or a result that is not a task.

    Example:
        >>> task = load_task("digits", {"epochs": 2})
        >>> task.name, task.steps, task.eval_every
        ('digits', 46, 23)
    """
    args = dict(args or {})
    factory = resolve_factory(entry)
    try:
        inspect.signature(factory).bind(**args)
    except TypeError as exc:
        raise ConfigError(f"task={entry!r} does not take these arguments: {exc} (given: "
                          + (", ".join(args) or "none") + ")") from None
    except ValueError:  # no signature (a builtin): let the call decide
        pass
    try:
        task = factory(**args)
    except ConfigError as exc:
        raise ConfigError(f"task={entry!r}: {exc}") from None
    except Exception as exc:  # the user's factory may raise anything
        raise ConfigError(f"task={entry!r} failed to build: {type(exc).__name__}: {exc}"
                          ) from None
    return check_task(task, entry)


@dataclasses.dataclass(frozen=True)
class TaskRef:
    """A task by entry point and arguments: what travels to worker processes and Ray."""

    entry: str
    args: tuple[tuple[str, Any], ...] = ()

    def load(self) -> Any:
        return load_task(self.entry, dict(self.args))
