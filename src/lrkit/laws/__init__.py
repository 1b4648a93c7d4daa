"""Loss-curve laws: fit a law to a few runs, predict any schedule's curve, optimize one.

Data in, data out: a :class:`Run` is the rate at every update and the loss at the logged
steps; nothing here knows torch or tasks. Needs SciPy (``pip install lrkit[laws]``); not
imported by ``import lrkit``.

- :func:`fit` fits the multi-power law (Luo et al., 2025) or the annealing law (Tissue et
  al., 2024) robustly, with uncertainty and an identifiability check (:class:`LawFit`).
- :func:`predict` gives a schedule's predicted curve with a band (:class:`Prediction`).
- :mod:`lrkit.laws.optimize` searches WSD schedules and free-form decays.
- :mod:`lrkit.laws.io` reads runs (CSV, TensorBoard, study run files) and law.json.
"""

from lrkit.laws.fit import LawFit, LawWarning, fit
from lrkit.laws.models import LAWS, AnnealingLaw, MultiPowerLaw
from lrkit.laws.predict import Prediction, predict, rates_of, synthetic_run
from lrkit.laws.run import LawError, Run

__all__ = [
    "LAWS",
    "AnnealingLaw",
    "LawError",
    "LawFit",
    "LawWarning",
    "MultiPowerLaw",
    "Prediction",
    "Run",
    "fit",
    "predict",
    "rates_of",
    "synthetic_run",
]
