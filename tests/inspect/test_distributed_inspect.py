"""Two gloo processes on CPU: sharded optimizers summarised per rank, merged to global numbers.

DDP + ZeroRedundancyOptimizer and FSDP2 (``fully_shard``, DTensor parameters and states) on
a small float64 model: each rank's local data gives the same averaged gradients as one process
on the whole batch, so the merged per-layer summaries every rank holds must equal those of a
single process (up to reduction order). Mismatched shards raise on both ranks (no hang); a
sharded optimizer without a process group is refused.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch

from lrkit.inspect import Monitor

STEPS = 3
LR = 0.01


def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(),
                               torch.nn.Linear(8, 3)).double()


def batch(t: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(100 + t)
    return (torch.randn(8, 6, generator=g, dtype=torch.float64),
            torch.randn(8, 3, generator=g, dtype=torch.float64))


def view(mon: Monitor) -> list[dict[str, Any]]:
    out = []
    for r in mon.history:
        s = r.summary
        out.append({"step": r.step, "key": str(r.group), "count": s.count, "mean": s.mean,
                    "min": s.min, "max": s.max, "p50": s.quantile(0.5),
                    "ratio": s.update_to_weight, "cos": s.update_grad_cosine,
                    "counts": [float(c) for c in s.histogram.counts]})
    return out


WORKER = textwrap.dedent('''
    import json, sys
    import torch
    import torch.distributed as dist
    sys.path.insert(0, {here!r})
    import test_distributed_inspect as T
    from lrkit.inspect import Monitor, UnsupportedOptimizerError

    dist.init_process_group("gloo")
    rank = dist.get_rank()
    out = {{}}

    def train(m, net, opt):
        for t in range(T.STEPS):
            x, y = T.batch(t)
            sl = slice(4 * rank, 4 * rank + 4)
            torch.nn.functional.mse_loss(net(x[sl]), y[sl]).backward()
            opt.step()
            opt.zero_grad()

    # DDP + ZeRO: each rank holds the optimizer state of its partition
    from torch.distributed.optim import ZeroRedundancyOptimizer
    m = T.model()
    ddp = torch.nn.parallel.DistributedDataParallel(m)
    zero = ZeroRedundancyOptimizer(m.parameters(), optimizer_class=torch.optim.AdamW, lr=T.LR)
    mon = Monitor(zero, every=1, per_param=True, named_parameters=m.named_parameters(),
                  sample=None).attach()
    owned = sum(1 for g in zero.optim.param_groups for p in g["params"])
    calls = []
    orig = dist.all_gather
    def counting(*a, **k):
        calls.append(len(a[0]))
        return orig(*a, **k)
    dist.all_gather = counting
    train(m, ddp, zero)
    dist.all_gather = orig
    out["zero_gathers"] = calls
    out["zero"] = T.view(mon)
    out["zero_owned"] = owned
    mon.detach()

    # FSDP2: DTensor parameters, gradients and states
    from torch.distributed.fsdp import fully_shard
    m2 = T.model()
    fully_shard(m2[0]); fully_shard(m2[2]); fully_shard(m2)
    opt = torch.optim.AdamW(m2.parameters(), lr=T.LR)
    mon2 = Monitor(opt, every=1, per_param=True, named_parameters=m2.named_parameters(),
                   sample=None).attach()
    train(m2, m2, opt)
    out["fsdp"] = T.view(mon2)
    out["fsdp_local"] = [p.to_local().numel() for p in m2.parameters()]
    mon2.detach()

    # mismatched shards (different histogram layouts): both ranks raise, neither hangs
    bad = Monitor(opt, every=1, bins_per_decade=100 if rank == 0 else 50, sample=None)
    try:
        bad.record()
        out["mismatch"] = "no error"
    except UnsupportedOptimizerError as exc:
        out["mismatch"] = str(exc)
    dist.barrier()
    dist.destroy_process_group()
    # a sharded optimizer without a process group is refused
    try:
        Monitor(zero, every=1, distributed=True, sample=None).record()
        out["no_group"] = "no error"
    except UnsupportedOptimizerError as exc:
        out["no_group"] = str(exc)
    json.dump(out, open(sys.argv[1], "w"))
''')


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("dist_inspect")
    script = tmp / "worker.py"
    script.write_text(WORKER.format(here=str(Path(__file__).parent)))
    sys.path.insert(0, str(Path(__file__).parent.parent))
    from _procs import run_two_ranks

    return run_two_ranks(script, tmp, timeout=240)


@pytest.fixture(scope="module")
def single() -> list[dict[str, Any]]:
    m = model()
    opt = torch.optim.AdamW(m.parameters(), lr=LR)
    mon = Monitor(opt, every=1, per_param=True, named_parameters=m.named_parameters(),
                  sample=None).attach()
    for t in range(STEPS):
        x, y = batch(t)
        torch.nn.functional.mse_loss(m(x), y).backward()
        opt.step()
        opt.zero_grad()
    return view(mon)


def _close(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> None:
    assert [(r["step"], r["key"]) for r in a] == [(r["step"], r["key"]) for r in b]
    for x, y in zip(a, b, strict=True):
        assert x["count"] == y["count"]
        for k in ("mean", "min", "max", "ratio", "cos"):
            assert x[k] == pytest.approx(y[k], rel=1e-9, abs=1e-15), (x["key"], k)
        assert x["p50"] == pytest.approx(y["p50"], rel=10 ** (1 / 100))
        diff = sum(abs(p - q) for p, q in zip(x["counts"], y["counts"], strict=True))
        assert diff <= 2  # a rate on a bin edge may land one bin over (documented)


@pytest.mark.parametrize("kind", ["zero", "fsdp"])
def test_merged_equals_single_process(ranks: list[dict[str, Any]],
                                      single: list[dict[str, Any]], kind: str) -> None:
    for r in ranks:  # every rank holds the global numbers
        _close(r[kind], single)


def test_each_rank_held_only_its_shard(ranks: list[dict[str, Any]]) -> None:
    sizes = [p.numel() for p in model().parameters()]
    for i, n in enumerate(sizes):  # FSDP2: each rank holds part of every parameter
        assert ranks[0]["fsdp_local"][i] + ranks[1]["fsdp_local"][i] == n
        assert ranks[0]["fsdp_local"][i] < n
    assert sum(r["zero_owned"] for r in ranks) == 4  # ZeRO partitions the 4 tensors
    assert all(0 < r["zero_owned"] < 4 for r in ranks)


def test_one_collective_per_record(ranks: list[dict[str, Any]]) -> None:
    """STEPS records: the layout header once, then one all_gather of the data per record."""
    for r in ranks:
        assert len(r["zero_gathers"]) == 1 + STEPS
        assert all(n == 2 for n in r["zero_gathers"])  # one tensor per rank each time


def test_mismatch_and_missing_group_refused(ranks: list[dict[str, Any]]) -> None:
    for r in ranks:
        assert "mismatched" in r["mismatch"]
        assert "process group" in r["no_group"]
