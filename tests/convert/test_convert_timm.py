"""from_timm against the real timm: ``create_scheduler_v2`` stepped as timm's train.py steps
it (see ``_peers.timm_rates``), side by side with the converted schedule driven by
:class:`lrkit.torch.LRScheduler`, on optimizers with several param groups (and timm's
per-group ``lr_scale``)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from _peers import lrkit_rates, optimizer, timm_rates, timm_scheduler
from hypothesis import given, settings
from hypothesis import strategies as st

from lrkit.convert import from_timm
from lrkit.errors import ConfigError
from lrkit.torch import LRScheduler

LRS = (0.4, 0.1, 0.025)


def check_against_timm(sched: str, kw: dict[str, Any], *, epochs: int, upe: int,
                       scales: tuple[float | None, ...] = (None, None, None),
                       metrics: list[float] | None = None) -> None:
    """Every group's rate at every update equals timm's (train.py protocol)."""
    ts = timm_scheduler()
    kw = {**kw, "updates_per_epoch": upe}
    theirs = timm_rates(lambda o: ts.create_scheduler_v2(o, sched, **kw)[0],
                        optimizer(LRS, lr_scale=scales), epochs, upe,
                        None if metrics is None else metrics.__getitem__)
    opt = optimizer(LRS, lr_scale=scales)
    ours_sched = from_timm(sched, optimizer=opt, **kw)

    def metric(k: int) -> float | None:
        return metrics[k // upe] if metrics is not None and (k + 1) % upe == 0 else None

    ours = lrkit_rates(opt, ours_sched, epochs * upe, metric if metrics else None)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-16)


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
def test_matches_real_timm(sched: str, kw: dict[str, Any]) -> None:
    kw = dict(kw)
    upe = kw.pop("updates_per_epoch", 1)
    epochs = 60 if kw.get("step_on_epochs", True) else 25
    check_against_timm(sched, kw, epochs=epochs, upe=upe)


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


@pytest.mark.parametrize(("sched", "kw"), [
    ("tanh", {"num_epochs": 10}),  # timm's formula at t=0 is 0.99999917 x base
    ("multistep", {"decay_milestones": [1, 5], "decay_rate": 0.1}),  # 0.1 x base at t=0
    ("cosine", {"num_epochs": 10, "min_lr": 1e-5}),  # lr_min + (base - lr_min): not base
])
def test_update_zero_uses_the_rate_set_at_construction(sched: str, kw: dict[str, Any]) -> None:
    """timm sets the base rate at construction and first evaluates its formula after the
    first update (step_update(1)) or epoch (step(1)): update 0 runs at the base rate."""
    for on_epochs in (True, False):
        s = from_timm(sched, step_on_epochs=on_epochs, updates_per_epoch=3, **kw)
        assert s(0, base=0.1) == 0.1
        check_against_timm(sched, {**kw, "step_on_epochs": on_epochs}, epochs=12, upe=3)


def test_plateau_with_updates_per_epoch_runs_under_lrscheduler() -> None:
    """timm's train.py always passes updates_per_epoch; the plateau then decides once an
    epoch (step(epoch + 1, metric)), which lrkit's Plateau does with every=U."""
    s = from_timm("plateau", num_epochs=5, updates_per_epoch=3)
    LRScheduler(optimizer(LRS), s)  # accepted (it used to be refused)
    metrics = [1.0, 0.9, 0.9, 0.9, 0.95, 0.95, 0.95, 0.95, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3]
    check_against_timm("plateau", {"decay_rate": 0.5, "patience_epochs": 1,
                                   "plateau_mode": "min", "min_lr": 0.02},
                       epochs=len(metrics), upe=3, metrics=metrics, scales=(None, 0.5, 2.0))


def test_lr_scale_scales_every_rate_of_its_group() -> None:
    """timm's update_groups writes value * lr_scale (warmup and min_lr included): the repro
    of issue 10, a group with scale 0.5 gets half the rate."""
    kw = {"num_epochs": 10, "warmup_epochs": 2, "warmup_lr": 1e-4, "min_lr": 1e-3}
    opt = optimizer(LRS, lr_scale=(None, 0.5, 0.25))
    per_group = from_timm("cosine", optimizer=opt, **kw)
    plain = from_timm("cosine", **kw)
    for g, (lr, f) in enumerate(zip(LRS, (1.0, 0.5, 0.25), strict=True)):
        for t in range(12):
            assert per_group[g](t, base=lr) == pytest.approx(f * plain(t, base=lr), rel=1e-15)
    check_against_timm("cosine", kw, epochs=12, upe=2, scales=(None, 0.5, 0.25))


_SCHEDS = ("cosine", "tanh", "step", "multistep", "poly", "constant", "wsd", "rsqrt")


@st.composite
def timm_configs(draw: st.DrawFn) -> tuple[str, dict[str, Any], int, int]:
    sched = draw(st.sampled_from(_SCHEDS))
    on_epochs = draw(st.booleans())
    upe = draw(st.integers(1, 3))
    n = draw(st.integers(2, 10))
    kw: dict[str, Any] = {"num_epochs": n, "step_on_epochs": on_epochs,
                          "warmup_epochs": draw(st.integers(0, 3)),
                          "warmup_lr": draw(st.sampled_from([0.0, 1e-5, 0.01])),
                          "warmup_prefix": draw(st.booleans())}
    if sched in ("cosine", "tanh", "poly"):
        kw["min_lr"] = draw(st.sampled_from([0.0, 1e-4]))
    if sched in ("wsd", "rsqrt"):  # 0.05: above a group's base rate (wsd), or the rsqrt
        kw["min_lr"] = draw(st.sampled_from([0.0, 1e-4, 0.01, 0.05]))  # curve (rsqrt)
    if sched == "cosine":
        kw["cycle_limit"] = draw(st.integers(1, 3))
        if kw["cycle_limit"] > 1:
            kw["cycle_mul"] = draw(st.sampled_from([1.0, 1.5, 2.0]))
            kw["cycle_decay"] = draw(st.sampled_from([0.5, 1.0]))
        else:
            kw["k_decay"] = draw(st.sampled_from([1.0, 0.5, 2.0]))
    if sched == "poly":
        kw["decay_rate"] = draw(st.sampled_from([0.5, 1.0, 2.0]))
    if sched == "step":
        kw["decay_epochs"] = draw(st.integers(1, 4))
        kw["decay_rate"] = draw(st.sampled_from([0.1, 0.5]))
    if sched == "multistep":
        kw["decay_milestones"] = sorted(draw(st.sets(st.integers(0, n), min_size=1, max_size=3)))
    if sched in ("wsd", "rsqrt"):
        room = n if kw["warmup_prefix"] else n - kw["warmup_epochs"]
        if room < 1:
            kw["warmup_epochs"] = 0
            room = n
        kw["decay_epochs"] = draw(st.one_of(st.integers(1, room),
                                            st.sampled_from([0.2, 0.5, 0.99])))
        kw["decay_fn"] = draw(st.sampled_from([None, "linear", "cosine", "1-sqrt", "power",
                                               "exp"]))
        if sched == "rsqrt" and (kw["warmup_epochs"] == 0 or draw(st.booleans())):
            kw["stable_timescale"] = draw(st.integers(1, 4))
        if round(kw["decay_epochs"] * (room * (1 if on_epochs else upe))
                 if kw["decay_epochs"] < 1 else kw["decay_epochs"]) < 1:
            kw["decay_epochs"] = 1
    epochs = n + kw["warmup_epochs"] + 3
    return sched, kw, epochs, upe


@settings(max_examples=30)
@given(timm_configs(), st.sampled_from([(None, None, None), (None, 0.5, 0.1)]))
def test_random_configurations_match_real_timm(
    config: tuple[str, dict[str, Any], int, int], scales: tuple[float | None, ...]
) -> None:
    sched, kw, epochs, upe = config
    check_against_timm(sched, kw, epochs=epochs, upe=upe, scales=scales)


@settings(max_examples=10)
@given(st.lists(st.sampled_from([1.0, 0.9, 0.8, 0.5]), min_size=4, max_size=12),
       st.sampled_from(["min", "max"]), st.integers(0, 2), st.integers(1, 3))
def test_random_plateaus_match_real_timm(
    metrics: list[float], mode: str, patience: int, upe: int
) -> None:
    check_against_timm("plateau", {"plateau_mode": mode, "patience_epochs": patience,
                                   "decay_rate": 0.5, "min_lr": 1e-3},
                       epochs=len(metrics), upe=upe, metrics=metrics, scales=(None, 0.5, None))


def test_refusals_say_what_to_write_instead() -> None:
    with pytest.raises(ConfigError, match=r"decay_fn=<function.*callable decay.*WSD"):
        from_timm("wsd", num_epochs=10, decay_fn=lambda frac: 1 - frac)
    with pytest.raises(ConfigError, match="stable_timescale=None is invalid"):
        from_timm("rsqrt", num_epochs=10)
    with pytest.raises(ConfigError, match="decay_epochs=12 is invalid"):
        from_timm("wsd", num_epochs=10, decay_epochs=12)
    assert math.isclose(from_timm("none")(5, base=0.3), 0.3)


@pytest.mark.parametrize("sched", ["wsd", "rsqrt"])
def test_exp_decay_matches_timm(sched: str) -> None:
    """decay_fn="exp" (used to be refused): timm's (r**frac - r) / (1 - r), r = 0.1, pulling
    the stable value towards min_lr; checked against timm and the formula typed here."""
    kw = {"num_epochs": 10, "warmup_epochs": 1, "warmup_lr": 1e-3, "min_lr": 1e-3,
          "decay_epochs": 5, "decay_fn": "exp", "step_on_epochs": False}
    check_against_timm(sched, kw, epochs=13, upe=3, scales=(None, 0.5, None))
    s = from_timm(sched, updates_per_epoch=3, **kw)
    for t in (20, 25, 29):  # updates: warmup 3, stable + decay 27, the decay its last 15
        frac = (t - 3 - 12) / 15
        top = 0.4 / math.sqrt(1 + (t - 3) / 3) if sched == "rsqrt" else 0.4
        want = 1e-3 + (top - 1e-3) * (0.1**frac - 0.1) / 0.9
        assert s(t, base=0.4) == pytest.approx(want, rel=1e-12), t


@pytest.mark.parametrize("sched", ["wsd", "rsqrt"])
@pytest.mark.parametrize("on_epochs", [True, False])
def test_min_lr_floors_the_stable_phase_as_timm(sched: str, on_epochs: bool) -> None:
    """timm's WSDLRScheduler: lr = lr_min + (max(base * stable(t), lr_min) - lr_min) *
    decay(frac) after the warmup. wsd with min_lr above a group's base rate runs that group
    at min_lr (lrkit used to rise from the base to min_lr); rsqrt with min_lr > 0 (used to
    be refused) floors the rsqrt curve and decays it towards min_lr."""
    kw = {"num_epochs": 12, "warmup_epochs": 2, "warmup_lr": 1e-3, "min_lr": 0.03,
          "decay_epochs": 4, "stable_timescale": 1, "step_on_epochs": on_epochs}
    if sched == "wsd":
        kw.pop("stable_timescale")
    check_against_timm(sched, kw, epochs=15, upe=2, scales=(None, 0.5, None))
    # the formula typed here, in updates: warmup 4, stable + decay 24 - 4 = 20 of which the
    # decay is the last 8, timescale 2; t_s = t - 4 counts from the end of the warmup
    if not on_epochs:
        s = from_timm(sched, updates_per_epoch=2, **kw)
        if sched == "wsd":  # a group whose base rate (0.025) is below min_lr: min_lr
            assert [s(t, base=0.025) for t in (4, 10, 20, 30)] == pytest.approx([0.03] * 4)
        for t in (6, 16, 20, 23, 30):
            t_s = t - 4
            frac = min(max(t_s - 12, 0) / 8, 1.0)
            stable = 0.4 / math.sqrt(1 + t_s / 2) if sched == "rsqrt" else 0.4
            want = 0.03 + (max(stable, 0.03) - 0.03) * (1 - (frac if sched == "rsqrt"
                                                             else math.sqrt(frac)))
            assert s(t, base=0.4) == pytest.approx(want, rel=1e-12), t
