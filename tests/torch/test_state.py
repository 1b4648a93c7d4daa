"""Saved state: plain data, weights_only loads, resume at any step, mismatch detection."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from lrkit import Cosine, Linear, Poly, Rel, StateError, Warmup
from lrkit.torch import LRScheduler, Plateau

WARMUP, TOTAL = 7, 30


def _schedule() -> Warmup:
    return Warmup(Poly(total_steps=TOTAL - WARMUP, power=0.9, end=Rel(0.1)), steps=WARMUP)


def _build(seed: int = 0) -> tuple[torch.nn.Module, torch.optim.Optimizer, LRScheduler]:
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 1))
    opt = torch.optim.SGD([{"params": model[0].parameters(), "lr": 1e-2},
                           {"params": model[1].parameters(), "lr": 1e-1}], momentum=0.9)
    return model, opt, LRScheduler(opt, _schedule(), momentum=Linear(TOTAL, start=0.95,
                                                                     end=0.85))


def _train(model: torch.nn.Module, opt: torch.optim.Optimizer, sched: LRScheduler,
           steps: int, record: list[tuple[float, ...]]) -> None:
    x = torch.linspace(-1, 1, 24).reshape(8, 3)
    for _ in range(steps):
        record.append(tuple(float(g[k]) for g in opt.param_groups for k in ("lr", "momentum")))
        opt.zero_grad()
        model(x).square().mean().backward()
        opt.step()
        sched.step()


def _roundtrip(obj: Any) -> Any:
    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def _is_plain(x: Any) -> bool:
    if isinstance(x, dict):
        return all(isinstance(k, str) and _is_plain(v) for k, v in x.items())
    if isinstance(x, list):
        return all(_is_plain(v) for v in x)
    return x is None or isinstance(x, (bool, int, float, str))


def test_state_is_plain_data_and_survives_weights_only() -> None:
    _, _opt, sched = _build()
    for _ in range(3):
        sched.step()
    state = sched.state_dict()
    assert _is_plain(state)
    assert state["step"] == 3
    assert state["fields"]["lr"]["bases"] == [1e-2, 1e-1]
    assert _roundtrip(state) == state


@given(k=st.sampled_from([0, 1, WARMUP - 1, WARMUP, WARMUP + 1, TOTAL - 1, TOTAL, TOTAL + 1])
       | st.integers(0, TOTAL + 5),
       optimizer_first=st.booleans())
def test_resume_at_any_step_equals_the_uninterrupted_run(k: int, optimizer_first: bool) -> None:
    n = TOTAL + 6
    model, opt, sched = _build()
    want: list[tuple[float, ...]] = []
    _train(model, opt, sched, n, want)

    model, opt, sched = _build()
    got: list[tuple[float, ...]] = []
    _train(model, opt, sched, k, got)
    saved = _roundtrip({"model": model.state_dict(), "opt": opt.state_dict(),
                        "sched": sched.state_dict()})
    model2, opt2, sched2 = _build(seed=1)  # fresh objects, other weights
    model2.load_state_dict(saved["model"])
    if optimizer_first:
        opt2.load_state_dict(saved["opt"])
        sched2.load_state_dict(saved["sched"])
    else:
        sched2.load_state_dict(saved["sched"])
        opt2.load_state_dict(saved["opt"])
    assert sched2.last_epoch == k
    _train(model2, opt2, sched2, n - k, got)
    assert got == want
    for a, b in zip(model2.parameters(), model.parameters(), strict=True):
        assert a.shape == b.shape


def test_scheduler_built_after_the_optimizer_state_keeps_the_base() -> None:
    """initial_lr recorded in the groups: a scheduler built after the optimizer's state was
    loaded (lr already decayed) still uses the original base."""
    _, opt, sched = _build()
    for _ in range(12):
        sched.step()
    opt_state, sched_state = opt.state_dict(), sched.state_dict()
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 1))
    opt2 = torch.optim.SGD([{"params": model[0].parameters(), "lr": 1e-2},
                            {"params": model[1].parameters(), "lr": 1e-1}], momentum=0.9)
    opt2.load_state_dict(opt_state)
    sched2 = LRScheduler(opt2, _schedule(), momentum=Linear(TOTAL, start=0.95, end=0.85))
    assert sched2.base_lrs == [1e-2, 1e-1]
    sched2.load_state_dict(sched_state)
    assert [g["lr"] for g in opt2.param_groups] == [g["lr"] for g in opt.param_groups]


_SCRIPT = textwrap.dedent("""
    import sys, torch
    from lrkit import Poly, Rel, Warmup
    from lrkit.torch import LRScheduler, Plateau

    def build():
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 1)
        opt = torch.optim.AdamW(model.parameters(), lr=torch.tensor(3e-3))
        s = Plateau(Warmup(Poly(total_steps=40, power=0.9, end=Rel(0.01)), steps=5),
                    factor=0.5, patience=1)
        return model, opt, LRScheduler(opt, s)

    def run(model, opt, sched, a, b, out):
        x = torch.linspace(-1, 1, 12).reshape(4, 3)
        for i in range(a, b):
            out.append(repr(float(opt.param_groups[0]["lr"])))
            opt.zero_grad()
            model(x).square().mean().backward()
            opt.step()
            sched.step(metric=float(1.0 / (1 + i // 4)) if i % 3 == 0 else None)
        out.extend(repr(float(p.detach().double().sum())) for p in model.parameters())

    mode, path = sys.argv[1], sys.argv[2]
    out = []
    if mode == "save":
        run(*build(), 0, 50, out)
        out.append("--")
        model, opt, sched = build()
        run(model, opt, sched, 0, 23, out)
        torch.save({"m": model.state_dict(), "o": opt.state_dict(), "s": sched.state_dict()},
                   path)
    else:
        model, opt, sched = build()
        ck = torch.load(path, weights_only=True)
        model.load_state_dict(ck["m"]); opt.load_state_dict(ck["o"])
        sched.load_state_dict(ck["s"])
        run(model, opt, sched, 23, 50, out)
    print("\\n".join(out))
""")


def test_resume_in_a_new_process_continues_bit_for_bit(tmp_path: Path) -> None:
    script = tmp_path / "resume.py"
    script.write_text(_SCRIPT)
    ck = str(tmp_path / "ck.pt")

    def run(mode: str) -> list[str]:
        res = subprocess.run([sys.executable, str(script), mode, ck], capture_output=True,
                             text=True, check=True, timeout=120)
        return res.stdout.split()

    full_and_first = run("save")
    cut = full_and_first.index("--")
    full, first = full_and_first[:cut], full_and_first[cut + 1:]
    second = run("load")
    n_params = 2
    assert first[:-n_params] + second == full


# -- mismatch and malformed state --------------------------------------------------------------

def _state_after(steps: int, **kw: Any) -> dict[str, Any]:
    _, _, sched = _build()
    for _ in range(steps):
        sched.step()
    return sched.state_dict()


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda o: LRScheduler(o, Cosine(TOTAL), momentum=Linear(TOTAL, start=0.95, end=0.85)),
         r"\['fields'\]\['lr'\]\['schedules'\]\[0\]"),
        (lambda o: LRScheduler(o, _schedule()), r"\['fields'\]\['momentum'\]"),
        (lambda o: LRScheduler(o, [_schedule(), None],
                               momentum=Linear(TOTAL, start=0.95, end=0.85)),
         r"\['schedules'\]\[1\]: saved .*, now None"),
    ],
)
def test_changed_configuration_raises(make: Any, match: str) -> None:
    state = _state_after(5)
    _, opt, _ = _build()
    sched = make(opt)
    with pytest.raises(StateError, match=match):
        sched.load_state_dict(state)


def test_changed_base_raises_and_keep_new_keeps_the_new_one() -> None:
    state = _state_after(5)
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD([{"params": [model.weight], "lr": 2e-2},
                           {"params": [model.bias], "lr": 1e-1}], momentum=0.9)
    mom = Linear(TOTAL, start=0.95, end=0.85)
    with pytest.raises(StateError, match=r"\['bases'\]\[0\]: saved 0.01, now 0.02"):
        LRScheduler(opt, _schedule(), momentum=mom).load_state_dict(state)
    sched = LRScheduler(opt, _schedule(), momentum=mom, on_mismatch="keep_new")
    sched.load_state_dict(state)
    assert sched.last_epoch == 5
    assert opt.param_groups[0]["lr"] == _schedule()(5, base=2e-2)


def test_changed_group_count_raises() -> None:
    state = _state_after(2)
    opt = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=1e-2, momentum=0.9)
    sched = LRScheduler(opt, _schedule(), momentum=Linear(TOTAL, start=0.95, end=0.85))
    with pytest.raises(StateError, match=r"\['groups'\]: saved 2, now 1"):
        sched.load_state_dict(state)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        ({"format": "torch"}, r"\['format'\]='torch' is invalid"),
        ({"version": 99}, r"\['version'\]=99 is invalid: expected one of 1, 2"),
        ({"step": -1}, r"\['step'\]=-1 is invalid"),
        ({"step": 1.5}, r"\['step'\]=1.5 is invalid"),
    ],
)
def test_malformed_state_raises(edit: dict[str, Any], match: str) -> None:
    _, _, sched = _build()
    with pytest.raises(StateError, match=match):
        sched.load_state_dict({**sched.state_dict(), **edit})
    with pytest.raises(StateError, match="expected a dict"):
        sched.load_state_dict([])  # type: ignore[arg-type]


def test_torch_scheduler_state_is_refused() -> None:
    opt = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=1e-2)
    torch_state = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 1.0).state_dict()
    with pytest.raises(StateError, match="format"):
        LRScheduler(opt, Linear(3)).load_state_dict(torch_state)


def test_plateau_state_is_checked() -> None:
    opt = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=1e-2)
    sched = LRScheduler(opt, Plateau(patience=0))
    state = sched.state_dict()
    with pytest.raises(StateError, match="reductions"):
        sched.load_state_dict({**state, "plateau": {**state["plateau"], "reductions": [1, 2]}})
    with pytest.raises(StateError, match="num_bad"):
        sched.load_state_dict({**state, "plateau": {**state["plateau"], "num_bad": -1}})


def _plateau_sched(skipped: str = "count") -> tuple[torch.optim.Optimizer, LRScheduler]:
    p = torch.nn.Parameter(torch.zeros(1))
    p.grad = torch.ones(1)
    opt = torch.optim.SGD([p], lr=0.1)
    return opt, LRScheduler(opt, Plateau(factor=0.5, patience=0), skipped=skipped)


@pytest.mark.parametrize("through", ["dict", "torch.save"])
def test_get_last_lr_after_load_with_a_reduction_at_the_saved_step(through: str) -> None:
    # was [0.05]: the reductions before the last step were not saved
    _, s = _plateau_sched()
    s.step(1.0)
    s.step(1.0)  # not better (patience 0): reduced at step 2
    assert (s.get_last_lr(), s.get_lr()) == ([0.1], [0.05])
    state = s.state_dict() if through == "dict" else _roundtrip(s.state_dict())
    opt2, s2 = _plateau_sched()
    s2.load_state_dict(state)
    assert (s2.get_last_lr(), s2.get_lr(), opt2.param_groups[0]["lr"]) == ([0.1], [0.05], 0.05)


@pytest.mark.parametrize("first_skipped", [True, False])
def test_get_last_lr_after_load_with_skipped_updates(first_skipped: bool) -> None:
    # skipped="skip": a metric on a step without an update reduces without advancing
    opt, s = _plateau_sched("skip")
    if not first_skipped:
        opt.step()
    s.step(1.0)
    s.step(2.0)  # no optimizer.step() since: no advance, but a reduction
    want_step = 0 if first_skipped else 1
    assert (s.last_epoch, s.get_last_lr(), s.get_lr()) == (want_step, [0.1], [0.05])
    _, s2 = _plateau_sched("skip")
    s2.load_state_dict(_roundtrip(s.state_dict()))
    assert (s2.last_epoch, s2.get_last_lr(), s2.get_lr()) == (want_step, [0.1], [0.05])
