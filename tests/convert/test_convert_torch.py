"""from_torch against the real PyTorch schedulers: the converted schedule evaluated at step k
equals the rate torch's scheduler writes after k calls of step()."""

from __future__ import annotations

import math
import random
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from _peers import lrkit_rates, optimizer, rates, torch_rates
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch.optim import lr_scheduler as L

from lrkit.convert import from_torch
from lrkit.errors import ConfigError


def _opt(lr: float, groups: int = 1) -> torch.optim.Optimizer:
    params = [{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr * (i + 1)}
              for i in range(groups)]
    return torch.optim.SGD(params, lr=lr, momentum=0.9)


def _check(make: Callable[[torch.optim.Optimizer], Any], steps: int, lr: float,
           groups: int = 1, upto: int | None = None) -> None:
    opt = _opt(lr, groups)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sched = make(opt)
        bases = [g.get("initial_lr", g["lr"]) for g in opt.param_groups]
        ours = [from_torch(sched, group=g) for g in range(groups)]
        theirs = []
        for _ in range(steps):
            theirs.append([g["lr"] for g in opt.param_groups])
            sched.step()
    got = np.asarray(theirs)
    n = steps if upto is None else upto
    for g in range(groups):
        want = ours[g](np.arange(float(steps)), base=bases[g])
        np.testing.assert_allclose(want[:n], got[:n, g], rtol=1e-11, atol=1e-15)


CASES: dict[str, Callable[[random.Random], tuple[Callable[..., Any], int, int | None]]] = {
    "step": lambda r: (lambda o: L.StepLR(o, r.randint(1, 40), r.uniform(0.1, 1.0)), 300, None),
    "multistep": lambda r: (
        lambda o: L.MultiStepLR(o, sorted(r.sample(range(1, 200), 3)), r.uniform(0.1, 1)),
        300, None),
    "exp": lambda r: (lambda o: L.ExponentialLR(o, r.uniform(0.95, 1.0)), 300, None),
    "cosine": lambda r: (  # torch climbs back after T_max; lrkit holds eta_min
        (t := r.randint(5, 200)) and (lambda o: L.CosineAnnealingLR(o, t, r.uniform(0, 1e-3))),
        250, t + 1),
    "poly": lambda r: (
        (t := r.randint(5, 200)) and (lambda o: L.PolynomialLR(o, t, r.uniform(0.5, 3))),
        250, None),
    "linear": lambda r: (
        lambda o: L.LinearLR(o, r.uniform(0.01, 1), r.uniform(0.01, 1), r.randint(1, 100)),
        150, None),
    "constant": lambda r: (lambda o: L.ConstantLR(o, r.uniform(0.01, 1), r.randint(1, 50)),
                           80, None),
    "sgdr": lambda r: (
        lambda o: L.CosineAnnealingWarmRestarts(o, r.randint(1, 30), r.randint(1, 3),
                                                r.uniform(0, 1e-3)), 400, None),
    "onecycle": lambda r: (
        (t := r.randint(20, 400)) and (lambda o: L.OneCycleLR(
            o, [0.5, 1.0], total_steps=t, pct_start=r.uniform(0.1, 0.45),
            anneal_strategy=r.choice(["cos", "linear"]), div_factor=r.uniform(2, 50),
            final_div_factor=r.uniform(2, 1e4), three_phase=r.random() < 0.5)),
        t, t - 1),
    "cyclic": lambda r: (lambda o: L.CyclicLR(
        o, [1e-3, 2e-3], [0.1, 0.3], step_size_up=r.randint(1, 40),
        step_size_down=r.choice([None, r.randint(1, 40)]),
        mode=r.choice(["triangular", "triangular2", "exp_range"]), gamma=r.uniform(0.99, 1)),
        300, None),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_parity_with_torch(name: str) -> None:
    rng = random.Random(f"convert-{name}")
    for _ in range(6):
        make, steps, upto = CASES[name](rng)
        _check(make, steps, rng.uniform(1e-3, 1.0), groups=2, upto=upto)


def test_zero_length_linear_and_constant_keep_their_first_factor() -> None:
    """torch/optim/lr_scheduler.py LinearLR.get_lr / ConstantLR.get_lr with total_iters=0:
    the first step (last_epoch 0) multiplies by start_factor / factor; later steps leave the
    rate alone (past total_iters, or not equal to it), so the factor is never undone."""
    _check(lambda o: L.LinearLR(o, start_factor=0.2, end_factor=0.9, total_iters=0), 10, 0.1,
           groups=2)
    _check(lambda o: L.ConstantLR(o, factor=0.3, total_iters=0), 10, 0.1, groups=2)
    # as a later child of SequentialLR it is entered through step(0), whose closed form
    # (ConstantLR._get_closed_form_lr) is already past total_iters: the base rate
    _check(lambda o: L.SequentialLR(o, [L.ConstantLR(o, factor=0.3, total_iters=0),
                                        L.ExponentialLR(o, 0.9),
                                        L.ConstantLR(o, factor=0.5, total_iters=0)], [3, 6]),
           12, 0.1, groups=2)


def test_sequential_lr() -> None:
    """Warmup (LinearLR), then cosine, then a constant tail: SequentialLR's milestones are
    global steps and each child starts from its own step 0 there."""
    def make(o: torch.optim.Optimizer) -> Any:
        warm = L.LinearLR(o, 0.01, 1.0, total_iters=10)
        cos = L.CosineAnnealingLR(o, T_max=50, eta_min=1e-4)
        tail = L.ConstantLR(o, factor=0.1, total_iters=1000)
        return L.SequentialLR(o, [warm, cos, tail], milestones=[10, 60])

    _check(make, 200, 0.3, groups=2)


def test_lambda_lr_is_a_clear_error() -> None:
    opt = _opt(0.1)
    with pytest.raises(ConfigError, match=r"scheduler='LambdaLR' is invalid: .*LambdaLR"):
        from_torch(L.LambdaLR(opt, lambda k: 1.0))
    with pytest.raises(ConfigError, match="scale_fn"):
        from_torch(L.CyclicLR(opt, 0.01, 0.1, scale_fn=lambda x: 1.0))
    with pytest.raises(ConfigError, match="group=3"):
        from_torch(L.StepLR(opt, 3), group=3)


def test_reduce_lr_on_plateau_becomes_plateau_with_the_same_decisions() -> None:
    from lrkit.torch import LRScheduler

    def make(o: torch.optim.Optimizer) -> Any:
        return L.ReduceLROnPlateau(o, mode="max", factor=0.5, patience=2, threshold=0.01,
                                   cooldown=1, min_lr=[1e-3, 2e-3])

    ref_opt = _opt(0.1, groups=2)
    ref = make(ref_opt)
    opt = _opt(0.1, groups=2)
    sched = LRScheduler(opt, [from_torch(make(_opt(0.1, 2)), group=g) for g in range(2)])
    rng = random.Random("plateau")
    for _ in range(80):
        metric = rng.choice([0.5, 0.6, rng.uniform(0, 1)])
        ref.step(metric)
        sched.step(metric)
        assert [g["lr"] for g in opt.param_groups] == [g["lr"] for g in ref_opt.param_groups]
    assert opt.param_groups[0]["lr"] < 0.1  # reductions happened


def test_polynomial_lr_with_zero_total_iters_keeps_the_base_rate() -> None:
    """torch's PolynomialLR with total_iters=0: every step is past total_iters, the rate
    stays the base rate (it used to be refused)."""
    _check(lambda o: L.PolynomialLR(o, total_iters=0, power=2.0), 8, 0.1, groups=2)
    assert from_torch(L.PolynomialLR(_opt(0.1), total_iters=0))(5, base=0.1) == 0.1


@settings(max_examples=30)
@given(total=st.integers(1, 40), data=st.data(), three=st.booleans(),
       anneal=st.sampled_from(["cos", "linear"]))
def test_every_one_cycle_torch_builds_matches_torch(total: int, data: st.DataObject,
                                                    three: bool, anneal: str) -> None:
    """Any pct_start torch accepts: with pct_start * total_steps < 1 torch puts every step in
    its last phase, whose start (the end of the phase before it) is negative; with an empty
    phase after the rise (pct_start=1, or above about 1/2 with three_phase) it never reaches
    the later phases. Both used to be refused."""
    pct = data.draw(st.one_of(st.floats(0.0, 0.999).map(lambda f: f / total),
                              st.floats(0.0, 1.0), st.sampled_from([0.55, 0.9, 1.0])))

    def make(o: torch.optim.Optimizer) -> Any:
        return L.OneCycleLR(o, [1.0, 0.5], total_steps=total, pct_start=pct,
                            anneal_strategy=anneal, div_factor=5.0, final_div_factor=50.0,
                            three_phase=three)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref_opt = optimizer((0.1, 0.03))
        try:
            ref = make(ref_opt)
        except ZeroDivisionError:  # pct_start * total_steps == 1: torch's 0 / 0 at step 0
            assume(False)
        ours = [from_torch(ref, group=g) for g in range(2)]
    # the rates of updates 0 .. total - 1 (one step() fewer: with pct_start=1 torch's step()
    # to total_steps divides by zero)
    theirs = [*torch_rates(ref, ref_opt, total - 1), rates(ref_opt)]
    np.testing.assert_allclose(lrkit_rates(optimizer((0.1, 0.03)), ours, total), theirs,
                               rtol=1e-10, atol=1e-15)
    if pct * total < 1:
        # the formula of torch's last phase, typed here: from max_lr (two phases) or
        # max_lr / div_factor (three) at fraction (t - s) / (total - 1 - s)
        s = 2 * pct * total - 2 if three else pct * total - 1
        a, b = (0.2 if three else 1.0), 0.2 / 50
        q = (0 - s) / (total - 1 - s)
        want = b + (a - b) * (1 + math.cos(math.pi * q)) / 2 if anneal == "cos" \
            else a + (b - a) * q
        assert ours[0](0) == pytest.approx(want, rel=1e-12)


def _child(kind: str, run: int, d: st.DrawFn) -> Callable[[torch.optim.Optimizer], Any]:
    """A SequentialLR child that runs ``run`` steps there without passing its own horizon
    (torch's cosine climbs back after T_max and OneCycleLR raises after total_steps; lrkit
    holds the value there, as documented)."""
    f = d(st.sampled_from([0.01, 0.25, 0.5]))
    n = d(st.integers(1, 6))
    if kind == "linear":
        return lambda o: L.LinearLR(o, f, 1.0, n)
    if kind == "constant":
        return lambda o: L.ConstantLR(o, f, n)
    if kind == "step":
        return lambda o: L.StepLR(o, n, 0.5)
    if kind == "multistep":
        return lambda o: L.MultiStepLR(o, [n, n + 2], 0.5)
    if kind == "exp":
        return lambda o: L.ExponentialLR(o, 0.9)
    if kind == "poly":
        return lambda o: L.PolynomialLR(o, n, 2.0)
    if kind == "cosine":
        return lambda o: L.CosineAnnealingLR(o, max(run, 1), 1e-3)
    if kind == "sgdr":
        return lambda o: L.CosineAnnealingWarmRestarts(o, n, 2, 1e-4)
    if kind == "onecycle":  # pct_start 0.05: no rise (pct_start * total_steps < 1)
        total, three = max(run + 1, 8), d(st.booleans())
        pct = d(st.sampled_from([0.3, 0.05]))
        return lambda o: L.OneCycleLR(o, [1.0, 0.5], total_steps=total, div_factor=4 / f,
                                      pct_start=pct, three_phase=three)
    assert kind == "cyclic"
    return lambda o: L.CyclicLR(o, [0.01, 0.02], [0.1, 0.3], step_size_up=n,
                                mode=d(st.sampled_from(["triangular", "triangular2"])))


_KINDS = ("linear", "constant", "step", "multistep", "exp", "poly", "cosine", "sgdr",
          "onecycle", "cyclic")


@settings(max_examples=40)
@given(st.data())
def test_sequential_lr_matches_torch_in_every_construction_order(data: st.DataObject) -> None:
    """SequentialLR with any children, built in any order: OneCycleLR overwrites
    group["initial_lr"] and a CyclicLR built first sets it, so children built before and
    after them, and child 0, run from different bases. The converted schedules, driven by
    lrkit's LRScheduler on a fresh optimizer, give torch's rates in every group."""
    d = data.draw
    kinds = d(st.lists(st.sampled_from(_KINDS), min_size=1, max_size=3))
    runs = [d(st.integers(2, 8)) for _ in kinds]
    order = d(st.permutations(range(len(kinds))))
    makers = [_child(k, r, d) for k, r in zip(kinds, runs, strict=True)]
    milestones = list(np.cumsum(runs[:-1]).tolist())
    lrs = (0.1, 0.03)

    def build(o: torch.optim.Optimizer) -> Any:
        built: list[Any] = [None] * len(kinds)
        for i in order:
            built[i] = makers[i](o)
        return L.SequentialLR(o, built, milestones) if len(kinds) > 1 else built[0]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref_opt = optimizer(lrs)
        ref = build(ref_opt)
        ours = [from_torch(ref, group=g) for g in range(len(lrs))]
    steps = sum(runs)
    theirs = torch_rates(ref, ref_opt, steps)
    got = lrkit_rates(optimizer(lrs), ours, steps)
    np.testing.assert_allclose(got, theirs, rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_issue_repros(order: tuple[int, int]) -> None:
    """The two repros of issue 10 (lr 0.1), in both construction orders."""
    def linear_then_one_cycle(o: torch.optim.Optimizer) -> Any:
        makers = [lambda: L.LinearLR(o, start_factor=0.01, total_iters=4),
                  lambda: L.OneCycleLR(o, max_lr=1.0, total_steps=10, div_factor=4)]
        built = {i: makers[i]() for i in order}
        return L.SequentialLR(o, [built[0], built[1]], milestones=[4])

    def cyclic_then_exp(o: torch.optim.Optimizer) -> Any:
        makers = [lambda: L.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=5),
                  lambda: L.ExponentialLR(o, gamma=0.9)]
        built = {i: makers[i]() for i in order}
        return L.SequentialLR(o, [built[0], built[1]], milestones=[10])

    for make, steps in ((linear_then_one_cycle, 13), (cyclic_then_exp, 15)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref_opt = optimizer([0.1])
            ref = make(ref_opt)
            s = from_torch(ref)
        theirs = torch_rates(ref, ref_opt, steps)
        ours = lrkit_rates(optimizer([0.1]), s, steps)
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-15)
    # the values the issue quotes, built in the order written there
    o = optimizer([0.1])
    seq = L.SequentialLR(o, [L.LinearLR(o, start_factor=0.01, total_iters=4),
                             L.OneCycleLR(o, max_lr=1.0, total_steps=10, div_factor=4)], [4])
    assert from_torch(seq)(0, base=0.1) == pytest.approx(0.0025, rel=1e-12)
