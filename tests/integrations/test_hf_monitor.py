"""The per-layer monitor callback on the real Hugging Face Trainer (tiny model built here)."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch

transformers = pytest.importorskip("transformers")

from lrkit.integrations.hf import monitor_callback  # noqa: E402


class _Model(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(),
                                       torch.nn.Linear(8, 1))

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, Any]:
        out = self.net(x)
        loss = None if labels is None else torch.nn.functional.mse_loss(out, labels)
        return {"loss": loss, "logits": out}


class _Data(torch.utils.data.Dataset[dict[str, torch.Tensor]]):
    def __init__(self) -> None:
        self.x = torch.randn(32, 4, generator=torch.Generator().manual_seed(0))

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"x": self.x[i], "labels": self.x[i].sum(0, keepdim=True)}


class _Used(transformers.TrainerCallback):
    def __init__(self) -> None:
        self.lrs: list[float] = []

    def on_pre_optimizer_step(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        self.lrs.append(kw["optimizer"].param_groups[0]["lr"])


@pytest.mark.slow
def test_trainer_logs_the_per_layer_picture(tmp_path: Path) -> None:
    torch.manual_seed(0)
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path), per_device_train_batch_size=4, learning_rate=0.01,
        max_steps=6, logging_steps=100, report_to=[], use_cpu=True, disable_tqdm=True,
        save_strategy="no", seed=0, dataloader_num_workers=0)
    cb, used = monitor_callback(every=2), _Used()
    trainer = transformers.Trainer(model=_Model(), args=args, train_dataset=_Data(),
                                   callbacks=[cb, used])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.train()
    logs = {h["step"]: h for h in trainer.state.log_history if "lr/net.0.weight/base" in h}
    assert sorted(logs) == [1, 2, 4, 6]
    for step, h in logs.items():
        assert h["lr/net.0.weight/base"] == pytest.approx(used.lrs[step - 1], rel=1e-12)
        for name in ("net.0.weight", "net.0.bias", "net.2.weight"):
            assert math.isfinite(h[f"lr/{name}/log10_update_to_weight"])
            assert -1.0 <= h[f"lr/{name}/update_grad_cosine"] <= 1.0
            assert h[f"lr/{name}/p90"] >= h[f"lr/{name}/p50"] > 0
    assert cb.monitor is not None
    assert all(isinstance(r.group, str) for r in cb.monitor.history)
