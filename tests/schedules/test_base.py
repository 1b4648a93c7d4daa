"""The Schedule contract: Rel, bind, evaluation on scalars / arrays / tensors, sugar."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from lrkit.errors import ConfigError
from lrkit.schedules import Constant, Cosine, Linear, Poly, Product, Rel, Scale, Warmup
from lrkit.schedules.base import NUMPY_BLOCK, check_value, resolve


def test_rel_validation_and_repr() -> None:
    assert repr(Rel(0.5)) == "Rel(0.5)"
    assert Rel(1).factor == 1.0
    with pytest.raises(ConfigError, match=r"Rel\.factor="):
        Rel(-1.0)
    with pytest.raises(ConfigError, match=r"Rel\.factor="):
        Rel(float("nan"))


def test_check_value_and_resolve() -> None:
    assert check_value("peak", 1) == 1.0
    assert check_value("peak", Rel(2)) == Rel(2.0)
    for bad in [True, "1", -0.1, float("inf"), None]:
        with pytest.raises(ConfigError, match="peak="):
            check_value("peak", bad)
    assert resolve(0.25) == 0.25


def test_bind_and_is_relative() -> None:
    s = Cosine(10, peak=Rel(2.0), end=0.1)
    assert s.is_relative
    assert not s.bind(3.0).is_relative
    assert s.bind(3.0) == Cosine(10, 6.0, 0.1)
    absolute = Cosine(10, 1.0)
    assert absolute.bind(5.0) is absolute
    nested = Product((Constant(Rel(0.5)), Linear(4, start=1.0, end=0.0)))
    assert nested.is_relative
    assert nested(0, base=4.0) == 2.0
    with pytest.raises(ConfigError, match="base="):
        s.bind(-1.0)


def test_call_dispatch() -> None:
    s = Linear(10, start=1.0, end=0.0)
    assert isinstance(s(3), float)
    assert s(3) == 0.7
    assert s(np.int64(3)) == 0.7
    assert s(2.5) == 0.75
    arr = s(np.array([0, 5, 10, 20]))
    assert arr.dtype == np.float64
    assert arr.tolist() == [1.0, 0.5, 0.0, 0.0]
    assert s([0, 5]).tolist() == [1.0, 0.5]
    assert s(np.zeros((2, 0))).shape == (2, 0)
    for bad in [-1, float("nan"), float("inf"), np.array([1.0, -2.0]), True, "3"]:
        with pytest.raises(ConfigError, match="step="):
            s(bad)


def test_tensor_evaluation_dtypes() -> None:
    s = Cosine(10, peak=Rel(1.0))
    out = s(torch.arange(11))
    assert out.dtype == torch.float64
    assert out.shape == (11,)
    assert s(torch.arange(11.0, dtype=torch.float32)).dtype == torch.float32
    const = Constant(0.5)(torch.arange(4))
    assert const.dtype == torch.float64
    assert const.tolist() == [0.5] * 4
    with pytest.raises(ConfigError, match="step="):
        s(torch.tensor([-1.0]))
    # eval_tensor binds relative values to base 1
    assert s.eval_tensor(torch.tensor([0.0])).item() == 1.0


def test_mul_sugar() -> None:
    a, b = Constant(2.0), Linear(10, start=1.0, end=0.0)
    assert a * b == Product((a, b))
    assert (a * b)(5) == 1.0
    assert a * 3 == Scale(a, 3.0)
    assert 3 * a == Scale(a, 3.0)
    with pytest.raises(TypeError):
        a * "x"


def _one_pass(s: object, arr: np.ndarray) -> np.ndarray:
    from lrkit.schedules._ops import NUMPY

    return np.asarray(s._eval(arr, NUMPY), dtype=np.float64)  # type: ignore[attr-defined]


@pytest.mark.parametrize("n", [NUMPY_BLOCK - 1, NUMPY_BLOCK + 1, 5 * NUMPY_BLOCK + 17])
def test_large_arrays_blocked_and_threaded_equal_one_pass(n: int) -> None:
    s = Warmup(Poly(total_steps=n, power=0.9, end=1e-5), steps=n // 10).bind(0.1)
    arr = np.arange(n, dtype=np.float64)[::-1].reshape(-1, 1)  # any order and shape
    got = s(arr)
    assert got.shape == arr.shape
    np.testing.assert_array_equal(got, _one_pass(s, arr))
    assert isinstance(Constant(0.5)(arr), np.ndarray)
    np.testing.assert_array_equal(Constant(0.5)(arr), np.full(arr.shape, 0.5))


def test_large_array_validation_sees_every_block() -> None:
    arr = np.arange(6 * NUMPY_BLOCK, dtype=np.float64)
    for bad_value in (-1.0, np.nan, np.inf):
        arr[-1] = bad_value
        with pytest.raises(ConfigError, match="step"):
            Cosine(10)(arr)


_FORK_CHILD = """
import multiprocessing
import numpy as np
from lrkit.schedules import Cosine
from lrkit.schedules.base import NUMPY_BLOCK
s = Cosine(1e6)
arr = np.arange(8 * NUMPY_BLOCK, dtype=np.float64)
want = s(arr)  # creates this process's pool
with multiprocessing.get_context("fork").Pool(1) as pool:
    got = pool.apply_async(s, (arr,)).get(timeout=60)
assert np.array_equal(got, want)
print("ok")
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_threaded_evaluation_after_fork() -> None:
    """A forked child (as DataLoader workers are) gets its own pool, not the parent's dead one.

    Run in a fresh interpreter: forking the test process itself would also fork whatever
    threads other tests started (JAX's, for one)."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", _FORK_CHILD], capture_output=True, text=True,
                       timeout=120, check=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"
