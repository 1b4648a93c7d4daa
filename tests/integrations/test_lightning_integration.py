"""lrkit with the real PyTorch Lightning: step-interval scheduling, exact mid-epoch resume
from a Lightning checkpoint, and the monitor callback logging through the trainer's logger."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

pl = pytest.importorskip("lightning.pytorch")  # installed in CI by the integrations extra

from lightning.pytorch.loggers import Logger  # noqa: E402

from lrkit import Cosine, Rel, Warmup  # noqa: E402
from lrkit.integrations.lightning import LRMonitorCallback  # noqa: E402
from lrkit.torch import LRScheduler  # noqa: E402

SCHEDULE = Warmup(Cosine(40, end=Rel(0.05)), 6, start=Rel(0.1))
LR = 0.05
TOTAL = 30  # optimizer updates; 8 batches per epoch, so resumes fall mid-epoch


class Tiny(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(),
                                       torch.nn.Linear(8, 1))
        self.used: list[float] = []  # the lr each optimizer update used

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return torch.nn.functional.mse_loss(self.net(x), y)

    def on_before_optimizer_step(self, optimizer: Any) -> None:
        self.used.append(optimizer.param_groups[0]["lr"])

    def configure_optimizers(self) -> Any:
        opt = torch.optim.AdamW(self.parameters(), lr=LR)
        sched = LRScheduler(opt, SCHEDULE)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


class MemoryLogger(Logger):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[int, dict[str, float]]] = []

    @property
    def name(self) -> str:
        return "memory"

    @property
    def version(self) -> int:
        return 0

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self.rows.append((int(step or 0), dict(metrics)))

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        pass


def _data() -> torch.utils.data.DataLoader[Any]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=g)
    ds = torch.utils.data.TensorDataset(x, x.sum(1, keepdim=True))
    return torch.utils.data.DataLoader(ds, batch_size=8, shuffle=False)


def _trainer(tmp: Path, steps: int, **kw: Any) -> Any:
    return pl.Trainer(max_steps=steps, accelerator="cpu", devices=1, enable_progress_bar=False,
                      enable_model_summary=False, enable_checkpointing=False, logger=False,
                      default_root_dir=tmp, num_sanity_val_steps=0, **kw)


@pytest.fixture(autouse=True)
def _quiet() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def test_step_interval_and_exact_mid_epoch_resume(tmp_path: Path) -> None:
    torch.manual_seed(0)
    full = Tiny()
    _trainer(tmp_path / "full", TOTAL).fit(full, _data())
    want = SCHEDULE(np.arange(float(TOTAL)), base=LR)
    np.testing.assert_allclose(full.used, want, rtol=1e-15)  # one schedule step per update

    torch.manual_seed(0)
    first = Tiny()
    trainer = _trainer(tmp_path / "a", 11)  # stops after update 11: batch 3 of epoch 2
    trainer.fit(first, _data())
    ckpt = tmp_path / "mid.ckpt"
    trainer.save_checkpoint(ckpt)

    second = Tiny()
    _trainer(tmp_path / "b", TOTAL).fit(second, _data(), ckpt_path=str(ckpt))
    assert len(first.used) == 11
    assert len(second.used) == TOTAL - 11
    # the resumed rate sequence continues the uninterrupted one exactly
    assert first.used + second.used == full.used


def test_monitor_callback_logs_base_and_effective_rates(tmp_path: Path) -> None:
    torch.manual_seed(0)
    logger = MemoryLogger()
    model = Tiny()
    trainer = pl.Trainer(max_steps=12, accelerator="cpu", devices=1, enable_progress_bar=False,
                         enable_model_summary=False, enable_checkpointing=False,
                         logger=logger, log_every_n_steps=1, default_root_dir=tmp_path,
                         callbacks=[LRMonitorCallback(every=5)])
    trainer.fit(model, _data())
    rows = {step: m for step, m in logger.rows if "lr/0/base" in m}
    assert sorted(rows) == [1, 5, 10]  # first update, then every 5th
    for step, metrics in rows.items():
        # the base rate the update used (update `step` is schedule step `step - 1`)
        assert metrics["lr/0/base"] == pytest.approx(SCHEDULE(step - 1, base=LR), rel=1e-12)
        assert metrics["lr/0/base"] == model.used[step - 1]
        # AdamW's effective per-element rate: bounded by lr / eps scale, positive, ordered
        p10, p50, p90 = metrics["lr/0/p10"], metrics["lr/0/p50"], metrics["lr/0/p90"]
        assert 0 < metrics["lr/0/min"] <= p10 <= p50 <= p90 <= metrics["lr/0/max"]
        assert "lr/0/update_rms" in metrics
    # at update 1 Adam's step is lr * sign(g) per element: effective rate lr / |g| > 0
    assert rows[1]["lr/0/p50"] > 0


def test_monitor_callback_with_the_tensorboard_logger(tmp_path: Path) -> None:
    """Through Lightning's own TensorBoardLogger: the event files hold the base rate."""
    from lightning.pytorch.loggers import TensorBoardLogger
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    torch.manual_seed(0)
    logger = TensorBoardLogger(str(tmp_path), name="tb", version=0)
    model = Tiny()
    trainer = pl.Trainer(max_steps=6, accelerator="cpu", devices=1, enable_progress_bar=False,
                         enable_model_summary=False, enable_checkpointing=False,
                         logger=logger, default_root_dir=tmp_path,
                         callbacks=[LRMonitorCallback(every=2)])
    trainer.fit(model, _data())
    logger.finalize("success")
    acc = EventAccumulator(str(tmp_path / "tb" / "version_0"))
    acc.Reload()
    base = acc.Scalars("lr/0/base")
    assert [e.step for e in base] == [1, 2, 4, 6]
    assert [e.value for e in base] == pytest.approx([model.used[s - 1] for s in (1, 2, 4, 6)],
                                                    rel=1e-6)  # float32 in the event file
    assert "lr/0/p50" in acc.Tags()["scalars"]


def test_monitor_callback_continues_the_step_count_after_resume(tmp_path: Path) -> None:
    """A run resumed from a mid-epoch checkpoint logs at the same steps, with the same base
    rates, as the uninterrupted run (the callback takes the count from ``global_step``)."""

    def fit(steps: int, logger: MemoryLogger, ckpt: Path | None = None) -> Any:
        torch.manual_seed(0)
        trainer = pl.Trainer(max_steps=steps, accelerator="cpu", devices=1,
                             enable_progress_bar=False, enable_model_summary=False,
                             enable_checkpointing=False, logger=logger, log_every_n_steps=1,
                             default_root_dir=tmp_path, num_sanity_val_steps=0,
                             callbacks=[LRMonitorCallback(every=4)])
        trainer.fit(Tiny(), _data(), ckpt_path=str(ckpt) if ckpt else None)
        return trainer

    def base_rows(logger: MemoryLogger) -> dict[int, float]:
        return {step: m["lr/0/base"] for step, m in logger.rows if "lr/0/base" in m}

    full = MemoryLogger()
    fit(TOTAL, full)
    first, second = MemoryLogger(), MemoryLogger()
    trainer = fit(11, first)
    ckpt = tmp_path / "mid.ckpt"
    trainer.save_checkpoint(ckpt)
    fit(TOTAL, second, ckpt)
    want = base_rows(full)
    assert sorted(want) == [1, 4, 8, 12, 16, 20, 24, 28]
    resumed = base_rows(second)
    assert sorted(resumed) == [12, 16, 20, 24, 28]  # not restarted at 1 after the resume
    assert {**base_rows(first), **resumed} == want


def test_monitor_callback_per_layer_picture(tmp_path: Path) -> None:
    """per_param=True: each named parameter's per-layer fields reach the logger."""
    torch.manual_seed(0)
    logger = MemoryLogger()
    model = Tiny()
    cb = LRMonitorCallback(every=4, per_param=True)
    trainer = pl.Trainer(max_steps=8, accelerator="cpu", devices=1, enable_progress_bar=False,
                         enable_model_summary=False, enable_checkpointing=False,
                         logger=logger, log_every_n_steps=1, default_root_dir=tmp_path,
                         callbacks=[cb])
    trainer.fit(model, _data())
    names = [n for n, _ in model.named_parameters()]
    rows: dict[int, dict[str, float]] = {}
    for step, m in logger.rows:
        if any(k.startswith("lr/") for k in m):
            rows.setdefault(step, {}).update(m)
    assert cb.monitor is not None
    assert sorted(rows) == [1, 4, 8]
    for rec in cb.monitor.history:
        m = rows[rec.step]
        assert m[f"lr/{rec.group}/log10_update_to_weight"] == pytest.approx(
            rec.summary.log10_update_to_weight, rel=1e-12)
        assert -1.0 <= m[f"lr/{rec.group}/update_grad_cosine"] <= 1.0
    assert {r.group for r in cb.monitor.history} == set(names)
