"""The batched host path equals per-group scalar evaluation bit for bit.

Many groups with different bases and schedules are evaluated together over blocks whose
length depends on the number of distinct schedules; every value a group receives (stepping,
``set_step``, ``lr_at``, ``get_last_lr``) must be exactly ``schedule(step, base=base)``, the
scalar evaluation, for every schedule family.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lrkit import ConfigError, Linear, Poly, Warmup
from lrkit.torch import LRScheduler, Plateau
from lrkit.torch._host import BLOCK, MAX_BLOCK, block_length
from strategies import cases


def _scalar(schedule: object, step: int, base: float) -> float | None:
    try:
        v = schedule(step, base=base)  # type: ignore[operator]
    except ConfigError:  # overflow: the scheduler must refuse it too
        return None
    return v if math.isfinite(v) and v >= 0 else None


def _opt(bases: list[float]) -> torch.optim.Optimizer:
    return torch.optim.SGD([{"params": [torch.zeros(1, requires_grad=True)], "lr": b}
                            for b in bases], lr=0.1)


@settings(max_examples=20, deadline=None)
@given(found=st.lists(cases, min_size=1, max_size=3),
       picks=st.lists(st.tuples(st.integers(0, 2), st.sampled_from([0.1, 0.01, 0.97, 3e-4])),
                      min_size=1, max_size=24),
       starts=st.lists(st.one_of(st.integers(0, 3 * MAX_BLOCK), st.integers(0, 10**9)),
                       min_size=1, max_size=3))
def test_every_group_gets_its_scalar_value(found: list, picks: list, starts: list) -> None:
    schedules = [found[i % len(found)].schedule for i, _ in picks]
    bases = [b for _, b in picks]
    opt = _opt(bases)
    sched = LRScheduler(opt, schedules)

    def check(step: int) -> None:
        want = [_scalar(s, step, b) for s, b in zip(schedules, bases, strict=True)]
        got = [g["lr"] for g in opt.param_groups]
        assert got == want, step
        assert sched.lr_at(step) == want
        assert sched.last_epoch == step

    check(0)
    for start in starts:
        want = [_scalar(s, start, b) for s, b in zip(schedules, bases, strict=True)]
        if None in want:
            with pytest.raises(ConfigError, match="is invalid"):
                sched.set_step(start)
            continue
        sched.set_step(start)
        check(start)
        for k in range(1, 3):  # across the next block boundary too, when close
            if None in [_scalar(s, start + k, b) for s, b in zip(schedules, bases,
                                                                   strict=True)]:
                break
            sched.step()
            check(start + k)
            assert sched.get_last_lr() == [_scalar(s, start + k - 1, b)
                                           for s, b in zip(schedules, bases, strict=True)]


def test_block_length_grows_with_distinct_schedules() -> None:
    assert [block_length(n) for n in (1, 2, 3, 16, 17, 1000)] == \
        [BLOCK, 2 * BLOCK, 4 * BLOCK, MAX_BLOCK, MAX_BLOCK, MAX_BLOCK]


@pytest.mark.parametrize("groups", [1, 5, 200])
def test_many_groups_across_block_boundaries(groups: int) -> None:
    # 200 groups: 200 rows, blocks of MAX_BLOCK steps; steps through two boundaries
    bases = [0.01 * 0.97**i for i in range(groups)]
    schedules = [Warmup(Poly(total_steps=3000, power=0.9), steps=100 + 5 * i)
                 for i in range(groups)]
    opt = _opt(bases)
    sched = LRScheduler(opt, schedules)
    sched.set_step(MAX_BLOCK - 2)
    for step in range(MAX_BLOCK - 2, MAX_BLOCK + 3):
        want = [s(step, base=b) for s, b in zip(schedules, bases, strict=True)]
        assert [g["lr"] for g in opt.param_groups] == want
        sched.step()


def test_plateau_rows_and_plain_rows_together() -> None:
    # a plateau on some groups, a plain schedule on others, different bases
    bases = [0.1, 0.05, 0.02]
    opt = _opt(bases)
    sched = LRScheduler(opt, [Plateau(Linear(100), factor=0.5, patience=0), Linear(100),
                              Plateau(Linear(100), factor=0.5, patience=0)])
    sched.step(1.0)
    sched.step(2.0)  # worse: both plateau groups reduce
    assert [g["lr"] for g in opt.param_groups] == [
        Linear(100)(2, base=0.1) * 0.5, Linear(100)(2, base=0.05), Linear(100)(2, base=0.02) * 0.5]
