"""A complete task for ``lrkit compare`` and ``lrkit find-lr``: your model, your data.

An MLP regresses a noisy function of 8 inputs. The task says what one run needs (the
model, its parameter groups, the batch of each update, the loss, an evaluation); lrkit owns
the loop: optimizer, schedule, seeds, checkpoints, the report. Run from the repository root:

    lrkit compare --task examples.my_task:make --task-arg hidden=32 --seeds 0,1,2 -o my-report
    lrkit compare --task examples/my_task.py:make          # the file path form works too
    lrkit find-lr --task examples.my_task:make --optimizer adamw

or from Python: ``lrkit.study.compare(make(hidden=32))``. ``make_own_loop`` is the same task
for code that must keep its own training loop (``train(ctx)``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def _data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=g)
    y = torch.sin(2 * x[:, :1]) + x[:, 1:2] * x[:, 2:3] + 0.1 * torch.randn(n, 1, generator=g)
    return x, y


class MyRun:
    """One training run: built fresh for each seed."""

    def __init__(self, seed: int, hidden: int, batch_size: int) -> None:
        self.x, self.y = _data(2048, seed=1234)  # the same data for every run
        self.x_val, self.y_val = _data(512, seed=4321)
        self.model = nn.Sequential(nn.Linear(8, hidden), nn.GELU(), nn.Linear(hidden, 1))
        self.batch_size = batch_size
        self.gen = torch.Generator().manual_seed(seed)  # the data order comes from the seed
        self.orders: list[torch.Tensor] = []

    def param_groups(self) -> list[dict[str, Any]]:
        """No weight decay on biases (any list of dicts an optimizer takes works)."""
        weights = [p for n, p in self.model.named_parameters() if n.endswith("weight")]
        biases = [p for n, p in self.model.named_parameters() if n.endswith("bias")]
        return [{"params": weights}, {"params": biases, "weight_decay": 0.0}]

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch of update ``step``: a fresh permutation per pass over the data."""
        per_pass = len(self.x) // self.batch_size
        epoch, i = divmod(step, per_pass)
        while len(self.orders) <= epoch:
            self.orders.append(torch.randperm(len(self.x), generator=self.gen))
        idx = self.orders[epoch][i * self.batch_size:(i + 1) * self.batch_size]
        return self.x[idx], self.y[idx]

    def loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y = batch
        return nn.functional.mse_loss(self.model(x), y)  # the mean over the batch

    def evaluate(self) -> dict[str, float]:
        return {"val_mse": float(nn.functional.mse_loss(self.model(self.x_val), self.y_val))}


class MyTask:
    """What ``make(...)`` returns: names, horizon, evaluation cadence, and ``build``."""

    name = "my-mlp"
    metric = "val_mse"
    higher_is_better = False

    def __init__(self, hidden: int = 64, steps: int = 300, batch_size: int = 64) -> None:
        self.hidden, self.batch_size = hidden, batch_size
        self.steps = steps
        self.eval_every = max(1, steps // 10)
        self.lrs = {"adamw": 3e-3, "adam": 3e-3, "sgd": 0.05}  # default base rates (optional)

    def describe(self) -> dict[str, Any]:
        return {"data": "synthetic: sin(2 x0) + x1 x2 + noise, 2048 train / 512 val",
                "model": f"MLP 8-{self.hidden}-1", "batch_size": self.batch_size}

    def build(self, seed: int) -> MyRun:
        return MyRun(seed, self.hidden, self.batch_size)


def make(hidden: int = 64, steps: int = 300, batch_size: int = 64) -> MyTask:
    """The entry point: ``--task examples.my_task:make --task-arg hidden=32``."""
    return MyTask(hidden, steps, batch_size)


class MyOwnLoopRun:
    """The same run, for code that keeps its own loop: lrkit hands over the optimizer (its
    scheduler attached) and is told the loss of each update with ``ctx.step(loss)``."""

    def __init__(self, seed: int, hidden: int, batch_size: int) -> None:
        self.run = MyRun(seed, hidden, batch_size)
        self.model = self.run.model

    def param_groups(self) -> list[dict[str, Any]]:
        return self.run.param_groups()

    def evaluate(self) -> dict[str, float]:
        return self.run.evaluate()

    def train(self, ctx: Any) -> None:
        step = 0
        while True:
            loss = self.run.loss(self.run.batch(step))
            ctx.optimizer.zero_grad()
            loss.backward()
            ctx.optimizer.step()
            step += 1
            if not ctx.step(loss):  # records, evaluates, steps the rate; False: stop
                return


class MyOwnLoopTask(MyTask):
    def build(self, seed: int) -> MyOwnLoopRun:
        return MyOwnLoopRun(seed, self.hidden, self.batch_size)


def make_own_loop(hidden: int = 64, steps: int = 300, batch_size: int = 64) -> MyOwnLoopTask:
    """The callback-style variant: ``--task examples.my_task:make_own_loop``."""
    return MyOwnLoopTask(hidden, steps, batch_size)
