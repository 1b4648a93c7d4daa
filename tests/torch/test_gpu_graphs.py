"""Device-side stepping inside CUDA graphs (skipped without CUDA).

- The schedule evaluated on a device step counter inside a captured graph gives, replay
  after replay, the host path's values.
- A whole training step (8-layer MLP, forward, backward, ``AdamW(capturable=True)`` and the
  schedule's step) captured once and replayed trains exactly like the eager loop driven by
  the host schedule.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

from lrkit import Cosine, OneCycle, Poly, Warmup

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

BASE_LR = 1e-3
TOTAL = 60
WARMUP = 10

SCHEDULES = {
    "warmup_poly": lambda: Warmup(Poly(total_steps=TOTAL - WARMUP, power=0.9), steps=WARMUP),
    "warmup_cosine": lambda: Warmup(Cosine(total_steps=TOTAL - WARMUP), steps=WARMUP),
    "onecycle": lambda: OneCycle(total_steps=TOTAL, peak=BASE_LR),
}


def _capture(step_fn: Callable[[], Any], before: Callable[[], Any] = lambda: None,
             warmup_iters: int = 3) -> torch.cuda.CUDAGraph:
    """Warm up on a side stream (as torch.cuda.graph requires), then capture one call."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(warmup_iters):
            before()
            step_fn()
    torch.cuda.current_stream().wait_stream(side)
    before()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step_fn()
    return graph


@pytest.mark.parametrize("name", sorted(SCHEDULES))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_schedule_in_graph_matches_host(name: str, dtype: torch.dtype) -> None:
    sched = SCHEDULES[name]().bind(BASE_LR)
    step = torch.zeros((), dtype=torch.float64, device="cuda")
    lr = torch.zeros((), dtype=dtype, device="cuda")

    def advance() -> None:
        lr.copy_(sched.eval_tensor(step, check=False))
        step.add_(1.0)

    graph = _capture(advance)
    step.zero_()
    got = []
    for _ in range(TOTAL + 10):  # past the horizon too
        graph.replay()
        got.append(lr.clone())
    got_t = torch.stack(got).cpu().double()
    want = torch.tensor([sched(k) for k in range(TOTAL + 10)], dtype=dtype).double()
    # float64: CUDA's pow/cos may differ from the host's libm by an ulp; float32: exact
    # after rounding in all but rare ties, so the same few-ulp tolerance serves both
    torch.testing.assert_close(got_t, want, rtol=4 * torch.finfo(dtype).eps, atol=1e-15)


def _mlp(depth: int = 8, width: int = 64) -> torch.nn.Module:
    torch.manual_seed(0)
    layers: list[torch.nn.Module] = []
    for i in range(depth):
        layers.append(torch.nn.Linear(width, width))
        if i < depth - 1:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers).cuda()


def test_graph_captured_training_step_matches_eager() -> None:
    sched = SCHEDULES["warmup_poly"]().bind(BASE_LR)
    x = torch.randn(32, 64, device="cuda", generator=torch.Generator("cuda").manual_seed(1))
    y = torch.randn(32, 64, device="cuda", generator=torch.Generator("cuda").manual_seed(2))

    # the graph: forward, backward, optimizer step, then the schedule's device step
    model = _mlp()
    opt = torch.optim.AdamW(model.parameters(), lr=torch.tensor(BASE_LR, device="cuda"),
                            capturable=True, foreach=True)
    lr = opt.param_groups[0]["lr"]
    step = torch.zeros((), dtype=torch.float64, device="cuda")

    def train_step() -> None:
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()
        step.add_(1.0)
        lr.copy_(sched.eval_tensor(step, check=False))

    state0 = {k: v.clone() for k, v in model.state_dict().items()}
    graph = _capture(train_step, before=lambda: opt.zero_grad(set_to_none=True))
    # the warm-up iterations trained and stepped: start again from step 0 and the same
    # weights, with fresh optimizer state (in place: the graph holds these tensors)
    with torch.no_grad():
        for k, v in model.state_dict().items():
            v.copy_(state0[k])
        for st in opt.state.values():
            for v in st.values():
                v.zero_()
    step.zero_()
    lr.fill_(sched(0))

    # the reference: eager, not capturable, float lr from the host schedule
    ref = _mlp()
    ref.load_state_dict(state0)
    ref_opt = torch.optim.AdamW(ref.parameters(), lr=BASE_LR, foreach=True)

    lrs = []
    for k in range(TOTAL + 5):
        lrs.append(float(lr))
        graph.replay()
        ref_opt.param_groups[0]["lr"] = sched(k)
        ref_opt.zero_grad(set_to_none=True)
        torch.nn.functional.mse_loss(ref(x), y).backward()
        ref_opt.step()
    torch.cuda.synchronize()

    want = [float(torch.tensor(sched(k), dtype=torch.float32)) for k in range(TOTAL + 5)]
    assert lrs == pytest.approx(want, rel=1e-6)
    for (name, got), want_p in zip(model.named_parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(got, want_p, rtol=1e-4, atol=1e-6, msg=name)


def test_lrkit_scheduler_device_mode_in_graph() -> None:
    """lrkit.torch.LRScheduler's device stepping captured with the training step."""
    lrkit_torch = pytest.importorskip("lrkit.torch")
    sched = SCHEDULES["onecycle"]()
    model = _mlp()
    x = torch.randn(32, 64, device="cuda")
    y = torch.randn(32, 64, device="cuda")
    opt = torch.optim.AdamW(
        model.parameters(), lr=torch.tensor(BASE_LR, device="cuda"),
        betas=(torch.tensor(0.9, device="cuda"), torch.tensor(0.999, device="cuda")),
        capturable=True, foreach=True,
    )
    scheduler = lrkit_torch.LRScheduler(opt, sched, beta1=sched.momentum(), device=True)

    def train_step() -> None:
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()
        scheduler.step()

    graph = _capture(train_step, before=lambda: opt.zero_grad(set_to_none=True))
    scheduler.set_step(0)  # the warm-up iterations stepped it; in place, outside capture
    lrs, beta1s = [], []
    for _ in range(TOTAL + 5):
        graph.replay()
        lrs.append(float(opt.param_groups[0]["lr"]))
        beta1s.append(float(opt.param_groups[0]["betas"][0]))
    want_lr = [sched(k + 1) for k in range(TOTAL + 5)]
    want_b1 = [sched.momentum()(k + 1) for k in range(TOTAL + 5)]
    assert lrs == pytest.approx(want_lr, rel=1e-6)
    assert beta1s == pytest.approx(want_b1, rel=1e-6)
