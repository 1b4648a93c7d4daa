"""Data-parallel training with lrkit: DDP, gradient accumulation, AMP's GradScaler, plateau.

Run with any number of processes (gloo on CPU, NCCL on GPUs); the rates are the same:

    torchrun --nproc_per_node=2 examples/distributed_train.py --accumulate 2
    python examples/distributed_train.py            # one process, same schedule

- The schedule counts optimizer updates: ``--batch-size`` is the global batch, split across
  processes and into ``--accumulate`` micro-batches, so the number of updates does not depend
  on either; the scheduler steps once per update.
- Updates that the GradScaler skips (inf/NaN gradients) do not advance the schedule:
  ``LRScheduler(..., skipped="skip")``.
- The plateau decides on the validation loss averaged over the ranks (``reduce="mean"``), and
  ``check_ranks=True`` verifies every step that all ranks hold the same rates.
- Only rank 0 prints.
"""

from __future__ import annotations

import argparse
import contextlib
import os

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from lrkit import Cosine, Warmup
from lrkit.torch import LRScheduler, Plateau


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=64, help="global batch per update")
    ap.add_argument("--accumulate", type=int, default=1, help="micro-batches per update")
    ap.add_argument("--amp", action="store_true", help="bfloat16 autocast and a GradScaler")
    args = ap.parse_args(argv)

    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed:
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    rank = dist.get_rank() if distributed else 0
    world = dist.get_world_size() if distributed else 1
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0"))) \
        if torch.cuda.is_available() else torch.device("cpu")

    g = torch.Generator().manual_seed(0)  # the same data on every rank
    x = torch.randn(2048, 16, generator=g)
    y = (x[:, :4].sum(1) > 0).long()
    x_val, y_val = x[:256].to(device), y[:256].to(device)
    x, y = x[256:], y[256:]

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.ReLU(),
                                torch.nn.Linear(64, 2)).to(device)
    net = DistributedDataParallel(model) if distributed else model
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    steps_per_epoch = -(-x.shape[0] // args.batch_size)
    total = args.epochs * steps_per_epoch
    sched = LRScheduler(
        opt, Plateau(Warmup(Cosine(total - total // 10), steps=total // 10),
                     factor=0.5, patience=0, every=steps_per_epoch),
        skipped="skip", reduce="mean", check_ranks=distributed,
    )
    scaler = torch.amp.GradScaler(device.type, enabled=args.amp)

    order_gen = torch.Generator().manual_seed(1)  # the same batch order on every rank
    for epoch in range(args.epochs):
        order = torch.randperm(x.shape[0], generator=order_gen)
        for start in range(0, x.shape[0], args.batch_size):
            batch = order[start:start + args.batch_size]
            mine = batch[rank::world]  # this rank's share of the global batch
            opt.zero_grad(set_to_none=True)
            chunks = mine.tensor_split(args.accumulate)
            for j, idx in enumerate(chunks):
                sync = contextlib.nullcontext()
                if distributed and j < len(chunks) - 1:
                    sync = net.no_sync()  # type: ignore[operator]
                with sync, torch.autocast(device.type, torch.bfloat16, enabled=args.amp):
                    out = net(x[idx].to(device))
                    # summed, / global batch, * world: DDP's average gives the batch mean
                    loss = F.cross_entropy(out.float(), y[idx].to(device), reduction="sum")
                    scaler.scale(loss * world / len(batch)).backward()
            scaler.step(opt)
            scaler.update()
            last = start + args.batch_size >= x.shape[0]
            metric = None
            if last:
                with torch.no_grad():
                    metric = F.cross_entropy(model(x_val), y_val).item()
            sched.step(metric)  # once per update; the metric is averaged over the ranks
        if rank == 0:
            print(f"epoch {epoch + 1}: val loss {metric:.4f}, step {sched.last_epoch}, "
                  f"lr {opt.param_groups[0]['lr']:.6f}", flush=True)
    if distributed:
        sched.assert_ranks_agree()
        # DDP's reducer must go before its process group: destroyed the other way round,
        # gloo's threads can abort the process at exit ("terminate called ...")
        del net
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
