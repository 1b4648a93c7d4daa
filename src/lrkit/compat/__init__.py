"""Drop-in replacements for schedulers of other code bases, computed in closed form.

- :mod:`lrkit.compat.segmenter`: Segmenter's / SETR's ``PolynomialLR`` (poly decay with an
  overlapping linear warmup, a ``step_size`` staircase and an absolute ``min_lr``), bit for
  bit, plus :func:`~lrkit.compat.segmenter.segmenter_schedule`, the same curve as an lrkit
  :class:`~lrkit.schedules.base.Schedule`.

Nothing is imported here, so ``import lrkit.compat`` stays cheap; import the submodule.
"""

from __future__ import annotations

__all__: list[str] = []
