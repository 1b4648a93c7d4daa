"""from_timm against timm's published scheduler formulas (timm is not installed: it needs
torchvision, which does not import beside torch 2.13). The reference below is typed from
timm's ``timm/scheduler/{cosine,step,multistep,poly}_lr.py`` ``_get_lr(t)``:

- warmup (``t < warmup_t``): ``warmup_lr_init + t * (base - warmup_lr_init) / warmup_t``;
  after it ``t -= warmup_t`` only when ``warmup_prefix``; tanh_lr.py
  ``TanhLRScheduler.__init__`` alone ramps to its own ``_get_lr(warmup_t)`` instead of
  ``base`` when not ``warmup_prefix``;
- cosine: cycle ``i`` (``t // t_initial``, or ``floor(log(1 - t / T (1 - m), m))`` for
  ``cycle_mul = m != 1``), ``t_i = m**i T``, ``t_curr = t - (1 - m**i) / (1 - m) T``;
  ``lr_min + 0.5 (base * cycle_decay**i - lr_min) (1 + cos(pi t_curr**k / t_i**k))``
  while ``i < cycle_limit``, else ``lr_min`` (``k = k_decay``);
- tanh (one cycle, ``lb = -7``, ``ub = 3``, ``tr = t_curr / t_i``):
  ``lr_min + 0.5 (base - lr_min) (1 - tanh(lb (1 - tr) + ub tr))``, ``lr_min`` after;
- step: ``base * decay_rate ** (t // decay_t)``;
- multistep: ``base * decay_rate ** bisect_right(milestones, t + 1)``;
- poly (one cycle): ``lr_min + (base - lr_min) * (1 - t**k / T**k) ** power`` (``lr_min``
  after);
- ``create_scheduler_v2``: with ``step_on_epochs=False`` every length is multiplied by
  ``updates_per_epoch`` and ``t`` counts updates; otherwise ``t`` is the epoch.
"""

from __future__ import annotations

import bisect
import math
from typing import Any

import numpy as np
import pytest

from lrkit.convert import from_timm
from lrkit.errors import ConfigError


def timm_ref(t: float, base: float, sched: str, kw: dict[str, Any]) -> float:
    T = kw.get("num_epochs", 300)
    wt = kw.get("warmup_epochs", 0)
    w0 = kw.get("warmup_lr", 1e-5)
    lr_min = kw.get("min_lr", 0.0)
    rate = kw.get("decay_rate", 0.1)
    u = 1 if kw.get("step_on_epochs", True) else kw["updates_per_epoch"]
    T, wt = T * u, wt * u
    if t < wt:
        target = base
        if sched == "tanh" and not kw.get("warmup_prefix", False):
            target = timm_ref(wt, base, sched, kw)
        return w0 + t * (target - w0) / wt
    if kw.get("warmup_prefix", False):
        t -= wt
    if sched == "cosine":
        m, d, lim = kw.get("cycle_mul", 1.0), kw.get("cycle_decay", 0.1), kw.get("cycle_limit", 1)
        if m != 1:
            i = math.floor(math.log(1 - t / T * (1 - m), m))
            t_i = m**i * T
            t_curr = t - (1 - m**i) / (1 - m) * T
        else:
            i = t // T
            t_i = T
            t_curr = t - T * i
        k = kw.get("k_decay", 1.0)
        if i < lim:
            return lr_min + 0.5 * (base * d**i - lr_min) * (
                1 + math.cos(math.pi * t_curr**k / t_i**k))
        return lr_min
    if sched == "tanh":
        if t >= T:
            return lr_min
        tr = t / T
        return lr_min + 0.5 * (base - lr_min) * (1 - math.tanh(-7.0 * (1 - tr) + 3.0 * tr))
    if sched == "step":
        return base * rate ** (t // (kw.get("decay_epochs", 90) * u))
    if sched == "multistep":
        ms = [m * u for m in kw.get("decay_milestones", (90, 180, 270))]
        return base * rate ** bisect.bisect_right(ms, t + 1)
    if sched == "poly":
        k = kw.get("k_decay", 1.0)
        return lr_min + (base - lr_min) * (1 - min(t, T) ** k / T**k) ** rate
    raise AssertionError(sched)


CASES: list[tuple[str, dict[str, Any]]] = [
    ("cosine", {"num_epochs": 50, "warmup_epochs": 5, "min_lr": 1e-5}),
    ("cosine", {"num_epochs": 50, "warmup_epochs": 5, "warmup_prefix": True, "warmup_lr": 0.0}),
    ("cosine", {"num_epochs": 20, "cycle_limit": 3, "cycle_decay": 0.5, "min_lr": 1e-4}),
    ("cosine", {"num_epochs": 10, "cycle_limit": 4, "cycle_mul": 2.0, "cycle_decay": 0.7}),
    ("cosine", {"num_epochs": 30, "warmup_epochs": 3, "step_on_epochs": False,
                "updates_per_epoch": 7}),
    ("tanh", {"num_epochs": 80, "warmup_epochs": 5, "min_lr": 1e-4}),
    ("tanh", {"num_epochs": 12, "warmup_epochs": 8, "warmup_lr": 0.0}),
    ("tanh", {"num_epochs": 30, "warmup_epochs": 5, "warmup_prefix": True}),
    ("cosine", {"num_epochs": 30, "cycle_mul": 1.5, "cycle_decay": 2.0, "min_lr": 1e-4}),
    ("cosine", {"num_epochs": 8, "cycle_limit": 5, "cycle_mul": 1.5, "cycle_decay": 0.8,
                "warmup_epochs": 3, "min_lr": 1e-4}),
    ("cosine", {"num_epochs": 8, "cycle_limit": 3, "warmup_epochs": 3, "warmup_prefix": True,
                "step_on_epochs": False, "updates_per_epoch": 3}),
    ("poly", {"num_epochs": 30, "decay_rate": 2.0, "cycle_mul": 3.0, "cycle_decay": 0.5}),
    ("step", {"decay_epochs": 7, "decay_rate": 0.5, "warmup_epochs": 2}),
    ("step", {"decay_epochs": 3, "decay_rate": 0.5, "step_on_epochs": False,
              "updates_per_epoch": 5, "warmup_epochs": 1, "warmup_prefix": True}),
    ("multistep", {"decay_milestones": (10, 25, 40), "decay_rate": 0.3, "warmup_epochs": 4}),
    ("multistep", {"decay_milestones": (3, 5), "step_on_epochs": False, "updates_per_epoch": 4}),
    ("poly", {"num_epochs": 40, "decay_rate": 2.0, "min_lr": 1e-3, "warmup_epochs": 5}),
    ("cosine", {"num_epochs": 60, "k_decay": 2.0, "min_lr": 1e-5, "warmup_epochs": 4}),
    ("cosine", {"num_epochs": 60, "k_decay": 0.5, "warmup_epochs": 4, "warmup_prefix": True}),
    ("poly", {"num_epochs": 50, "decay_rate": 0.9, "k_decay": 1.5, "step_on_epochs": False,
              "updates_per_epoch": 3}),
]


@pytest.mark.parametrize(("sched", "kw"), CASES)
def test_matches_timm_formulas(sched: str, kw: dict[str, Any]) -> None:
    base = 0.4
    s = from_timm(sched, **kw)
    n = 160 if kw.get("step_on_epochs", True) else 400
    for t in range(n):
        assert s(t, base=base) == pytest.approx(timm_ref(t, base, sched, kw), rel=1e-12,
                                                abs=1e-15), t


def test_epoch_stepping_with_updates_per_epoch_holds_each_epoch() -> None:
    """step_on_epochs=True: timm sets the rate once per epoch (``step(epoch)``)."""
    kw = {"num_epochs": 10, "warmup_epochs": 2, "warmup_lr": 0.0}
    per_update = from_timm("cosine", updates_per_epoch=6, **kw)
    for u in range(80):
        assert per_update(u, base=1.0) == pytest.approx(timm_ref(u // 6, 1.0, "cosine", kw),
                                                        rel=1e-12, abs=1e-15)


def test_tanh_warmup_ramps_to_the_tanh_value_not_the_base() -> None:
    """timm/scheduler/tanh_lr.py TanhLRScheduler.__init__: with warmup_t and not
    warmup_prefix the warmup slope is ``(_get_lr(warmup_t) - warmup_lr_init) / warmup_t``,
    the tanh curve's own value at the end of warmup (cosine/poly/step use the base rate).
    With 8 of 12 epochs of warmup the curve has fallen well below the base there."""
    s = from_timm("tanh", num_epochs=12, warmup_epochs=8, warmup_lr=0.0)
    at_end = 0.5 * (1 - math.tanh(-7.0 * (1 - 8 / 12) + 3.0 * 8 / 12))  # base 1, lr_min 0
    assert at_end < 0.9
    for t in range(8):
        assert s(t, base=1.0) == pytest.approx(t * at_end / 8, rel=1e-12, abs=1e-15)
    assert s(8, base=1.0) == pytest.approx(at_end, rel=1e-12)
    # with warmup_prefix=True the target is the base rate (t_v = base_values)
    p = from_timm("tanh", num_epochs=12, warmup_epochs=8, warmup_lr=0.0, warmup_prefix=True)
    assert p(4, base=1.0) == pytest.approx(0.5, rel=1e-12)


def test_one_cycle_ignores_cycle_mul_and_cycle_decay() -> None:
    """timm/scheduler/cosine_lr.py and poly_lr.py ``_get_lr``: with cycle_limit=1 only
    cycle i=0 (t_i = t_initial, gamma = cycle_decay**0 = 1) is evaluated, any other i gives
    lr_min; so cycle_mul < 1 or cycle_decay > 1 are valid there and change nothing."""
    for sched in ("cosine", "poly"):
        plain = from_timm(sched, num_epochs=20, min_lr=1e-3)
        odd = from_timm(sched, num_epochs=20, min_lr=1e-3, cycle_mul=0.5, cycle_decay=3.0)
        for t in range(40):
            assert odd(t, base=0.1) == plain(t, base=0.1)


def test_arguments_timm_does_not_pass_are_ignored() -> None:
    """timm/scheduler/scheduler_factory.py create_scheduler_v2 gives k_decay to the cosine
    and poly schedulers only and cycle_mul/cycle_decay/cycle_limit to cosine, tanh and poly
    only; step, multistep and plateau never see them (and tanh never sees k_decay)."""
    odd = {"k_decay": 2.0, "cycle_limit": 0, "cycle_mul": 0.5, "cycle_decay": 3.0}
    for sched, kw in (("step", {"decay_epochs": 4}), ("multistep", {"decay_milestones": (3,)}),
                      ("plateau", {})):
        assert from_timm(sched, **kw, **odd) == from_timm(sched, **kw)
    assert from_timm("tanh", num_epochs=9, k_decay=2.0) == from_timm("tanh", num_epochs=9)


def test_plateau() -> None:
    s = from_timm("plateau", decay_rate=0.5, patience_epochs=3, plateau_mode="min", min_lr=1e-4)
    assert (s.factor, s.patience, s.mode, s.min_lr) == (0.5, 3, "min", 1e-4)


@pytest.mark.parametrize(("kw", "match"), [
    ({"sched": "tanh", "cycle_limit": 2}, "cycle_limit=2 is invalid"),
    ({"sched": "cosine_x"}, "sched='cosine_x' is invalid"),
    ({"noise": 0.5}, "noise=0.5 is invalid"),
    ({"k_decay": 2.0, "cycle_limit": 2}, "k_decay=2.0 is invalid"),
    ({"step_on_epochs": False}, "updates_per_epoch=0 is invalid"),
    ({"sched": "plateau", "warmup_epochs": 2}, "warmup_epochs=2 is invalid"),
    ({"lr_cycle_wobble": 1}, "lr_cycle_wobble=1 is invalid"),
    ({"cycle_limit": 2, "cycle_decay": 2.0}, "cycle_decay=2.0 is invalid"),
    ({"cycle_limit": 2, "cycle_mul": 0.5}, "cycle_mul=0.5 is invalid"),
])
def test_unsupported_arguments_are_clear_errors(kw: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        from_timm(**kw)


def test_array_evaluation_agrees() -> None:
    s = from_timm("cosine", num_epochs=20, cycle_limit=2, warmup_epochs=3)
    t = np.arange(60.0)
    np.testing.assert_array_equal(s(t, base=0.1), [s(float(x), base=0.1) for x in t])
