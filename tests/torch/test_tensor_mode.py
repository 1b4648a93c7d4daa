"""Tensor mode (in-place tensor values) and device-side stepping, checked on CPU."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from lrkit import Constant, Cosine, Linear, OneCycle, Poly, Rel, Warmup
from lrkit.torch import DeviceStepper, LRScheduler

TOTAL = 40


def _schedules() -> dict[str, Any]:
    return {
        "warmup_poly": Warmup(Poly(total_steps=TOTAL - 8, power=0.9, end=Rel(0.01)), steps=8),
        "warmup_cosine": Warmup(Cosine(total_steps=TOTAL - 8), steps=8),
        "onecycle": OneCycle(total_steps=TOTAL, peak=1e-2),
    }


def _adam(lr: Any, betas: Any = (0.9, 0.999), n: int = 2) -> torch.optim.Adam:
    params = [torch.nn.Parameter(torch.zeros(3)) for _ in range(n)]
    return torch.optim.Adam([{"params": [p]} for p in params], lr=lr, betas=betas,
                            foreach=False)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_tensor_values_updated_in_place(dtype: torch.dtype) -> None:
    opt = _adam(torch.tensor(1e-2, dtype=dtype),
                betas=(torch.tensor(0.9, dtype=dtype), torch.tensor(0.999, dtype=dtype)))
    lr_ts = [g["lr"] for g in opt.param_groups]
    b1_ts = [g["betas"][0] for g in opt.param_groups]
    s = _schedules()["warmup_poly"]
    m = OneCycle(total_steps=TOTAL).momentum()
    sched = LRScheduler(opt, s, beta1=m)
    base = float(torch.tensor(1e-2, dtype=dtype))  # the base is the value the group holds
    for k in range(TOTAL + 3):
        for g, lr_t, b1_t in zip(opt.param_groups, lr_ts, b1_ts, strict=True):
            assert g["lr"] is lr_t
            assert g["betas"][0] is b1_t
            assert lr_t.dtype == dtype
            assert lr_t.shape == ()
            assert lr_t.item() == torch.tensor(s(k, base=base), dtype=dtype).item()
            assert b1_t.item() == torch.tensor(m(k), dtype=dtype).item()
        opt.step()
        sched.step()
    last = sched.get_last_lr()
    assert all(type(v) is float for v in last)  # floats: never the group tensors


def test_tensor_true_converts_float_values() -> None:
    opt = _adam(1e-2)
    sched = LRScheduler(opt, Linear(10), beta2=Constant(0.99), tensor=True)
    for g in opt.param_groups:
        assert isinstance(g["lr"], torch.Tensor)
        assert g["lr"].shape == ()
        assert g["lr"].device == g["params"][0].device
        assert g["betas"][0] == 0.9
        assert isinstance(g["betas"][1], torch.Tensor)
    ids = [id(g["lr"]) for g in opt.param_groups]
    sched.step()
    assert [id(g["lr"]) for g in opt.param_groups] == ids
    assert float(opt.param_groups[0]["lr"]) == pytest.approx(9e-3)


def test_optimizer_load_state_dict_new_tensors_are_followed() -> None:
    opt = _adam(torch.tensor(1e-2))
    sched = LRScheduler(opt, Linear(10))
    sched.step()
    opt.load_state_dict(opt.state_dict())  # new group dicts and tensors
    sched.step()
    assert float(opt.param_groups[0]["lr"]) == pytest.approx(8e-3)


@pytest.mark.parametrize("name", sorted(_schedules()))
def test_device_stepping_equals_torch_evaluation_and_host_path(name: str) -> None:
    s = _schedules()[name]
    base = 1e-2
    opt_dev = _adam(torch.tensor(base, dtype=torch.float64))
    opt_host = _adam(torch.tensor(base, dtype=torch.float64))
    dev = LRScheduler(opt_dev, s, device=True)
    host = LRScheduler(opt_host, s)
    bound = s.bind(base)
    for k in range(TOTAL + 5):
        want = bound.eval_tensor(torch.tensor(float(k), dtype=torch.float64))
        got = opt_dev.param_groups[0]["lr"]
        assert torch.equal(got, want)  # both torch ops: exactly equal
        torch.testing.assert_close(got, opt_host.param_groups[0]["lr"], rtol=1e-13, atol=0)
        dev.step()
        host.step()
    assert dev.last_epoch == host.last_epoch == TOTAL + 5
    assert dev.get_last_lr() == host.get_last_lr()


def test_device_mode_set_step_and_load_write_the_counter_in_place() -> None:
    s = _schedules()["warmup_cosine"]
    opt = _adam(1e-2)
    sched = LRScheduler(opt, s, device=True)
    assert isinstance(opt.param_groups[0]["lr"], torch.Tensor)
    dev = sched._device
    assert dev is not None
    counter = dev.step_tensor
    for _ in range(5):
        sched.step()
    state = sched.state_dict()
    assert state["step"] == 5
    sched.load_state_dict({**state, "step": 0})
    assert dev.step_tensor is counter
    assert float(counter) == 0.0
    sched.set_step(20)
    assert float(counter) == 20.0
    assert float(opt.param_groups[0]["lr"]) == pytest.approx(s(20, base=1e-2), rel=1e-6)


def test_device_stepper_shares_one_evaluation() -> None:
    a = torch.zeros((), dtype=torch.float32)
    b = torch.zeros((), dtype=torch.float64)
    st = DeviceStepper([(Linear(4, start=1.0, end=0.0), [a, b])], step=1)
    assert float(a) == float(b) == 0.75
    st.advance()
    assert (float(a), float(b), st.read_step()) == (0.5, 0.5, 2)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_device_mode_on_cuda_matches_cpu_device_mode() -> None:
    s = _schedules()["onecycle"]
    cuda_opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(3, device="cuda"))],
                                lr=torch.tensor(1e-2, device="cuda", dtype=torch.float64),
                                capturable=True)
    cpu_opt = _adam(torch.tensor(1e-2, dtype=torch.float64), n=1)
    a, b = LRScheduler(cuda_opt, s, device=True), LRScheduler(cpu_opt, s, device=True)
    for _ in range(TOTAL):
        a.step()
        b.step()
        torch.testing.assert_close(cuda_opt.param_groups[0]["lr"].cpu(),
                                   cpu_opt.param_groups[0]["lr"], rtol=1e-12, atol=0)
