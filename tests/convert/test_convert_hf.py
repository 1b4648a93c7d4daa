"""from_hf against the real ``transformers.get_scheduler``: same rates at every step."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pytest
import torch
import transformers  # installed by the integrations extra: a missing peer fails, never skips
from _peers import lrkit_rates, optimizer, torch_rates
from hypothesis import given, settings
from hypothesis import strategies as st

from lrkit.convert import from_hf
from lrkit.errors import ConfigError

W, T = 7, 60

CASES: list[tuple[str, dict[str, Any]]] = [
    ("linear", {}),
    ("cosine", {}),
    ("cosine", {"num_cycles": 1.5}),
    ("cosine", {"num_cycles": 0.3}),
    ("cosine_with_restarts", {"num_cycles": 3}),
    ("polynomial", {"lr_end": 1e-4, "power": 2.0}),
    ("constant", {}),
    ("constant_with_warmup", {}),
    ("inverse_sqrt", {}),
    ("inverse_sqrt", {"timescale": 25}),
    ("cosine_with_min_lr", {"min_lr_rate": 0.05}),
    ("cosine_with_min_lr", {"min_lr": 0.01}),
    ("cosine_with_min_lr", {"min_lr_rate": 0.1, "num_cycles": 2.0}),
    ("warmup_stable_decay", {"num_decay_steps": 20, "min_lr_ratio": 0.1}),
    ("warmup_stable_decay", {"num_decay_steps": 15, "decay_type": "1-sqrt",
                             "warmup_type": "cosine"}),
    ("warmup_stable_decay", {"num_decay_steps": 15, "decay_type": "linear",
                             "num_stable_steps": 10}),
    ("warmup_stable_decay", {"num_decay_steps": 0, "min_lr_ratio": 0.1}),
    ("warmup_stable_decay", {"num_decay_steps": 0, "num_stable_steps": 10, "min_lr_ratio": 0.2}),
]


@pytest.mark.parametrize(("name", "kw"), CASES)
@pytest.mark.parametrize("warmup", [0, W])
def test_parity_with_get_scheduler(name: str, kw: dict[str, Any], warmup: int) -> None:
    lr = 0.2
    params = [torch.nn.Parameter(torch.zeros(1))]
    opt = torch.optim.AdamW([{"params": params}, {"params": [torch.nn.Parameter(
        torch.zeros(1))], "lr": 0.05}], lr=lr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sched = transformers.get_scheduler(name, opt, num_warmup_steps=warmup,
                                           num_training_steps=T,
                                           scheduler_specific_kwargs=dict(kw))
        theirs = []
        for _ in range(T):
            theirs.append([g["lr"] for g in opt.param_groups])
            sched.step()
    ours = from_hf(name, num_warmup_steps=warmup, num_training_steps=T, lr=lr, **kw)
    got = np.asarray(theirs)
    for gi, base in enumerate((lr, 0.05)):
        want = ours(np.arange(float(T)), base=base)
        np.testing.assert_allclose(want, got[:, gi], rtol=1e-12, atol=1e-17)


def test_reduce_lr_on_plateau_maps_to_plateau() -> None:
    s = from_hf("reduce_lr_on_plateau", factor=0.5, patience=2, mode="max")
    assert (s.factor, s.patience, s.mode) == (0.5, 2, "max")


def test_errors_name_the_argument() -> None:
    with pytest.raises(ConfigError, match="name='cosine_wrong' is invalid"):
        from_hf("cosine_wrong", num_warmup_steps=1, num_training_steps=10)
    with pytest.raises(ConfigError, match=r"num_cycles=0 is invalid"):
        from_hf("cosine", num_warmup_steps=1, num_training_steps=10, num_cycles=0)
    with pytest.raises(ConfigError, match=r"num_cycles=1\.0 is invalid"):
        from_hf("warmup_stable_decay", num_warmup_steps=1, num_training_steps=10,
                num_decay_steps=4, num_cycles=1.0)
    with pytest.raises(ConfigError, match="num_training_steps=None"):
        from_hf("linear", num_warmup_steps=1)
    with pytest.raises(ConfigError, match="power=2 is invalid"):
        from_hf("linear", num_warmup_steps=1, num_training_steps=10, power=2)
    # transformers/optimization.py get_inverse_sqrt_schedule: only ``timescale is None``
    # defaults (to num_warmup_steps or 10_000); 0 reaches the lambda and divides by zero
    with pytest.raises(ConfigError, match="timescale=0 is invalid"):
        from_hf("inverse_sqrt", num_warmup_steps=5, timescale=0)
    # transformers/optimization.py get_polynomial_decay_schedule_with_warmup requires
    # optimizer.defaults["lr"] > lr_end
    with pytest.raises(ConfigError, match=r"lr_end=0\.1 is invalid"):
        from_hf("polynomial", num_warmup_steps=1, num_training_steps=10, lr=0.1, lr_end=0.1)
    with pytest.raises(ConfigError, match="warmup_type='1-sqrt'"):
        from_hf("warmup_stable_decay", num_warmup_steps=1, num_training_steps=10,
                num_decay_steps=2, warmup_type="1-sqrt")


def _hf_rates(name: str, lrs: tuple[float, ...], w: int, total: int, kw: dict[str, Any],
              steps: int) -> list[list[float]]:
    opt = optimizer(lrs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sched = transformers.get_scheduler(name, opt, num_warmup_steps=w,
                                           num_training_steps=total,
                                           scheduler_specific_kwargs=dict(kw))
    return torch_rates(sched, opt, steps)


@st.composite
def hf_configs(draw: st.DrawFn) -> tuple[str, int, int, dict[str, Any]]:
    name = draw(st.sampled_from(["linear", "cosine", "cosine_with_restarts", "polynomial",
                                 "constant_with_warmup", "inverse_sqrt", "cosine_with_min_lr",
                                 "cosine_warmup_with_min_lr", "warmup_stable_decay"]))
    w = draw(st.integers(0, 6))
    total = w + draw(st.integers(1, 20))
    kw: dict[str, Any] = {}
    if name == "cosine_with_restarts":
        kw["num_cycles"] = draw(st.integers(1, 3))
    if name == "polynomial":
        kw.update(lr_end=draw(st.sampled_from([0.0, 1e-4])),
                  power=draw(st.sampled_from([0.5, 1.0, 2.0])))
    if name in ("cosine_with_min_lr", "cosine_warmup_with_min_lr"):
        if draw(st.booleans()):
            kw["min_lr_rate"] = draw(st.sampled_from([0.0, 0.05, 0.5]))
        else:
            kw["min_lr"] = draw(st.sampled_from([1e-3, 0.01]))
        kw["num_cycles"] = draw(st.sampled_from([0.5, 0.5, 1.5]))
    if name == "cosine_warmup_with_min_lr" and draw(st.booleans()):
        kw["warmup_lr_rate"] = draw(st.sampled_from([0.0, 0.1, 0.5]))
    if name == "warmup_stable_decay":
        kw.update(num_decay_steps=draw(st.integers(0, total - w)),
                  min_lr_ratio=draw(st.sampled_from([0.0, 0.1])),
                  decay_type=draw(st.sampled_from(["linear", "cosine", "1-sqrt"])),
                  warmup_type=draw(st.sampled_from(["linear", "cosine"])))
    return name, w, total, kw


@settings(max_examples=40)
@given(hf_configs())
def test_random_configurations_match_get_scheduler(
    config: tuple[str, int, int, dict[str, Any]]
) -> None:
    """transformers.get_scheduler stepped on several groups, side by side with the converted
    schedule under lrkit's LRScheduler, up to num_training_steps (where HF's cosine forms
    would climb back lrkit holds the final value, as documented)."""
    name, w, total, kw = config
    lrs = (0.2, 0.05, 0.2)  # the optimizer's default rate is the first group's
    theirs = _hf_rates(name, lrs, w, total, kw, total)
    ours = from_hf(name, num_warmup_steps=w, num_training_steps=total, lr=lrs[0], **kw)
    np.testing.assert_allclose(lrkit_rates(optimizer(lrs), ours, total), theirs,
                               rtol=1e-12, atol=1e-17)


def test_wsd_without_decay_runs_and_errors_name_the_users_arguments() -> None:
    """HF runs num_decay_steps=0 (stable, then min_lr_ratio); errors name HF's arguments."""
    s = from_hf("warmup_stable_decay", num_warmup_steps=2, num_training_steps=8,
                num_decay_steps=0, min_lr_ratio=0.1)
    assert [s(t) for t in (0, 1, 2, 7, 8, 20)] == [0.1, 0.55, 1.0, 1.0, 0.1, 0.1]
    with pytest.raises(ConfigError, match="num_decay_steps=-1 is invalid"):
        from_hf("warmup_stable_decay", num_warmup_steps=2, num_training_steps=8,
                num_decay_steps=-1)
    with pytest.raises(ConfigError, match="num_training_steps=3 is invalid"):
        from_hf("warmup_stable_decay", num_warmup_steps=2, num_training_steps=3,
                num_decay_steps=2)


def test_cosine_warmup_with_min_lr_without_warmup_starts_one_step_in() -> None:
    """transformers' cosine_warmup_with_min_lr lambda with num_warmup_steps=0: step t is at
    progress (t + 1) / num_training_steps (it used to be refused); cosine waves included."""
    for kw in ({"min_lr_rate": 0.1}, {"min_lr": 0.01, "num_cycles": 1.5},
               {"min_lr_rate": 0.0, "warmup_lr_rate": 0.5}):
        lrs = (0.2, 0.05)
        theirs = _hf_rates("cosine_warmup_with_min_lr", lrs, 0, 10, kw, 10)
        ours = from_hf("cosine_warmup_with_min_lr", num_warmup_steps=0, num_training_steps=10,
                       lr=lrs[0], **kw)
        np.testing.assert_allclose(lrkit_rates(optimizer(lrs), ours, 10), theirs,
                                   rtol=1e-12, atol=1e-17)
    s = from_hf("cosine_warmup_with_min_lr", num_warmup_steps=0, num_training_steps=10,
                min_lr_rate=0.1)
    assert s(0) == pytest.approx(0.1 + 0.9 * (1 + math.cos(math.pi / 10)) / 2, rel=1e-14)
    assert s(9) == s(50) == pytest.approx(0.1, rel=1e-14)
