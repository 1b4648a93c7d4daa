"""from_mmengine against mmengine's published closed forms (mmengine is not installed: it
pulls opencv). From ``mmengine/optim/scheduler/param_scheduler.py``: a scheduler acts on
``begin <= step < end`` with local step ``t = step - begin`` and leaves the value alone
outside; with ``n = end - begin - 1``:

- LinearLR: ``base * (a + (b - a) * min(t, n) / n)``;
- ConstantLR: ``base * factor`` for ``t < n``, ``base`` from ``t = n``;
- CosineAnnealingLR: ``eta_min + (base - eta_min) (1 + cos(pi t / T_max)) / 2``,
  ``T_max`` defaulting to ``end - begin``, ``eta_min = eta_min_ratio * base`` if given
  (for every ``t`` in range: past ``T_max`` the cosine climbs back);
- PolyLR: ``eta_min + (base - eta_min) (1 - t / n) ** power``;
- MultiStepLR: ``base * gamma ** #{milestones <= t}``; StepLR: ``base * gamma ** (t // s)``;
- ``convert_to_iter_based``: ``begin``, ``end``, ``T_max``, ``step_size``, ``milestones``
  times the epoch length.
"""

from __future__ import annotations

import bisect
import math
from typing import Any

import pytest

from lrkit.convert import from_mmengine
from lrkit.errors import ConfigError


def mm_ref(step: int, base: float, cfgs: list[dict[str, Any]], el: int = 1) -> float:
    value = base
    for c in sorted(cfgs, key=lambda c: c.get("begin", 0)):
        m = el if c.get("convert_to_iter_based") else 1
        begin, end = c.get("begin", 0) * m, c.get("end", math.inf) * m
        if step < begin:
            break
        t = min(step, end - 1) - begin
        n = end - begin - 1
        kind = c["type"]
        if kind == "LinearLR":
            a, b = c.get("start_factor", 1 / 3), c.get("end_factor", 1.0)
            value = base * (a + (b - a) * min(t, n) / n)
        elif kind == "ConstantLR":
            value = base * (c.get("factor", 1 / 3) if t < n else 1.0)
        elif kind == "CosineAnnealingLR":
            tmax = c.get("T_max", (end - begin) / m) * m
            eta = c["eta_min_ratio"] * base if "eta_min_ratio" in c else c.get("eta_min", 0.0)
            value = eta + (base - eta) * (1 + math.cos(math.pi * t / tmax)) / 2
        elif kind == "PolyLR":
            eta = c.get("eta_min", 0.0)
            value = eta + (base - eta) * (1 - t / n) ** c.get("power", 1.0)
        elif kind == "MultiStepLR":
            ms = sorted(x * m for x in c["milestones"])
            value = base * c.get("gamma", 0.1) ** bisect.bisect_right(ms, t)
        elif kind == "StepLR":
            value = base * c.get("gamma", 0.1) ** (t // (c["step_size"] * m))
        else:
            raise AssertionError(kind)
    return value


CASES: list[tuple[list[dict[str, Any]], int]] = [
    ([dict(type="LinearLR", start_factor=0.001, by_epoch=False, begin=0, end=50),
      dict(type="CosineAnnealingLR", eta_min=1e-5, by_epoch=False, begin=50, end=300)], 1),
    ([dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=20),
      dict(type="PolyLR", power=0.9, eta_min=1e-4, by_epoch=False, begin=20, end=200)], 1),
    ([dict(type="LinearLR", start_factor=0.01, by_epoch=True, begin=0, end=2,
           convert_to_iter_based=True),
      dict(type="CosineAnnealingLR", T_max=8, eta_min_ratio=0.01, by_epoch=True, begin=2,
           end=10, convert_to_iter_based=True)], 13),
    ([dict(type="ConstantLR", factor=0.25, by_epoch=False, begin=0, end=30),
      dict(type="MultiStepLR", milestones=[20, 60], gamma=0.3, by_epoch=False, begin=30,
           end=150)], 1),
    ([dict(type="StepLR", step_size=3, gamma=0.5, by_epoch=False, begin=10, end=40)], 1),
]


@pytest.mark.parametrize(("cfgs", "el"), CASES)
def test_matches_mmengine_closed_forms(cfgs: list[dict[str, Any]], el: int) -> None:
    s = from_mmengine(cfgs, epoch_length=el)
    n = int(max(c.get("end", 0) * (el if c.get("convert_to_iter_based") else 1)
                for c in cfgs)) + 30
    stepped = mm_chain([_iters(c, el) for c in cfgs], n, el, 0.02)  # the update rules too
    for step in range(n):
        assert s(step, base=0.02) == pytest.approx(mm_ref(step, 0.02, cfgs, el), rel=1e-12,
                                                   abs=1e-16), step
        assert s(step, base=0.02) == pytest.approx(stepped[step], rel=1e-10, abs=1e-16), step


def test_epoch_based_list_runs_once_per_epoch() -> None:
    cfg = [dict(type="MultiStepLR", milestones=[3, 5], gamma=0.1, by_epoch=True, end=10)]
    s = from_mmengine(cfg, epoch_length=4)
    assert [s(u) for u in (11, 12, 19, 20)] == pytest.approx([1.0, 0.1, 0.1, 0.01])
    assert from_mmengine(cfg)(3) == pytest.approx(0.1)  # without epoch_length: steps = epochs


def mm_chain(cfgs: list[dict[str, Any]], steps: int, el: int, base: float) -> list[float]:
    """mmengine's chainable updates, stepped as its runner steps them (typed from
    ``param_scheduler.py``): every scheduler applies its ``_get_value`` once at construction
    (local step 0) and then on each of its steps inside ``begin <= step < end``;
    iteration-based ones step after every iteration, epoch-based ones after every epoch.
    Returns the rate each iteration uses."""
    lr = base
    state = [{"g": -1, "last": -1} for _ in cfgs]

    def step(i: int) -> None:
        nonlocal lr
        c, s = cfgs[i], state[i]
        s["g"] += 1
        if not c.get("begin", 0) <= s["g"] < c.get("end", math.inf):
            return
        s["last"] += 1
        t, kind = s["last"], c["type"]
        n = c.get("end", math.inf) - c.get("begin", 0) - 1
        if kind == "LinearLR":
            a, b = c.get("start_factor", 1 / 3), c.get("end_factor", 1.0)
            lr *= a if t == 0 else 1 + (b - a) / (n * a + (t - 1) * (b - a))
        elif kind == "ConstantLR":  # the t == 0 branch is tested first
            f = c.get("factor", 1 / 3)
            lr *= f if t == 0 else 1 / f if t == n else 1.0
        elif kind == "ExponentialLR":
            lr *= 1.0 if t == 0 else c["gamma"]
        elif kind == "MultiStepLR":
            lr *= c.get("gamma", 0.1) ** list(c["milestones"]).count(t)
        elif kind == "StepLR":
            lr *= 1.0 if t == 0 or t % c["step_size"] else c.get("gamma", 0.1)
        elif kind == "CosineAnnealingLR":
            T = c.get("T_max") or n + 1
            eta = base * c["eta_min_ratio"] if "eta_min_ratio" in c else c.get("eta_min", 0.0)
            if t > 0 and (t - 1 - T) % (2 * T) == 0:  # the recursion's 0/0 point
                lr += (base - eta) * (1 - math.cos(math.pi / T)) / 2
            elif t > 0:
                lr = eta + (lr - eta) * ((1 + math.cos(math.pi * t / T))
                                         / (1 + math.cos(math.pi * (t - 1) / T)))
        elif kind == "PolyLR":
            eta = c.get("eta_min", 0.0)
            if t > 0:
                lr = eta + (lr - eta) * (1 - 1 / (n - t + 1)) ** c.get("power", 1.0)
        else:
            raise AssertionError(kind)

    epoch_based = [c.get("by_epoch", True) for c in cfgs]
    for i in range(len(cfgs)):
        step(i)  # construction
    used = []
    for it in range(steps):
        used.append(lr)
        for i in range(len(cfgs)):
            if not epoch_based[i]:
                step(i)
        if (it + 1) % el == 0:
            for i in range(len(cfgs)):
                if epoch_based[i]:
                    step(i)
    return used


def _iters(c: dict[str, Any], el: int) -> dict[str, Any]:
    """The converted config the simulator steps: each ``build_iter_from_epoch`` multiplies
    begin, end and the lengths (T_max, step_size, milestones, total_steps) by ``el``.
    The converter still gets the original."""
    if not c.get("convert_to_iter_based"):
        return c
    out = {**c, "by_epoch": False, "convert_to_iter_based": False}
    for key in ("begin", "end", "T_max", "step_size", "total_steps"):
        if key in c:
            out[key] = c[key] * el
    if "milestones" in c:
        out["milestones"] = [m * el for m in c["milestones"]]
    return out


CHAINED: list[tuple[list[dict[str, Any]], int, int]] = [
    # mmdet's usual schedule: an iteration warmup under an epoch MultiStepLR
    ([dict(type="LinearLR", start_factor=0.001, by_epoch=False, begin=0, end=50),
      dict(type="MultiStepLR", begin=0, end=12, by_epoch=True, milestones=[8, 11],
           gamma=0.1)], 20, 300),
    # overlapping iteration schedulers
    ([dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=30),
      dict(type="CosineAnnealingLR", T_max=100, by_epoch=False, begin=0, end=100)], 1, 130),
    # one after another, the first ending at half the base rate (the factor carries over)
    ([dict(type="LinearLR", start_factor=1.0, end_factor=0.5, by_epoch=False, end=10),
      dict(type="StepLR", step_size=5, gamma=0.5, by_epoch=False, begin=10, end=40)], 1, 60),
    # source-semantics regressions (mmengine/optim/scheduler/param_scheduler.py):
    # CosineAnnealingParamScheduler._get_value with T_max < end - begin keeps following
    # the cosine past T_max, climbing back to the base rate (period 2 T_max), as torch's
    ([dict(type="CosineAnnealingLR", T_max=10, eta_min=1e-4, by_epoch=False, begin=5,
           end=60)], 1, 80),
    ([dict(type="CosineAnnealingLR", T_max=7, eta_min_ratio=0.1, by_epoch=False)], 1, 50),
    ([dict(type="LinearLR", start_factor=0.2, by_epoch=False, end=4),
      dict(type="CosineAnnealingLR", T_max=6, by_epoch=False, begin=4, end=40)], 1, 50),
    # ConstantParamScheduler._get_value with end - begin = 1: total_iters = 0, so the
    # factor applied at last_step 0 is never undone
    ([dict(type="ConstantLR", factor=0.5, by_epoch=False, begin=3, end=4)], 1, 10),
    # PolyParamScheduler._get_value with end - begin = 1: last_step 0 keeps the rate
    ([dict(type="PolyLR", eta_min=1e-3, by_epoch=False, begin=2, end=3)], 1, 10),
    # the whole family, from their chainable updates
    ([dict(type="ConstantLR", factor=0.25, by_epoch=False, end=6),
      dict(type="ExponentialLR", gamma=0.9, by_epoch=False, begin=6, end=20),
      dict(type="PolyLR", power=2.0, by_epoch=False, begin=20, end=40)], 1, 50),
    ([dict(type="PolyLR", eta_min=2e-4, power=0.9, by_epoch=True, begin=1, end=9,
           convert_to_iter_based=True)], 5, 60),
]


@pytest.mark.parametrize(("cfgs", "el", "steps"), CHAINED)
def test_chained_schedulers_multiply_as_in_mmengine(cfgs: list[dict[str, Any]], el: int,
                                                    steps: int) -> None:
    s = from_mmengine(cfgs, epoch_length=el)
    want = mm_chain([_iters(c, el) for c in cfgs], steps, el, 0.02)
    for it in range(steps):
        assert s(it, base=0.02) == pytest.approx(want[it], rel=1e-11, abs=1e-18), it


def test_onecycle_total_steps_converted_to_iterations() -> None:
    """mmengine/optim/scheduler/param_scheduler.py OneCycleParamScheduler
    .build_iter_from_epoch multiplies an explicit ``total_steps`` by ``epoch_length``, as it
    does ``begin`` and ``end``."""
    by_epoch = from_mmengine([dict(type="OneCycleLR", eta_max=0.1, total_steps=4, end=4,
                                   by_epoch=True, convert_to_iter_based=True)], epoch_length=10)
    by_iter = from_mmengine([dict(type="OneCycleLR", eta_max=0.1, total_steps=40, end=40,
                                  by_epoch=False)])
    for it in range(50):
        assert by_epoch(it, base=0.02) == by_iter(it, base=0.02), it


@pytest.mark.parametrize(("cfg", "match"), [
    # past T_max + 1 the chainable cosine adds a multiple of the base rate (not a factor)
    ([dict(type="LinearLR", by_epoch=False, end=10),
      dict(type="CosineAnnealingLR", T_max=5, by_epoch=False, begin=0, end=20)],
     "only multiply the rate"),
    ([dict(type="LinearLR", by_epoch=False, end=10),
      dict(type="CosineAnnealingLR", eta_min=1e-4, by_epoch=False, begin=5, end=20)],
     "only multiply the rate"),
    ([dict(type="OneCycleLR", eta_max=0.1, by_epoch=False, end=10),
      dict(type="StepLR", step_size=3, by_epoch=False, begin=5, end=20)],
     "only multiply the rate"),
    ([dict(type="LinearLR", by_epoch=False, end=10),
      dict(type="StepLR", step_size=3, by_epoch=True, begin=1, end=20)], "epoch_length=None"),
    ([dict(type="WarmupLR")], "type='WarmupLR' is invalid"),
    ([dict(type="StepLR", step_size=2, by_epoch=False, verbose=True)], "verbose=True"),
    ([dict(type="LinearLR", end=3, convert_to_iter_based=True)], "epoch_length=None"),
    ([dict(type="CosineAnnealingLR")], "end=inf is invalid"),
])
def test_errors(cfg: list[dict[str, Any]], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        from_mmengine(cfg)
