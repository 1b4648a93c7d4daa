"""lrkit.torch.CombinedOptimizer against the real torch optimizers it combines: updates,
one scheduler for both, state_dict round trips, hooks, closures, bad input."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from lrkit import ConfigError, Cosine
from lrkit.torch import CombinedOptimizer, LRScheduler

STEPS = 6
# the scheduler's note on Muon (tested in tests/inspect) is not what these tests are about
pytestmark = pytest.mark.filterwarnings("ignore::lrkit.inspect.ScheduleAdviceWarning")


def _model(seed: int = 0) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(5, 12), torch.nn.Tanh(), torch.nn.Linear(12, 7),
                               torch.nn.Tanh(), torch.nn.Linear(7, 3))


def _parts(model: torch.nn.Module) -> tuple[torch.optim.Muon, torch.optim.AdamW]:
    """Muon on the two hidden matrices, AdamW (two groups) on the head and the biases."""
    hidden = [model[0].weight, model[2].weight]
    biases = [p for n, p in model.named_parameters() if n.endswith("bias")]
    return (torch.optim.Muon(hidden, lr=0.02, weight_decay=0.1),
            torch.optim.AdamW([{"params": [model[4].weight]},
                               {"params": biases, "weight_decay": 0.0}],
                              lr=3e-3, weight_decay=0.01))


def _batch(k: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(100 + k)
    return torch.randn(16, 5, generator=g), torch.randn(16, 3, generator=g)


def _backward(model: torch.nn.Module, k: int) -> None:
    x, y = _batch(k)
    torch.nn.functional.mse_loss(model(x), y).backward()


def _cosine(k: int) -> float:  # typed here: 0.5 (1 + cos(pi k / STEPS))
    return 0.5 * (1 + math.cos(math.pi * k / STEPS))


def test_one_scheduler_drives_both_and_updates_equal_real_optimizers() -> None:
    """Stepped with lrkit's scheduler, the combination moves every parameter exactly as
    torch's Muon and AdamW stepped by hand at base x schedule."""
    a, b = _model(), _model()
    opt = CombinedOptimizer(*_parts(a))
    sched = LRScheduler(opt, Cosine(STEPS))
    muon, adamw = _parts(b)
    for k in range(STEPS):
        assert [g["lr"] for g in opt.param_groups] == pytest.approx(
            [0.02 * _cosine(k), 3e-3 * _cosine(k), 3e-3 * _cosine(k)], rel=1e-12)
        for g in muon.param_groups:
            g["lr"] = 0.02 * _cosine(k)
        for g in adamw.param_groups:
            g["lr"] = 3e-3 * _cosine(k)
        _backward(a, k)
        _backward(b, k)
        opt.step()
        muon.step()
        adamw.step()
        opt.zero_grad()
        muon.zero_grad()
        adamw.zero_grad()
        sched.step()
        for (name, p), q in zip(a.named_parameters(), b.parameters(), strict=True):
            assert torch.equal(p, q), (k, name)
    assert a[0].weight.ne(_model()[0].weight).any()  # it trained


def test_groups_are_the_parts_groups() -> None:
    muon, adamw = _parts(_model())
    opt = CombinedOptimizer(muon, adamw)
    assert opt.parts == (muon, adamw)
    assert all(g is h for g, h in zip(opt.param_groups, [*muon.param_groups,
                                                         *adamw.param_groups], strict=True))
    assert opt.owners() == [(0, muon), (1, adamw)]
    assert repr(opt) == "CombinedOptimizer(Muon: groups 0-0, AdamW: groups 1-2)"
    opt.param_groups[2]["lr"] = 0.5
    assert adamw.param_groups[1]["lr"] == 0.5


def _train(opt: torch.optim.Optimizer, sched: LRScheduler, model: torch.nn.Module,
           ks: range) -> None:
    for k in ks:
        _backward(model, k)
        opt.step()
        opt.zero_grad()
        sched.step()


def test_state_dict_resumes_bit_for_bit() -> None:
    full = _model()
    opt = CombinedOptimizer(*_parts(full))
    _train(opt, LRScheduler(opt, Cosine(STEPS)), full, range(STEPS))

    cut = _model()
    opt1 = CombinedOptimizer(*_parts(cut))
    sched1 = LRScheduler(opt1, Cosine(STEPS))
    _train(opt1, sched1, cut, range(3))
    saved = {"model": {k: v.clone() for k, v in cut.state_dict().items()},
             "opt": opt1.state_dict(), "sched": sched1.state_dict()}
    # the parts' own state dicts still work (each holds its own parameters only)
    assert len(opt1.parts[0].state_dict()["state"]) == 2
    assert len(opt1.parts[1].state_dict()["state"]) == 4
    assert len(saved["opt"]["state"]) == 6

    fresh = _model(seed=1)  # other weights: everything must come from the checkpoint
    fresh.load_state_dict(saved["model"])
    opt2 = CombinedOptimizer(*_parts(fresh))
    sched2 = LRScheduler(opt2, Cosine(STEPS))
    opt2.load_state_dict(saved["opt"])
    sched2.load_state_dict(saved["sched"])
    # after loading, the parts hold the loaded groups and state
    assert all(g is h for g, h in zip(opt2.param_groups, [*opt2.parts[0].param_groups,
                                                          *opt2.parts[1].param_groups],
                                      strict=True))
    hidden = fresh[0].weight
    assert opt2.parts[0].state[hidden] is opt2.state[hidden]
    assert "momentum_buffer" in opt2.parts[0].state[hidden]
    _train(opt2, sched2, fresh, range(3, STEPS))
    for (name, p), q in zip(full.named_parameters(), fresh.parameters(), strict=True):
        assert torch.equal(p, q), name
    for g, h in zip(opt.param_groups, opt2.param_groups, strict=True):
        assert g["lr"] == h["lr"]


def test_state_dict_of_another_combination_is_refused() -> None:
    model = _model()
    muon, adamw = _parts(model)
    # same group count and sizes, other kinds: AdamW first
    swapped = CombinedOptimizer(torch.optim.AdamW([model[0].weight, model[2].weight]),
                                torch.optim.Muon([model[4].weight]),
                                torch.optim.AdamW([p for n, p in model.named_parameters()
                                                   if n.endswith("bias")]))
    opt = CombinedOptimizer(muon, adamw)
    with pytest.raises(ValueError, match=r"param_groups'\]\[0\] is invalid: expected a group "
                                         r"of Muon \(part 0\); it lacks .*momentum"):
        opt.load_state_dict(swapped.state_dict())
    with pytest.raises(ValueError, match="different number of parameter groups"):
        opt.load_state_dict(CombinedOptimizer(torch.optim.SGD(model.parameters())).state_dict())


def test_hooks_and_closure_run_once_per_step() -> None:
    model = _model()
    opt = CombinedOptimizer(*_parts(model))
    seen: list[str] = []
    opt.register_step_pre_hook(lambda *_: seen.append("pre"))
    opt.register_step_post_hook(lambda *_: seen.append("post"))

    def closure() -> Any:
        seen.append("closure")
        opt.zero_grad()
        x, y = _batch(0)
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert seen == ["pre", "closure", "post"]
    assert isinstance(loss, torch.Tensor)
    assert opt.step() is None


def test_bad_input() -> None:
    model = _model()
    muon, adamw = _parts(model)
    with pytest.raises(ConfigError, match=r"optimizers=\(\) is invalid: expected at least one"):
        CombinedOptimizer()
    with pytest.raises(ConfigError, match=r"optimizers\[1\]=.* is invalid: expected a "
                                          "torch.optim.Optimizer"):
        CombinedOptimizer(muon, "adamw")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"optimizers\[0\]=.* is not a CombinedOptimizer"):
        CombinedOptimizer(CombinedOptimizer(muon), adamw)
    with pytest.raises(ConfigError, match=r"optimizers\[1\]='SGD' is invalid: expected an "
                                          r"optimizer of parameters no other part holds \(a "
                                          r"parameter of shape \(12, 5\) is also in "
                                          r"optimizers\[0\]\)"):
        CombinedOptimizer(muon, torch.optim.SGD([model[0].weight], lr=0.1))
    opt = CombinedOptimizer(muon, adamw)
    with pytest.raises(ConfigError, match=r"param_group=\{'lr': 0.1\} is invalid: expected a "
                                          "group added to one of the parts"):
        opt.add_param_group({"params": [torch.nn.Parameter(torch.ones(2))], "lr": 0.1})
    assert len(opt.param_groups) == 3
