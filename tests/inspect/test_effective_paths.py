"""Ground truth on every implementation path: torch's own parameter delta after a real step.

For each of the eight optimizers and each path torch has for it (single-tensor, foreach,
fused, capturable, capturable foreach, differentiable), with random hyperparameters and two
groups, lrkit's derived update must equal the measured change within the precision
``docs/effective_lr.md`` claims: ``|derived - delta| <= ULPS * eps * (|delta| + |p_old|)``
(eps of the parameter dtype; the ``|p_old|`` term is the rounding of ``p_new = p_old + delta``
itself). capturable paths refuse CPU tensors; the tests lift only torch's device check, so
torch's own capturable arithmetic runs here.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lrkit.inspect import effective_rates, last_update

ULPS = 4.0  # the bound docs/effective_lr.md states

_PATHS: dict[str, dict[str, Any]] = {
    "single": {"foreach": False},
    "foreach": {"foreach": True},
    "fused": {"fused": True},
    "capturable": {"foreach": False, "capturable": True},
    "capturable-foreach": {"foreach": True, "capturable": True},
    "differentiable": {"foreach": False, "differentiable": True},
    "differentiable-foreach": {"foreach": True, "differentiable": True},
}
_HAS = {  # the paths torch offers per optimizer (others raise in torch itself)
    "Adam": ["single", "foreach", "fused", "capturable", "capturable-foreach", "differentiable"],
    "AdamW": ["single", "foreach", "fused", "capturable", "capturable-foreach", "differentiable"],
    "NAdam": ["single", "foreach", "capturable", "capturable-foreach", "differentiable"],
    "RAdam": ["single", "foreach", "capturable", "capturable-foreach", "differentiable"],
    "Adamax": ["single", "foreach", "capturable", "capturable-foreach", "differentiable"],
    "RMSprop": ["single", "foreach", "capturable", "capturable-foreach", "differentiable"],
    "Adagrad": ["single", "foreach", "fused", "differentiable"],
    "SGD": ["single", "foreach", "fused", "differentiable", "differentiable-foreach"],
}


@contextlib.contextmanager
def cpu_capturable() -> Iterator[None]:
    """Let torch's capturable paths accept CPU tensors (only the device check is lifted)."""
    import torch.optim.optimizer as base

    orig = base._get_capturable_supported_devices

    def with_cpu(supports_xla: bool = True) -> list[str]:
        return [*orig(supports_xla), "cpu"]

    mods = [
        m for name, m in list(sys.modules.items())
        if name.startswith("torch.optim") and hasattr(m, "_get_capturable_supported_devices")
    ]
    with contextlib.ExitStack() as stack:
        for m in mods:
            stack.enter_context(mock.patch.object(m, "_get_capturable_supported_devices", with_cpu))
        yield


def _hyper(name: str, data: st.DataObject, fused: bool) -> dict[str, Any]:
    d = data.draw
    kw: dict[str, Any] = {}
    wd = d(st.sampled_from([0.0, 0.0, 0.05, 0.3]))
    kw["weight_decay"] = wd
    kw["maximize"] = d(st.booleans())
    if name in ("Adam", "AdamW", "NAdam", "RAdam", "Adamax"):
        kw["betas"] = (d(st.floats(0.5, 0.99)), d(st.floats(0.8, 0.9999)))
        kw["eps"] = d(st.sampled_from([1e-8, 1e-6, 1e-3]))
    if name in ("Adam", "AdamW"):
        kw["amsgrad"] = d(st.booleans())
        if name == "Adam":
            kw["decoupled_weight_decay"] = d(st.booleans())
    if name in ("NAdam", "RAdam"):
        kw["decoupled_weight_decay"] = d(st.booleans())
    if name == "NAdam":
        kw["momentum_decay"] = d(st.sampled_from([4e-3, 0.05, 0.5]))
    if name == "RMSprop":
        kw.update(alpha=d(st.floats(0.8, 0.999)), centered=d(st.booleans()),
                  momentum=d(st.sampled_from([0.0, 0.5, 0.9])),
                  eps=d(st.sampled_from([1e-8, 1e-3])))
    if name == "Adagrad":
        kw.update(lr_decay=d(st.sampled_from([0.0, 0.01, 0.3])),
                  initial_accumulator_value=d(st.sampled_from([0.0, 0.1])))
    if name == "SGD":
        mom = d(st.sampled_from([0.0, 0.5, 0.9]))
        nesterov = mom > 0 and d(st.booleans())
        kw.update(momentum=mom, nesterov=nesterov,
                  dampening=0.0 if nesterov else d(st.sampled_from([0.0, 0.3])))
    return kw


def _check(opt: Any, params: list[torch.Tensor], gen: torch.Generator, warm: int) -> None:
    def grads() -> None:
        for p in params:
            g = torch.randn(p.shape, generator=gen, dtype=torch.float64)
            g *= 10 ** (torch.rand(p.shape, generator=gen, dtype=torch.float64) * 4 - 2)
            p.grad = g.to(p.dtype)

    for _ in range(warm):
        grads()
        opt.step()
    grads()
    old = [p.detach().clone() for p in params]
    opt.step()
    derived = dict(last_update(opt))
    assert all(not r.skipped for r in effective_rates(opt))
    for p, o in zip(params, old, strict=True):
        delta = p.detach() - o
        eps = torch.finfo(p.dtype).eps
        bound = ULPS * eps * (delta.abs() + o.abs())
        err = (derived[p] - delta).abs()
        assert bool((err <= bound).all()), float((err / bound).max())


@pytest.mark.parametrize(
    ("name", "path"), [(n, p) for n, paths in _HAS.items() for p in paths]
)
@settings(max_examples=3)
@given(data=st.data())
def test_every_path_matches_torch_delta(name: str, path: str, data: st.DataObject) -> None:
    kw = {**_PATHS[path], **_hyper(name, data, path == "fused")}
    dtype = data.draw(st.sampled_from([torch.float64, torch.float32]))
    warm = data.draw(st.integers(0, 7))
    gen = torch.Generator().manual_seed(data.draw(st.integers(0, 2**16)))
    leaf = not kw.get("differentiable")  # differentiable steps need non-leaf-grad tensors
    params = [
        torch.nn.Parameter(torch.randn(s, generator=gen, dtype=dtype), requires_grad=leaf)
        for s in [(4, 3), (5,), (2, 3)]
    ]
    lrs = [data.draw(st.floats(1e-4, 0.3)) for _ in range(2)]
    opt = getattr(torch.optim, name)(
        [{"params": params[:2], "lr": lrs[0]}, {"params": params[2:], "lr": lrs[1]}], **kw
    )
    with cpu_capturable():
        _check(opt, params, gen, warm)


def test_adam_differentiable_float32_bias_correction() -> None:
    """Issue 10.8 repro: torch's float32 bias corrections on the differentiable path."""
    p = torch.zeros(1, dtype=torch.float64)
    opt = torch.optim.Adam([p], lr=0.1, betas=(0.9, 0.9999), differentiable=True)
    p.grad = torch.ones(1, dtype=torch.float64)
    opt.step()
    assert float(p) == pytest.approx(-0.1000082762, rel=1e-9)
    assert float(last_update(opt)[0][1]) == pytest.approx(float(p), rel=1e-15)


def test_sgd_foreach_differentiable_nesterov_overwrites_grad() -> None:
    """Issue 10.10 repro: the third step moves p by -0.3439; every step derived exactly."""
    p = torch.zeros(1, dtype=torch.float64)
    opt = torch.optim.SGD([p], lr=0.1, momentum=0.9, nesterov=True, foreach=True,
                          differentiable=True)
    for _ in range(3):
        p.grad = torch.ones(1, dtype=torch.float64)
        old = float(p)
        opt.step()
        d = float(last_update(opt)[0][1])
        assert d == pytest.approx(float(p) - old, rel=1e-14)
    assert d == pytest.approx(-0.3439, rel=1e-12)


@pytest.mark.parametrize("name", list(_HAS))
@pytest.mark.parametrize("foreach", [False, True])
def test_complex_parameters_as_real_views(name: str, foreach: bool) -> None:
    gen = torch.Generator().manual_seed(3)
    kw: dict[str, Any] = {"foreach": foreach}
    if name in ("SGD", "RMSprop"):
        kw["momentum"] = 0.9
    params = [torch.nn.Parameter(torch.randn(4, 3, generator=gen, dtype=torch.complex128)),
              torch.nn.Parameter(torch.randn(3, generator=gen, dtype=torch.float64))]
    opt = getattr(torch.optim, name)(params, lr=0.01, **kw)
    for _ in range(3):
        for p in params:
            p.grad = torch.randn(p.shape, generator=gen, dtype=p.dtype)
        old = [p.detach().clone() for p in params]
        opt.step()
    rates = effective_rates(opt)
    assert rates[0].rate.dim() == 0 or rates[0].rate.shape == (4, 3, 2)
    derived = dict(last_update(opt))
    for p, o in zip(params, old, strict=True):
        assert derived[p].dtype == p.dtype
        delta = p.detach() - o
        torch.testing.assert_close(derived[p], delta, rtol=1e-12, atol=1e-15)
        assert bool((delta != 0).all())  # both parts of every element moved


@pytest.mark.parametrize(("name", "kw"), [("Adagrad", {}), ("Adagrad", {"lr_decay": 0.1}),
                                          ("SGD", {}), ("SGD", {"momentum": 0.9})])
def test_sparse_gradients(name: str, kw: dict[str, Any]) -> None:
    w = torch.nn.Parameter(torch.randn(10, 3, dtype=torch.float64))
    opt = getattr(torch.optim, name)([w], lr=0.1, **kw)
    for _ in range(3):
        emb = torch.nn.functional.embedding(torch.tensor([1, 3, 3, 7]), w, sparse=True)
        (emb**2).sum().backward()
        assert w.grad is not None
        assert w.grad.is_sparse
        old = w.detach().clone()
        opt.step()
        delta = w.detach() - old
        torch.testing.assert_close(dict(last_update(opt))[w], delta, rtol=1e-12, atol=1e-16)
        opt.zero_grad()
    assert bool((delta[[0, 2, 4]] == 0).all())  # rows outside the gradient never move
    assert bool((delta[[1, 3, 7]] != 0).all())


@pytest.mark.parametrize(("name", "kw"), [
    ("Adam", {}), ("AdamW", {"weight_decay": 0.1}), ("Adamax", {}), ("NAdam", {}),
    ("RAdam", {}), ("RMSprop", {"momentum": 0.9}), ("SGD", {"momentum": 0.9}),
    ("Adagrad", {}),
])
def test_skipped_parameter_reports_no_move(name: str, kw: dict[str, Any]) -> None:
    """Issue 10.9: a parameter whose .grad was None is left alone by torch, and by lrkit."""
    a = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
    b = torch.nn.Parameter(torch.ones(2, dtype=torch.float64))
    opt = getattr(torch.optim, name)([a, b], lr=0.1, **kw)
    for _ in range(2):
        a.grad, b.grad = torch.ones(3, dtype=torch.float64), torch.ones(2, dtype=torch.float64)
        opt.step()
    a.grad, b.grad = torch.full((3,), 2.0, dtype=torch.float64), None
    old_a, old_b = a.detach().clone(), b.detach().clone()
    opt.step()
    assert torch.equal(b.detach(), old_b)  # torch left it alone
    rates = {id(r.param): r for r in effective_rates(opt)}
    assert rates[id(b)].skipped
    assert not rates[id(a)].skipped
    derived = dict(last_update(opt))
    assert bool((derived[b] == 0).all())
    torch.testing.assert_close(derived[a], a.detach() - old_a, rtol=1e-12, atol=1e-16)
    # after zero_grad nothing tells; an explicit set does
    opt.zero_grad()
    if rates[id(a)].grad_coef is None:
        derived = dict(last_update(opt, stepped={a}))
        assert bool((derived[b] == 0).all())
        torch.testing.assert_close(derived[a], a.detach() - old_a, rtol=1e-12, atol=1e-16)
