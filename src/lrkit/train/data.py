"""The digits data set that ships inside scikit-learn (8x8 images, 10 classes, no download)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import torch

__all__ = ["Digits", "batches", "load_digits"]


@dataclasses.dataclass(frozen=True)
class Digits:
    """A fixed train/validation split of ``sklearn.datasets.load_digits``.

    Images are ``float32`` tensors of shape ``(n, 1, 8, 8)`` scaled to ``[0, 1]``; labels are
    ``int64``. The split does not depend on the run's seed, so every run sees the same data.
    """

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


def load_digits(val_fraction: float = 0.2, split_seed: int = 0) -> Digits:
    """Load the digits and split them with a fixed permutation (``split_seed``).

    Example:
        >>> d = load_digits()
        >>> d.x_train.shape[1:], d.n_train + d.x_val.shape[0]
        (torch.Size([1, 8, 8]), 1797)
    """
    from sklearn import datasets

    raw = datasets.load_digits()
    x = torch.as_tensor(raw.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.as_tensor(raw.target, dtype=torch.int64)
    perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(split_seed))
    n_val = round(x.shape[0] * val_fraction)
    val, train = perm[:n_val], perm[n_val:]
    return Digits(x[train], y[train], x[val], y[val])


def batches(
    x: torch.Tensor, y: torch.Tensor, batch_size: int, generator: torch.Generator
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch of shuffled mini-batches, the order drawn from ``generator``."""
    order = torch.randperm(x.shape[0], generator=generator)
    for i in range(0, x.shape[0], batch_size):
        idx = order[i : i + batch_size]
        yield x[idx], y[idx]
