"""The torch side of :mod:`lrkit.compat.segmenter`: Segmenter's ``PolynomialLR`` drop-in.

Imported from :mod:`lrkit.compat.segmenter` on first use of ``PolynomialLR`` (that module,
the closed-form schedule, does not import torch).
"""

from __future__ import annotations

from typing import Any

import torch
from torch.optim.lr_scheduler import LRScheduler

from lrkit._validate import bad, check_int, check_number
from lrkit.compat.segmenter import _PYTHON, _config, segmenter_schedule
from lrkit.errors import ConfigError, StateError
from lrkit.schedules.base import Schedule

__all__ = ["PolynomialLR"]

_CONFIG_KEYS = ("step_size", "iter_warmup", "iter_max", "power", "min_lr")
_CACHE_KEYS = ("_schedule", "_bound")
#: entries torch's LRScheduler.state_dict() holds in some versions
_TORCH_KEYS = ("verbose", "_is_initial", "_get_lr_called_within_step", "_step_count", "_last_lr")


def _same(saved: Any, current: Any) -> bool:
    try:
        return bool(saved == current)
    except Exception:  # e.g. an array: ambiguous truth value
        return False


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


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
        # the first rates, checked before torch's constructor records initial_lr and steps
        start = check_int("last_epoch", last_epoch, low=-1) + 1
        for i, group in enumerate(getattr(optimizer, "param_groups", [])):
            base = group.get("initial_lr", group.get("lr")) if start == 0 \
                else group.get("initial_lr")
            if base is not None:  # (torch raises its KeyError for a missing initial_lr)
                try:
                    self.rate(start, float(base))
                except (TypeError, ValueError, OverflowError, RuntimeError):
                    raise bad(f"param_groups[{i}]['lr']", base,
                              "a finite number >= 0") from None
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

    def step(self, epoch: int | None = None) -> None:
        """One step (``epoch=None``), or go to step ``epoch`` (torch's deprecated form, here
        exact). The rates are computed first: a call that raises changes nothing."""
        target = self.last_epoch + 1 if epoch is None else check_int("epoch", epoch, low=0)
        for b in self.base_lrs:
            self.rate(target, float(b))
        super().step(epoch if epoch is None else target)

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
                number of parameter groups, or holds an entry that is not valid (a key that
                is not scheduler state, a step that is not an integer >= 0, a base rate that
                is not a finite number >= 0). Nothing is changed then.
        """
        if not isinstance(state_dict, dict):
            raise StateError(f"state_dict={type(state_dict).__name__} is invalid: expected a dict")
        known = {*self.state_dict(), *_TORCH_KEYS}
        for key, value in state_dict.items():
            if key not in known:
                raise StateError(f"state_dict[{key!r}] is invalid: not an entry of this "
                                 f"scheduler's state ({', '.join(sorted(known))})")
            if key in _CONFIG_KEYS and not _same(value, getattr(self, key)):
                raise StateError(
                    f"{key}={value!r} in the saved state does not match "
                    f"this scheduler's {key}={getattr(self, key)!r}"
                )
        bases = state_dict.get("base_lrs", self.base_lrs)
        if not isinstance(bases, (list, tuple)) or len(bases) != len(self.optimizer.param_groups):
            raise StateError(
                f"base_lrs={_short(bases)} in the saved state is invalid: expected one base rate "
                f"for each of the optimizer's {len(self.optimizer.param_groups)} parameter groups"
            )
        try:
            step = check_int("last_epoch", state_dict.get("last_epoch", self.last_epoch), low=0)
            count = check_int("_step_count", state_dict.get("_step_count", 0), low=0)
            floats = [check_number(f"base_lrs[{i}]", b, low=0.0) for i, b in enumerate(bases)]
            rates = [self.rate(step, b) for b in floats]
        except ConfigError as exc:
            raise StateError(f"the saved state is invalid: {exc}") from None
        # only the checked entries: the configuration is equal, torch's flags are transient
        # and _last_lr is recomputed
        super().load_state_dict({"last_epoch": step, "base_lrs": floats,
                                 **({"_step_count": count} if "_step_count" in state_dict
                                    else {})})
        for group, lr in zip(self.optimizer.param_groups, rates, strict=True):
            if isinstance(group["lr"], torch.Tensor):
                group["lr"].fill_(lr)
            else:
                group["lr"] = lr
        self._last_lr = list[float | torch.Tensor](rates)
