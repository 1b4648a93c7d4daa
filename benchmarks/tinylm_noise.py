"""Seed noise of the ``tinylm`` task against the gaps between schedules (not a test).

Trains the built-in ``tinylm`` task with AdamW (lrkit's study defaults: betas 0.9/0.999,
weight decay 0.01 on matrices) under several schedules, peak rates and seeds, with
:class:`lrkit.torch.LRScheduler` and :func:`lrkit.parse`, and prints per configuration the
final validation loss (nats/byte): mean, sample std and range across seeds, the paired
difference to the best configuration (same seeds, so the same initial weights and data
order) with its std across seeds, the evaluation noise of that difference (standard error
of the per-window loss differences on the fixed validation windows), and the seconds per
update. Each run line also gives the unpaired standard error of its validation loss.
One run after another, in this process, with ``--threads`` threads.

    python benchmarks/tinylm_noise.py --schedules cosine --peaks 1e-3 3e-3 1e-2 --seeds 0
    python benchmarks/tinylm_noise.py --schedules cosine constant wsd --peaks 3e-3 \\
        --seeds 0 1 2 --out tinylm_noise.json
    python benchmarks/tinylm_noise.py --steps 1000 --task-arg width=32   # smaller sizes
    python benchmarks/tinylm_noise.py --merge a.json b.json   # one table of several shares

Schedules (``W`` = ``--warmup`` updates, ``T`` = ``--steps``): ``cosine``
``warmup(W) then cosine(end=0) over T``, ``constant`` ``warmup(W) then const over T``,
``wsd`` ``wsd(warmup_steps=W, decay_fraction=0.2) over T`` (20 % linear cooldown).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from typing import Any

import torch

import lrkit
from lrkit.tasks.tinylm import TinyLM
from lrkit.torch import LRScheduler

SPECS = {
    "cosine": "warmup({w}) then cosine(end=0) over {t}",
    "constant": "warmup({w}) then const over {t}",
    "wsd": "wsd(warmup_steps={w}, decay_fraction=0.2) over {t}",
}


def train(task: TinyLM, spec: str, peak: float, seed: int) -> dict[str, Any]:
    """One run: rate and training loss per update, validation loss at eval steps."""
    run = task.build(seed)
    opt = torch.optim.AdamW(run.param_groups(), lr=peak, weight_decay=0.01)
    sched = LRScheduler(opt, lrkit.parse(spec))
    lrs, losses, evals = [], [], []
    t0 = time.perf_counter()
    for step in range(task.steps):
        run.model.train()
        lrs.append(opt.param_groups[0]["lr"])
        opt.zero_grad(set_to_none=True)
        loss = run.loss(run.batch(step))
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        if (step + 1) % task.eval_every == 0 or step + 1 == task.steps:
            run.model.eval()
            evals.append((step + 1, run.evaluate()["val_loss"]))
    seconds = time.perf_counter() - t0
    run.model.eval()
    return {"lr": lrs, "train_loss": losses, "val": evals, "final": evals[-1][1],
            "s_per_update": seconds / task.steps, "windows": window_losses(run)}


def se(values: list[float]) -> float:
    return statistics.stdev(values) / math.sqrt(len(values))


def window_losses(run: Any) -> list[float]:
    """The validation loss of each window (their mean is ``val_loss``)."""
    per: list[float] = []
    with torch.no_grad():
        for chunk in run._val_idx.split(run.task.eval_batch):
            w = run._val[chunk].long()
            logits = run.model(w[:, :-1])
            ce = torch.nn.functional.cross_entropy(
                logits.transpose(1, 2), w[:, 1:], reduction="none").mean(1)
            per += ce.tolist()
    return per


def table(results: dict[tuple[str, float], dict[int, dict[str, Any]]]) -> None:
    """Print the comparison: one row per (schedule, peak), best mean first."""
    def mean(key: tuple[str, float]) -> float:
        return statistics.fmean(r["final"] for r in results[key].values())

    best = min(results, key=mean)
    print(f"\n{'schedule':9s} {'peak':>7s} {'mean':>7s} {'std':>7s} {'range':>15s} "
          f"{'vs best':>8s} {'paired sd':>9s} {'eval se':>7s} {'ms/upd':>7s}")
    for key in sorted(results, key=mean):
        runs = results[key]
        finals = [runs[s]["final"] for s in sorted(runs)]
        sd = statistics.stdev(finals) if len(finals) > 1 else math.nan
        both = [s for s in sorted(runs) if s in results[best]]
        diffs = [runs[s]["final"] - results[best][s]["final"] for s in both]
        psd = statistics.stdev(diffs) if len(diffs) > 1 else math.nan
        # evaluation noise of the paired difference: per-window differences, same windows
        ese = statistics.fmean(se([a - b for a, b in zip(
            runs[s]["windows"], results[best][s]["windows"], strict=True)])
            for s in both) if key != best else 0.0
        ms = statistics.fmean(r["s_per_update"] for r in runs.values()) * 1e3
        print(f"{key[0]:9s} {key[1]:7g} {mean(key):7.4f} {sd:7.4f} "
              f"{min(finals):7.4f}-{max(finals):7.4f} {statistics.fmean(diffs):+8.4f} "
              f"{psd:9.4f} {ese:7.4f} {ms:7.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--schedules", nargs="+", default=["cosine", "constant", "wsd"],
                    choices=sorted(SPECS))
    ap.add_argument("--peaks", nargs="+", type=float, default=[3e-3])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=None, help="default: the task's")
    ap.add_argument("--warmup", type=int, default=None, help="default: steps // 20")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--task-arg", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--out", default=None, help="write every curve as JSON here")
    ap.add_argument("--merge", nargs="+", default=None, metavar="JSON",
                    help="train nothing: print the table of runs saved by --out (several "
                    "processes' shares of one study)")
    args = ap.parse_args()
    results: dict[tuple[str, float], dict[int, dict[str, Any]]] = {}
    if args.merge:
        for path in args.merge:
            with open(path) as f:
                for r in json.load(f)["runs"]:
                    results.setdefault((r["schedule"], r["peak"]), {})[r["seed"]] = r
        table(results)
        return
    torch.use_deterministic_algorithms(True)  # as lrkit's study runner
    torch.set_num_threads(args.threads)
    kw: dict[str, Any] = {k: json.loads(v) for k, v in (a.split("=", 1) for a in args.task_arg)}
    if args.steps is not None:
        kw["steps"] = args.steps
    task = TinyLM(**kw)
    warm = task.steps // 20 if args.warmup is None else args.warmup
    desc = task.describe()
    print(f"tinylm {desc['settings']} params={desc['parameters']} "
          f"corpus sha256(train)={desc['corpus']['train_sha256'][:12]} "
          f"python {desc['corpus']['python']} threads={args.threads}", flush=True)
    for name in args.schedules:
        spec = SPECS[name].format(w=warm, t=task.steps)
        for peak in args.peaks:
            for seed in args.seeds:
                r = train(task, spec, peak, seed)
                results.setdefault((name, peak), {})[seed] = r
                print(f"  {name:9s} peak={peak:g} seed={seed}: val_loss={r['final']:.4f} "
                      f"(se {se(r['windows']):.4f}) {r['s_per_update'] * 1e3:.1f} ms/update",
                      flush=True)
    table(results)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"describe": {**desc, "corpus": {k: v for k, v in desc["corpus"].items()
                                                       if k != "files"}},
                       "warmup": warm, "threads": args.threads,
                       "runs": [{"schedule": k[0], "peak": k[1], "seed": s, **r}
                                for k, runs in results.items() for s, r in runs.items()]}, f)


if __name__ == "__main__":
    main()
