"""The tiny CNN of the comparison task (about 5k parameters; trains in seconds on a CPU)."""

from __future__ import annotations

from torch import nn

__all__ = ["TinyCNN"]


class TinyCNN(nn.Sequential):
    """conv3x3(1→8) · ReLU · conv3x3(8→16) · ReLU · maxpool 2 · linear(256→10).

    Example:
        >>> import torch
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
