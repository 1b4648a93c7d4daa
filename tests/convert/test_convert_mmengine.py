"""from_mmengine against the real mmengine: its ParamSchedulers built from the same list and
stepped as its runner steps them (``_peers.mmengine_rates``), side by side with the
converted schedule under :class:`lrkit.torch.LRScheduler`, on several param groups."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from _peers import lrkit_rates, mmengine_rates, optimizer
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from lrkit.convert import from_mmengine
from lrkit.errors import ConfigError

LRS = (0.02, 0.005)


def check_against_mmengine(cfgs: list[dict[str, Any]], el: int, iters: int) -> None:
    theirs = mmengine_rates(cfgs, optimizer(LRS), iters, el)
    ours = lrkit_rates(optimizer(LRS), from_mmengine(cfgs, epoch_length=el), iters)
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-18)


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
def test_matches_mmengine(cfgs: list[dict[str, Any]], el: int) -> None:
    n = int(max(c.get("end", 0) * (el if c.get("convert_to_iter_based") else 1)
                for c in cfgs)) + 30
    check_against_mmengine(cfgs, el, n)


def test_epoch_based_list_runs_once_per_epoch() -> None:
    cfg = [dict(type="MultiStepLR", milestones=[3, 5], gamma=0.1, by_epoch=True, end=10)]
    s = from_mmengine(cfg, epoch_length=4)
    assert [s(u) for u in (11, 12, 19, 20)] == pytest.approx([1.0, 0.1, 0.1, 0.01])
    assert from_mmengine(cfg)(3) == pytest.approx(0.1)  # without epoch_length: steps = epochs
    check_against_mmengine(cfg, 4, 48)


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
    check_against_mmengine(cfgs, el, steps)


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


def test_cosine_restart_lr() -> None:
    """mmengine's CosineRestartLR: each period restarts at base * weight and anneals towards
    eta_min; after the last period the rate holds."""
    for cfg in (dict(type="CosineRestartLR", periods=[5, 7, 4], restart_weights=[1, 0.5, 0.2],
                     eta_min=1e-4, by_epoch=False),
                dict(type="CosineRestartLR", periods=[3, 3], restart_weights=[1, 0.7],
                     eta_min_ratio=0.1, by_epoch=False, begin=4, end=9),
                dict(type="CosineRestartLR", periods=[2, 3], restart_weights=[1, 0.5],
                     eta_min=0.0, by_epoch=True, convert_to_iter_based=True)):
        check_against_mmengine([cfg], 3, 30)


def test_errors_name_the_users_list_entry() -> None:
    """Never lrkit's internals ('Hold'): the entry's index and type."""
    cfg = [dict(type="LinearLR", by_epoch=False, end=10),
           dict(type="CosineAnnealingLR", eta_min=1e-4, by_epoch=False, begin=5, end=20)]
    with pytest.raises(ConfigError, match=r"param_scheduler='param_scheduler\[1\] "
                       r"\(CosineAnnealingLR\)' is invalid") as err:
        from_mmengine(cfg)
    assert "Hold" not in str(err.value)


_TYPES = ("LinearLR", "ConstantLR", "CosineAnnealingLR", "PolyLR", "ExponentialLR", "StepLR",
          "MultiStepLR", "CosineRestartLR", "OneCycleLR")


@st.composite
def entry(draw: st.DrawFn, begin: int, end: int) -> dict[str, Any]:
    kind = draw(st.sampled_from(_TYPES))
    span = end - begin
    c: dict[str, Any] = {"type": kind, "begin": begin, "end": end, "by_epoch": False}
    if kind == "LinearLR":
        c.update(start_factor=draw(st.sampled_from([0.01, 0.5])), end_factor=1.0)
    elif kind == "ConstantLR":
        c["factor"] = draw(st.sampled_from([0.1, 0.5]))
    elif kind == "CosineAnnealingLR":
        c["T_max"] = draw(st.integers(1, span + 2))
        c["eta_min"] = draw(st.sampled_from([0.0, 1e-4]))
    elif kind == "PolyLR":
        c.update(power=draw(st.sampled_from([0.9, 2.0])), eta_min=draw(st.sampled_from([0.0,
                                                                                    1e-4])))
    elif kind == "ExponentialLR":
        c["gamma"] = draw(st.sampled_from([0.8, 0.95]))
    elif kind == "StepLR":
        c.update(step_size=draw(st.integers(1, 4)), gamma=0.5)
    elif kind == "MultiStepLR":
        c.update(milestones=sorted(draw(st.sets(st.integers(1, span), min_size=1,
                                                max_size=2))), gamma=0.3)
    elif kind == "CosineRestartLR":
        n = draw(st.integers(1, 3))
        c.update(periods=[draw(st.integers(1, 5)) for _ in range(n)],
                 restart_weights=[1.0] + [draw(st.sampled_from([0.5, 1.0])) for _ in range(n - 1)],
                 eta_min=draw(st.sampled_from([0.0, 1e-4])))
    else:
        c.update(eta_max=draw(st.sampled_from([0.05, 0.1])), total_steps=span + 1,
                 pct_start=draw(st.sampled_from([0.3, 0.5, 0.05, 1.0])),  # 0.05: no rise
                 three_phase=draw(st.booleans()))
    return c


@settings(max_examples=30)
@given(st.data())
def test_random_lists_match_real_mmengine(data: st.DataObject) -> None:
    """Lists of one to three schedulers one after another (gaps allowed), each of any type:
    lrkit converts them or refuses them naming the entry; what it converts gives mmengine's
    rates."""
    d = data.draw
    start, cfgs = d(st.integers(0, 3)), []
    for _ in range(d(st.integers(1, 3))):
        end = start + d(st.integers(1, 8))
        cfgs.append(d(entry(start, end)))
        start = end + d(st.integers(0, 2))
    try:
        from_mmengine(cfgs)
    except ConfigError as e:
        message = str(e)
    else:
        message = ""
    if message:  # refused: it names the user's entry (index and type), then nothing to step
        assert "param_scheduler[" in message
        assume(False)
    check_against_mmengine(cfgs, 1, start + 6)


def test_one_cycle_without_a_rise_matches_mmengine() -> None:
    """mmengine (like torch) runs a one-cycle whose rise ends before step 0
    (pct_start * total_steps < 1), every step in its last phase, and one whose phase after
    the rise is empty (it never reaches the later phases); both used to be refused. At
    exactly 1 mmengine divides by zero: refused, naming the list entry."""
    for three in (False, True):
        for anneal in ("cos", "linear"):
            check_against_mmengine([dict(
                type="OneCycleLR", eta_max=0.1, total_steps=100, pct_start=0.005,
                anneal_strategy=anneal, three_phase=three, by_epoch=False, end=100)], 1, 105)
            check_against_mmengine([dict(  # total_steps from the range, after a gap
                type="OneCycleLR", eta_max=0.1, pct_start=0.1, anneal_strategy=anneal,
                three_phase=three, by_epoch=False, begin=4, end=11)], 1, 15)
    for pct, three in ((1.0, False), (0.8, True), (0.9, False)):  # empty phases after the rise
        check_against_mmengine([dict(type="OneCycleLR", eta_max=0.1, pct_start=pct,
                                     three_phase=three, by_epoch=False, end=12)], 1, 15)
    with pytest.raises(ConfigError, match=r"param_scheduler\[0\]\.pct_start=0\.01 is invalid"
                                          r".*divides by zero"):
        from_mmengine([dict(type="OneCycleLR", eta_max=0.1, total_steps=100, pct_start=0.01,
                            by_epoch=False)])
