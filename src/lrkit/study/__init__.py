"""Studies: train a task under many schedules, optimizers and seeds, and judge them.

- :func:`compare` (:mod:`lrkit.study.api`): the study, from Python; ``lrkit compare`` is
  the same from the command line.
- :func:`range_test` (:mod:`lrkit.study.findlr`): the learning-rate range test on a task or
  any model and loader; its result can ``.plot()`` itself.
- :func:`run_one` (:mod:`lrkit.study.runner`): one run, the loop that knows no model.
- executors (:mod:`lrkit.study.executors`): in-process, local worker processes, Ray.
- :mod:`lrkit.study.stats`: means, spreads and paired intervals across seeds.
- :mod:`lrkit.study.report`: the report folder; :func:`load_run` reads a run file.

Needs the ``cli`` extra (matplotlib, rich; scikit-learn for the digits task).
"""

from __future__ import annotations

from lrkit.study.api import Study, compare
from lrkit.study.config import RunConfig, ScheduleChoice
from lrkit.study.findlr import RangeTest, range_test
from lrkit.study.record import RunResult, load_run
from lrkit.study.runner import run_one

__all__ = ["RangeTest", "RunConfig", "RunResult", "ScheduleChoice", "Study", "compare",
           "load_run", "range_test", "run_one"]
