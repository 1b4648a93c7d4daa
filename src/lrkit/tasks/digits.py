"""The built-in ``digits`` task: a tiny CNN on scikit-learn's 8x8 handwritten digits.

No download: the 1797 images ship inside scikit-learn. A fixed split (1438 train, 359
validation) that does not depend on the run's seed; the seed fixes the initial weights and
the batch order. One run takes a few seconds on one CPU thread. Needs scikit-learn.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lrkit._validate import check_choice, check_int

__all__ = ["Digits", "DigitsData", "DigitsRun", "TinyCNN", "load_digits"]


class TinyCNN(nn.Sequential):
    """conv3x3(1→w) · ReLU · conv3x3(w→2w) · ReLU · maxpool 2 · linear(32w→10).

    Example:
        >>> TinyCNN()(torch.zeros(2, 1, 8, 8)).shape
        torch.Size([2, 10])
    """

    def __init__(self, width: int = 8, n_classes: int = 10) -> None:
        super().__init__(
            nn.Conv2d(1, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(2 * width * 4 * 4, n_classes),
        )


@dataclasses.dataclass(frozen=True)
class DigitsData:
    """A fixed train/validation split: images ``float32 (n, 1, 8, 8)`` in [0, 1], labels
    ``int64``."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[0])

    def steps_per_epoch(self, batch_size: int) -> int:
        """Optimizer updates per epoch (the last, smaller batch included)."""
        return -(-self.n_train // batch_size)


_CACHE: dict[tuple[float, int], DigitsData] = {}


def load_digits(val_fraction: float = 0.2, split_seed: int = 0) -> DigitsData:
    """Load the digits and split them with a fixed permutation (cached per process).

    Example:
        >>> d = load_digits()
        >>> d.x_train.shape[1:], d.n_train + d.x_val.shape[0]
        (torch.Size([1, 8, 8]), 1797)
    """
    key = (val_fraction, split_seed)
    if key not in _CACHE:
        images, target = _raw_digits()
        x = torch.as_tensor(images, dtype=torch.float32).unsqueeze(1) / 16.0
        y = torch.as_tensor(target, dtype=torch.int64)
        perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(split_seed))
        n_val = round(x.shape[0] * val_fraction)
        val, train = perm[:n_val], perm[n_val:]
        _CACHE[key] = DigitsData(x[train], y[train], x[val], y[val])
    return _CACHE[key]


def _raw_digits() -> tuple[Any, Any]:
    """(images (1797, 8, 8), labels) of ``sklearn.datasets.load_digits``, read from the file
    scikit-learn ships (``sklearn/datasets/data/digits.csv.gz``: 64 pixels and the label per
    row) without importing scikit-learn (a second per worker process); through
    scikit-learn when the file is not where it is expected."""
    import importlib.util

    import numpy as np

    spec = importlib.util.find_spec("sklearn")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = os.path.join(folder, "datasets", "data", "digits.csv.gz")
        if os.path.isfile(path):
            data = np.loadtxt(path, delimiter=",")
            if data.shape == (1797, 65):
                return data[:, :-1].reshape(-1, 8, 8), data[:, -1].astype(np.int64)
    from sklearn import datasets

    raw = datasets.load_digits()
    return raw.images, raw.target


class DigitsRun:
    """One run: the model (initialized from the global seed the runner set) and the batch
    order (one permutation per epoch, drawn in turn from a generator seeded with ``seed``)."""

    def __init__(self, data: DigitsData, seed: int, batch_size: int, width: int) -> None:
        self.data, self.batch_size = data, batch_size
        self.model = TinyCNN(width)
        self.per_epoch = data.steps_per_epoch(batch_size)
        self._gen = torch.Generator().manual_seed(seed)
        self._orders: list[torch.Tensor] = []

    def param_groups(self) -> Any:
        return self.model.parameters()

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, i = divmod(step, self.per_epoch)
        while len(self._orders) <= epoch:
            self._orders.append(torch.randperm(self.data.n_train, generator=self._gen))
        idx = self._orders[epoch][i * self.batch_size:(i + 1) * self.batch_size]
        return self.data.x_train[idx], self.data.y_train[idx]

    def loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(self.model(x), y)

    def evaluate(self) -> dict[str, float]:
        logits = self.model(self.data.x_val)
        return {"val_loss": float(F.cross_entropy(logits, self.data.y_val)),
                "val_acc": float((logits.argmax(1) == self.data.y_val).double().mean())}


class Digits:
    """The ``digits`` task: ``epochs`` passes of ``batch_size`` images, evaluated each epoch.

    Args:
        epochs: passes over the 1438 training images (steps = epochs x ceil(1438 / batch)).
        batch_size: images per optimizer update.
        width: channels of the first convolution (the model has about 600 w + 330 w² weights).
        metric: what the study ranks on: ``"val_loss"`` (default: continuous, fewer ties on
            359 images) or ``"val_acc"``.

    Example:
        >>> t = Digits(epochs=1)
        >>> t.steps, t.eval_every, t.metric
        (23, 23, 'val_loss')
        >>> run = t.build(0)
        >>> x, y = run.batch(0)
        >>> x.shape, y.shape
        (torch.Size([64, 1, 8, 8]), torch.Size([64]))
    """

    name = "digits"

    def __init__(self, epochs: int = 10, batch_size: int = 64, width: int = 8,
                 metric: str = "val_loss") -> None:
        self.epochs = check_int("epochs", epochs, low=1)
        self.batch_size = check_int("batch_size", batch_size, low=1)
        self.width = check_int("width", width, low=1)
        self.metric = check_choice("metric", metric, ("val_loss", "val_acc"))
        self.higher_is_better = metric == "val_acc"
        n_train = 1797 - round(1797 * 0.2)
        self.eval_every = -(-n_train // self.batch_size)
        self.steps = self.epochs * self.eval_every
        #: the ``muon`` optimizer: the classifier is the CNN's only matrix, so Muon trains it
        #: (no output head kept on AdamW); the conv kernels (4-D) and biases stay on AdamW
        self.muon_exclude: tuple[str, ...] = ()

    def describe(self) -> dict[str, Any]:
        from importlib.metadata import version

        data = load_digits()
        return {"dataset": "sklearn digits (8x8, 10 classes)",
                "sklearn": version("scikit-learn"),
                "n_train": data.n_train, "n_val": int(data.x_val.shape[0]),
                "model": f"TinyCNN(width={self.width})", "epochs": self.epochs,
                "batch_size": self.batch_size, "steps_per_epoch": self.eval_every}

    def build(self, seed: int) -> DigitsRun:
        return DigitsRun(load_digits(), seed, self.batch_size, self.width)

    def __repr__(self) -> str:
        return (f"Digits(epochs={self.epochs}, batch_size={self.batch_size}, "
                f"width={self.width}, metric={self.metric!r})")
