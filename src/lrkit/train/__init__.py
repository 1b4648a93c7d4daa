"""The built-in comparison task: a tiny CNN on scikit-learn's handwritten digits.

``lrkit compare`` trains the same model under several schedules and optimizers and writes a
report (:mod:`lrkit.train.report`); ``lrkit find-lr`` runs a learning-rate range test
(:mod:`lrkit.train.findlr`), on this task or on any model and loader through the Python API.
Needs the ``cli`` extra (scikit-learn, matplotlib, rich).
"""

from __future__ import annotations

__all__: list[str] = []
