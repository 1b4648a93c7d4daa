"""The digits task: the split, the horizon, random-access batches in a fixed order."""

from __future__ import annotations

import torch

from lrkit.tasks.base import check_run, check_task
from lrkit.tasks.digits import Digits, load_digits


def test_the_data_is_scikit_learns_digits() -> None:
    from sklearn.datasets import load_digits as sk_digits

    from lrkit.tasks.digits import _raw_digits

    images, target = _raw_digits()
    ref = sk_digits()
    assert (images == ref.images).all()
    assert (target == ref.target).all()


def test_split_and_horizon() -> None:
    data = load_digits()
    assert data.n_train == 1438
    assert data.x_val.shape == (359, 1, 8, 8)
    assert float(data.x_train.max()) == 1.0
    t = check_task(Digits(epochs=2, batch_size=64))
    assert (t.steps, t.eval_every, t.metric, t.higher_is_better) == (46, 23, "val_loss", False)
    assert Digits(metric="val_acc").higher_is_better
    assert t.describe()["n_val"] == 359


def test_batches_random_access_and_each_epoch_a_permutation() -> None:
    t = Digits(epochs=2, batch_size=64)
    a, b = check_run(t.build(3), "digits"), check_run(t.build(3), "digits")
    late = b.batch(30)  # asked first, out of order: the same batch as in order
    seen = [a.batch(k) for k in range(46)]
    assert torch.equal(late[0], seen[30][0])
    assert torch.equal(late[1], seen[30][1])
    data = load_digits()
    first = torch.cat([x for x, _ in seen[:23]]).flatten(1)
    assert first.shape[0] == 1438  # the last batch of an epoch is smaller (1438 = 22*64 + 30)
    assert seen[22][0].shape[0] == 30
    # every training image exactly once per epoch (compare as sorted rows)
    assert torch.equal(torch.sort(first.sum(1)).values,
                       torch.sort(data.x_train.flatten(1).sum(1)).values)
    other = t.build(4)
    assert not torch.equal(other.batch(0)[1], seen[0][1])
