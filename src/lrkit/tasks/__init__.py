"""Tasks: the user's model and data as one training run that a study drives.

:mod:`lrkit.tasks.base` states the contract; :mod:`lrkit.tasks.registry` finds a task by name
or ``module:factory`` entry point; ``digits`` and ``tinylm`` are built-in tasks written
against the same contract as a user's.
"""

from __future__ import annotations

from lrkit.tasks.base import CallbackRun, Task, TaskRun, TrainContext, check_task
from lrkit.tasks.registry import BUILTIN, TaskRef, load_task, parse_task_args

__all__ = ["BUILTIN", "CallbackRun", "Task", "TaskRef", "TaskRun", "TrainContext",
           "check_task", "load_task", "parse_task_args"]
