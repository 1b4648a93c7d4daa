"""Two gloo processes on localhost: plateau decisions agree across ranks.

Each rank sees its own metric; the scheduler reduces them (mean / max / min) before deciding,
so both ranks end with the same rates, equal to a one-process run fed the reduced metric.
With ``reduce="none"`` the ranks drift apart and ``check_ranks`` says so on every rank.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch

from lrkit import Linear, Warmup
from lrkit.errors import ConfigError
from lrkit.torch import LRScheduler, Plateau
from lrkit.torch.distributed import check_same_rates, is_distributed, reduce_metric

STEPS = 40
PLATEAU = {"factor": 0.5, "patience": 1, "every": 2}


def local_metric(rank: int, t: int) -> float:
    """Rank 0 keeps improving slowly, rank 1 stalls: their decisions differ on their own."""
    base = 1.0 / (1 + 0.05 * t)
    return base if rank == 0 else 0.7 + 0.001 * (t % 3) - (0.3 if t % 8 == 0 else 0.0)


def _build() -> tuple[torch.optim.Optimizer, dict[str, Any]]:
    opt = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.1)
    return opt, {"schedule": Plateau(Warmup(Linear(60), steps=4), **PLATEAU)}


WORKER = textwrap.dedent('''
    import json, sys
    import torch
    import torch.distributed as dist
    sys.path.insert(0, {here!r})
    import test_distributed_plateau as T
    from lrkit.torch import LRScheduler
    from lrkit.errors import StateError

    dist.init_process_group("gloo")
    rank = dist.get_rank()
    out = {{}}
    for how in ("mean", "max", "min", "none"):
        opt, kw = T._build()
        s = LRScheduler(opt, kw["schedule"], reduce=how)
        lrs = []
        for t in range(1, T.STEPS + 1):
            s.step(T.local_metric(rank, t) if t % 2 == 0 else None)
            lrs.append(opt.param_groups[0]["lr"])
        try:
            s.assert_ranks_agree()
            agree = "yes"
        except StateError as exc:
            agree = str(exc)
        out[how] = {{"lrs": lrs, "agree": agree}}
    # check_ranks=True raises inside step() as soon as the rates differ
    opt, kw = T._build()
    s = LRScheduler(opt, kw["schedule"], reduce="none", check_ranks=True)
    try:
        for t in range(1, T.STEPS + 1):
            s.step(T.local_metric(rank, t) if t % 2 == 0 else None)
        out["check_ranks"] = "no error"
    except StateError as exc:
        out["check_ranks"] = f"step {{s.last_epoch}}: {{exc}}"
    # an invalid metric on one rank raises on both (no rank waits forever)
    opt, kw = T._build()
    s = LRScheduler(opt, kw["schedule"])
    s.step()
    try:
        s.step(float("nan") if rank else torch.ones(3))
        out["bad_metric"] = "no error"
    except ValueError as exc:
        out["bad_metric"] = type(exc).__name__ + ": " + str(exc)
    json.dump(out, open(sys.argv[1], "w"))
    dist.barrier()
    dist.destroy_process_group()
''')


def _serial(how: str) -> list[float]:
    """One process fed the reduced metric (mean summed in rank order, as the collective)."""
    opt, kw = _build()
    s = LRScheduler(opt, kw["schedule"])
    out = []
    for t in range(1, STEPS + 1):
        metric = None
        if t % 2 == 0:
            a, b = local_metric(0, t), local_metric(1, t)
            metric = {"mean": (0.0 + a + b) / 2, "max": max(a, b), "min": min(a, b)}[how]
        s.step(metric)
        out.append(opt.param_groups[0]["lr"])
    return out


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("dist")
    script = tmp / "worker.py"
    script.write_text(WORKER.format(here=str(Path(__file__).parent)))
    from _procs import run_two_ranks  # here: the workers import this module too

    return run_two_ranks(script, tmp, timeout=120)


@pytest.mark.parametrize("how", ["mean", "max", "min"])
def test_ranks_agree_and_equal_the_serial_run(two_ranks: list[dict[str, Any]], how: str) -> None:
    r0, r1 = two_ranks[0][how], two_ranks[1][how]
    assert r0["lrs"] == r1["lrs"]
    assert r0["agree"] == r1["agree"] == "yes"
    assert r0["lrs"] == _serial(how)
    assert min(r0["lrs"][4:]) < 0.1 * (1 - 40 / 60) - 1e-12  # at least one reduction happened


def test_without_reduction_ranks_drift_and_the_check_says_so(
        two_ranks: list[dict[str, Any]]) -> None:
    r0, r1 = two_ranks[0]["none"], two_ranks[1]["none"]
    assert r0["lrs"] != r1["lrs"]  # the metrics really differ: the test can fail
    for r in (r0, r1):
        assert r["agree"].startswith("the step and scheduled values differ across ranks")
    msgs = [two_ranks[i]["check_ranks"] for i in range(2)]
    assert msgs[0] == msgs[1]
    assert "differ across ranks: rank 0 holds" in msgs[0]


def test_invalid_metric_on_one_rank_raises_on_every_rank(
        two_ranks: list[dict[str, Any]]) -> None:
    m0, m1 = two_ranks[0]["bad_metric"], two_ranks[1]["bad_metric"]
    assert m0.startswith("ConfigError: metric='tensor(shape=(3,)")
    assert m1.startswith("ConfigError: metric='<invalid on rank 0>' is invalid")


def test_without_a_process_group_nothing_is_collective() -> None:
    assert not is_distributed()
    assert reduce_metric(torch.tensor([0.5]), "max") == 0.5
    check_same_rates([0.1, 0.2])
    with pytest.raises(ConfigError, match=r"reduce='sum' is invalid: expected one of 'mean'"):
        reduce_metric(1.0, "sum")
    with pytest.raises(ConfigError, match="reduce='avg'"):
        LRScheduler(*_build()[:1], Linear(10), reduce="avg")
