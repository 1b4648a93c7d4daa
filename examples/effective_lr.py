"""The scheduler's rate against Adam's per-element rate, on a tiny MLP.

The scheduler (here StepLR) sets the base rate ``lr`` per step; AdamW then divides it, per
element and per step, by sqrt(v_hat) + eps. The figure shows both: the black line is the
schedule, the band the p10-p90 range (and median) of the rates the optimizer actually applied.

    python examples/effective_lr.py effective_lr.png
"""

from __future__ import annotations

import argparse

import torch

from lrkit.inspect import Monitor, plot_effective_lr, plot_histograms


def train(steps: int = 600, every: int = 5) -> tuple[Monitor, float]:
    """Train the tiny MLP for ``steps`` updates under StepLR, recording every ``every``-th
    update; return the monitor and the last loss."""
    torch.manual_seed(0)
    x = torch.randn(512, 16)
    y = torch.sin(x[:, :1] * 2) + 0.1 * x[:, 1:2]
    model = torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.GELU(), torch.nn.Linear(64, 1))
    decay = [p for n, p in model.named_parameters() if n.endswith("weight")]
    no_decay = [p for n, p in model.named_parameters() if n.endswith("bias")]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
        lr=3e-3,
    )
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=steps // 3, gamma=0.3)
    mon = Monitor(opt, every=every).attach()  # runs right after each optimizer.step()

    for _ in range(steps):
        idx = torch.randint(0, x.shape[0], (64,))
        loss = torch.nn.functional.mse_loss(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    mon.close()
    return mon, loss.item()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path", help="output figure (PNG, SVG, PDF ...)")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--hist", help="also write a histogram snapshot here")
    args = ap.parse_args(argv)

    mon, loss = train(args.steps)
    plot_effective_lr(mon, args.path)
    if args.hist:
        plot_histograms(mon, [1, args.steps // 2, args.steps], args.hist)
    last = mon.history[-2]
    print(f"loss {loss:.4f}; step {last.step}: lr {last.lr:.2e}, effective median "
          f"{last.summary.quantile(0.5):.2e} (p10 {last.summary.quantile(0.1):.2e}, "
          f"p90 {last.summary.quantile(0.9):.2e}); wrote {args.path}")


if __name__ == "__main__":
    main()
