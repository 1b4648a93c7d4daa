"""Build lrkit schedules from the configuration users already have, and export them.

- :func:`from_torch`: a ``torch.optim.lr_scheduler`` object with a closed form.
- :func:`from_timm`: the arguments of timm's ``create_scheduler_v2``.
- :func:`from_mmengine`: an mmengine-style ``param_scheduler`` list of dicts.
- :func:`from_hf`: a Hugging Face ``get_scheduler`` name and its arguments.
- :func:`to_lambda` / :func:`to_optax`: a schedule as a plain function of the step, for
  torch's ``LambdaLR`` or for JAX / optax (any array module; JAX is not required).

Each converter returns a :class:`~lrkit.Schedule`; values relative to the optimizer's base
rate are :class:`~lrkit.Rel`, so one schedule serves every parameter group. Anything a
converter cannot express exactly raises :class:`~lrkit.errors.ConfigError` naming the
argument and its value.
"""

from lrkit.convert._export import to_lambda, to_optax
from lrkit.convert._hf import from_hf
from lrkit.convert._mmengine import from_mmengine
from lrkit.convert._timm import from_timm
from lrkit.convert._torch import from_torch

__all__ = ["from_hf", "from_mmengine", "from_timm", "from_torch", "to_lambda", "to_optax"]
