"""Inverse square-root decay (the Transformer / "Noam" tail)."""

from __future__ import annotations

import dataclasses

from lrkit._validate import check_number
from lrkit.schedules._ops import Array, Ops
from lrkit.schedules.base import Rel, Schedule, Value, check_value, resolve

__all__ = ["InverseSqrt"]


@dataclasses.dataclass(frozen=True)
class InverseSqrt(Schedule):
    r"""Decay as the inverse square root of time: ``peak`` at step 0, never settling.

    .. math:: \eta_t = \frac{\eta_{peak}}{\sqrt{1 + t / \tau}}

    with :math:`\tau` = ``timescale``: the value halves by step :math:`3\tau` and is
    :math:`\eta_{peak}/\sqrt{n+1}` at step :math:`n\tau`.

    Args:
        timescale: :math:`\tau` (> 0).
        peak: the value at step 0 (default: the group's base rate).

    Raises:
        ConfigError: ``timescale <= 0``, a negative or non-finite ``peak``.

    Example:
        >>> s = InverseSqrt(timescale=100, peak=1.0)
        >>> s(0), s(300), s(9900)
        (1.0, 0.5, 0.1)

    Equivalent: with a prefix linear :class:`~lrkit.Warmup` of :math:`w` steps,
    ``Warmup(InverseSqrt(tau), w)`` is HF ``get_inverse_sqrt_schedule(opt, w, timescale=tau)``
    and ``Warmup(InverseSqrt(w), w, start=init)`` is fairseq's ``inverse_sqrt``
    (``warmup_updates=w``, ``warmup_init_lr=init``: :math:`\eta\sqrt{w/t}` after warmup).

    Reference: Vaswani et al., *Attention Is All You Need*, 2017 (section 5.3).
    """

    kind = "rsqrt"
    timescale: float = 1.0
    peak: Value = Rel(1.0)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "timescale", check_number("timescale", self.timescale, low=0, low_open=True)
        )
        object.__setattr__(self, "peak", check_value("peak", self.peak))

    def _eval(self, t: Array, ops: Ops) -> Array:
        return resolve(self.peak) / ops.sqrt(1.0 + t / self.timescale)
