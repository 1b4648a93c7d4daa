"""to_lambda (torch LambdaLR) and to_optax (a function of the step that takes arrays)."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
import torch

from lrkit import Cosine, MultiStep, Rel, Warmup
from lrkit.convert import to_lambda, to_optax
from lrkit.convert._export import ArrayOps
from lrkit.errors import ConfigError

SCHED = Warmup(Cosine(90, end=Rel(0.01)), 10, start=Rel(0.1))


def test_lambda_lr_reproduces_the_schedule() -> None:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, to_lambda(SCHED))
    got = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(120):
            got.append(opt.param_groups[0]["lr"])
            sched.step()
    np.testing.assert_allclose(got, SCHED(np.arange(120.0), base=0.3), rtol=1e-14)
    # the multiplier is picklable (LambdaLR state_dict keeps callable objects' __dict__)
    f = pickle.loads(pickle.dumps(to_lambda(SCHED)))
    assert f(50) == SCHED(50)


def test_lambda_with_absolute_values_needs_the_base() -> None:
    s = Cosine(100, peak=0.5, end=0.05)
    assert to_lambda(s, base=0.5)(0) == 1.0
    assert to_lambda(s, base=0.5)(100) == pytest.approx(0.1)
    with pytest.raises(ConfigError, match="base=0"):
        to_lambda(s, base=0)


def test_optax_style_function_on_scalars_arrays_and_array_modules() -> None:
    f = to_optax(SCHED, base=2e-3)
    steps = np.arange(0, 130)
    want = SCHED(steps.astype(float), base=2e-3)
    np.testing.assert_allclose(f(steps), want, rtol=1e-15)
    assert f(37) == pytest.approx(want[37], rel=1e-15)
    # the generic array-module path (what a jax.numpy array takes), here with numpy's names
    got = SCHED.bind(2e-3)._eval(steps.astype(np.float32), ArrayOps(np))
    np.testing.assert_allclose(got, want, rtol=1e-5)  # float32
    m = MultiStep((10, 20), 0.5, peak=1.0)  # count_le in the array module
    np.testing.assert_array_equal(m._eval(np.array([0.0, 10.0, 25.0]), ArrayOps(np)),
                                  [1.0, 0.5, 0.25])
    with pytest.raises(ConfigError, match="count="):
        f("12")


@pytest.mark.parametrize("spec", [
    "warmup(10) then cos(end=0.01x)", "onecycle", "multistep([20, 50], 0.5)",
    "warmup(5) then sgdr(10, 2)", "wsd(warmup_steps=10, decay_shape='1-sqrt')",
    "cyclic(0.1x, 1x, 7)",
])
def test_optax_function_under_jax_jit(spec: str) -> None:
    jax = pytest.importorskip("jax")  # installed in CI by the integrations extra
    from lrkit.spec import parse

    s = parse(spec, total_steps=100)
    f = to_optax(s, base=0.5)
    got = jax.jit(f)(jax.numpy.arange(120))  # traced: the closed form in jax.numpy ops
    assert got.dtype == jax.numpy.float32
    want = s(np.arange(120.0), base=0.5)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=1e-7)  # float32
