"""Where a scheduled field lives in a parameter group, and how it is read and written.

Fields: ``lr``; ``momentum`` (``group["momentum"]``, or ``betas[0]`` on a group with
``betas``, as Adam's; ``beta1`` is another name for it); ``beta2`` (``betas[1]``);
``weight_decay``. A value is a float, a tensor (written in place, never replaced) or an
element of the ``betas`` tuple (a float element is replaced by a new tuple, a tensor element
written in place).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch

from lrkit._validate import bad

__all__ = ["FIELDS", "Slot", "canonical_field", "slot_for"]

#: Canonical field names, in the order they are evaluated and saved.
FIELDS = ("lr", "momentum", "beta2", "weight_decay")
ALIASES = {"beta1": "momentum"}


def _finite(x: float) -> bool:
    try:
        return math.isfinite(x)
    except OverflowError:  # an int beyond the float range
        return False


def canonical_field(name: str) -> str:
    return ALIASES.get(name, name)


@dataclasses.dataclass(frozen=True)
class Slot:
    """One field's place in a group: ``group[key]`` or ``group[key][index]``."""

    key: str
    index: int | None
    initial_key: str
    #: values must be finite, ``>= 0`` and ``< high``
    high: float

    @property
    def name(self) -> str:
        return self.key if self.index is None else f"{self.key}[{self.index}]"

    def read(self, group: dict[str, Any]) -> Any:
        value = group[self.key]
        return value if self.index is None else value[self.index]

    def initial(self, group: dict[str, Any], where: str) -> float:
        """The field's base: the recorded ``initial_*`` value, else the current one. Reads
        only (:meth:`record` records it, as torch records ``initial_lr``)."""
        current = self.read(group)
        if isinstance(current, torch.Tensor) and (
            current.numel() != 1 or not current.is_floating_point()
        ):  # an int tensor would truncate every rate written into it
            raise bad(f"{where}[{self.name!r}]", current,
                      "a finite number >= 0 or a one-element floating-point tensor")
        value = group.get(self.initial_key)
        if value is None:
            value = current
        out = float(value.detach().cpu().reshape(-1)[0]) if isinstance(value, torch.Tensor) \
            else value
        if isinstance(out, bool) or not isinstance(out, (int, float)) or not (
            _finite(out) and out >= 0
        ):
            raise bad(f"{where}[{self.name!r}]", value, "a finite number >= 0")
        return float(out)

    def record(self, group: dict[str, Any], base: float) -> None:
        """Record ``base`` as the group's ``initial_*`` value unless one is there."""
        group.setdefault(self.initial_key, base)

    def write(self, group: dict[str, Any], value: float) -> None:
        """Set the field to ``value``: tensors in place, floats replaced."""
        old = group[self.key]
        if self.index is None:
            if isinstance(old, torch.Tensor):
                old.fill_(value)
            else:
                group[self.key] = value
            return
        item = old[self.index]
        if isinstance(item, torch.Tensor):
            item.fill_(value)
        else:
            new = list(old)
            new[self.index] = value
            group[self.key] = tuple(new)

    def tensor(self, group: dict[str, Any]) -> torch.Tensor | None:
        value = self.read(group)
        return value if isinstance(value, torch.Tensor) else None

    def make_tensor(self, group: dict[str, Any]) -> torch.Tensor:
        """Turn a float value into a 0-dim tensor on the group's parameter device (default
        float dtype); a tensor value is kept. Returns the tensor."""
        value = self.read(group)
        if isinstance(value, torch.Tensor):
            return value
        params = group.get("params") or []
        device = params[0].device if params else torch.device("cpu")
        t = torch.tensor(float(value), dtype=torch.get_default_dtype(), device=device)
        if self.index is None:
            group[self.key] = t
        else:
            new = list(group[self.key])
            new[self.index] = t
            group[self.key] = tuple(new)
        return t


_LR = Slot("lr", None, "initial_lr", math.inf)
_MOMENTUM = Slot("momentum", None, "initial_momentum", math.inf)
_BETA1 = Slot("betas", 0, "initial_beta1", 1.0)
_BETA2 = Slot("betas", 1, "initial_beta2", 1.0)
_WD = Slot("weight_decay", None, "initial_weight_decay", math.inf)


def slot_for(field: str, group: dict[str, Any], index: int) -> Slot:
    """The slot of canonical ``field`` in ``group`` (number ``index``), or a ConfigError."""
    has_betas = isinstance(group.get("betas"), (tuple, list)) and len(group["betas"]) == 2
    if field == "lr":
        slot = _LR
    elif field == "momentum":
        slot = _BETA1 if has_betas else _MOMENTUM
    elif field == "beta2":
        slot = _BETA2
        if not has_betas:
            raise bad(f"param_groups[{index}]", "a group without 'betas'",
                      "a group with betas=(beta1, beta2) for beta2=")
    elif field == "weight_decay":
        slot = _WD
    else:  # pragma: no cover - the scheduler passes canonical names only
        raise bad("field", field, "one of " + ", ".join(FIELDS))
    if slot.key not in group:
        raise bad(f"param_groups[{index}]", f"a group without {slot.key!r}",
                  f"a group holding {slot.key!r} to schedule {field}=")
    return slot
