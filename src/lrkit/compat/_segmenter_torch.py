"""The torch side of :mod:`lrkit.compat.segmenter`: Segmenter's ``PolynomialLR`` drop-in.

Imported from :mod:`lrkit.compat.segmenter` on first use of ``PolynomialLR`` (that module,
the closed-form schedule, does not import torch).
"""

from __future__ import annotations

from typing import Any

import torch
from torch.optim.lr_scheduler import LRScheduler

from lrkit._validate import check_int
from lrkit.compat.segmenter import _PYTHON, _config, segmenter_schedule
from lrkit.errors import StateError
from lrkit.schedules.base import Schedule

__all__ = ["PolynomialLR"]

_CONFIG_KEYS = ("step_size", "iter_warmup", "iter_max", "power", "min_lr")
_CACHE_KEYS = ("_schedule", "_bound")


class PolynomialLR(LRScheduler):
    r"""Drop-in for Segmenter's ``PolynomialLR``: the same rates, bit for bit, in closed form.

    Rate at step :math:`k` (see :mod:`lrkit.compat.segmenter` for the formula and quirks) is
    ``segmenter_schedule(...)(k, base=group's initial lr)``, evaluated in Python floats.
    Step it once per optimizer update, after ``optimizer.step()``, with :meth:`step_update`
    (as Segmenter's engine does) or :meth:`step`.

    Differences from the original, all for configurations or uses it gets wrong:

    - invalid arguments raise :class:`~lrkit.errors.ConfigError` naming the parameter
      (``iter_max < 1``, ``iter_warmup > iter_max``, ``step_size`` not an integer >= 1,
      ``power <= 0``, negative or non-finite values) instead of later producing negative or
      complex rates or ``ZeroDivisionError``;
    - the rate depends only on the step, never on ``group["lr"]``: :meth:`load_state_dict`
      alone restores the exact rate (it writes it into the optimizer), so resuming does not
      depend on also restoring the optimizer, and ``step(epoch)`` is exact;
    - step 0 uses the group's ``initial_lr`` (the base rate), which only differs from the
      original's ``group["lr"]`` if another scheduler set ``initial_lr`` earlier;
    - :meth:`state_dict` holds plain values only (``torch.load(weights_only=True)`` works) and
      loading a state saved with a different configuration raises
      :class:`~lrkit.errors.StateError` (the original silently adopted it).

    ``last_epoch`` keeps torch's meaning: ``-1`` starts; ``k >= 0`` needs ``initial_lr`` in
    every group (``KeyError`` otherwise) and makes the constructor's step go to ``k + 1``.

    Args:
        optimizer: the wrapped optimizer.
        step_size, iter_warmup, iter_max, power, min_lr: as :func:`segmenter_schedule`.
        last_epoch: the index of the last step taken (``-1``: start).

    Example:
        >>> import torch
        >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
        >>> sched = PolynomialLR(opt, step_size=1, iter_warmup=2, iter_max=4, power=1.0)
        >>> rates = [opt.param_groups[0]["lr"]]
        >>> for k in range(1, 6):
        ...     opt.step()
        ...     sched.step_update(num_updates=k)
        ...     rates.append(opt.param_groups[0]["lr"])
        >>> rates
        [0.1, 0.025, 0.05, 0.025, 0.0, 0.0]
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        step_size: int,
        iter_warmup: float,
        iter_max: float,
        power: float,
        min_lr: float = 0,
        last_epoch: int = -1,
    ) -> None:
        s, w, m, p, lo = _config(step_size, iter_warmup, iter_max, power, min_lr)
        self.step_size = s
        self.iter_warmup = w
        self.iter_max = m
        self.power = p
        self.min_lr = lo
        self._schedule = segmenter_schedule(s, w, m, p, lo)
        self._bound: dict[float, Schedule] = {}
        super().__init__(optimizer, last_epoch)

    @property
    def schedule(self) -> Schedule:
        """The closed-form schedule (relative to each group's base rate)."""
        return self._schedule

    def rate(self, step: int, base: float) -> float:
        """The rate at ``step`` for a group whose base rate is ``base`` (Python floats)."""
        k = check_int("step", step, low=0)
        base = float(base)
        bound = self._bound.get(base)
        if bound is None:
            bound = self._bound[base] = self._schedule.bind(base)
        return float(bound._eval(float(k), _PYTHON))

    def get_lr(self) -> list[float | torch.Tensor]:
        """The rates for the current step ``last_epoch``, one per parameter group."""
        return [self.rate(self.last_epoch, float(b)) for b in self.base_lrs]

    _get_closed_form_lr = get_lr

    def step_update(self, num_updates: int) -> None:
        """Segmenter's entry point: one step per optimizer update (``num_updates`` unused)."""
        self.step()

    def state_dict(self) -> dict[str, Any]:
        """The torch scheduler state (plain values), without the schedule object."""
        return {k: v for k, v in super().state_dict().items() if k not in _CACHE_KEYS}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state (also one saved by Segmenter's class) and apply its rate to the groups.

        Raises:
            StateError: the state was saved with a different configuration, or with another
                number of parameter groups.
        """
        for key in _CONFIG_KEYS:
            if key in state_dict and state_dict[key] != getattr(self, key):
                raise StateError(
                    f"{key}={state_dict[key]!r} in the saved state does not match "
                    f"this scheduler's {key}={getattr(self, key)!r}"
                )
        bases = state_dict.get("base_lrs", self.base_lrs)
        if len(bases) != len(self.optimizer.param_groups):
            raise StateError(
                f"base_lrs has {len(bases)} entries in the saved state but the optimizer has "
                f"{len(self.optimizer.param_groups)} parameter groups"
            )
        super().load_state_dict({k: v for k, v in state_dict.items() if k not in _CACHE_KEYS})
        rates = self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, rates, strict=True):
            if isinstance(group["lr"], torch.Tensor):
                group["lr"].fill_(lr)
            else:
                group["lr"] = lr
        self._last_lr = rates
