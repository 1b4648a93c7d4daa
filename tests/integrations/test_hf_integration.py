"""lrkit with the real Hugging Face Trainer on a tiny model built here (no hub download):
training, the logged learning_rate (the rate the update used), gradient accumulation
(one schedule step per update) and exact resume from a Trainer checkpoint."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers")  # installed in CI by the integrations extra

from lrkit import Linear, Rel, Warmup  # noqa: E402
from lrkit.integrations.hf import TrainerScheduler, create_optimizer_and_scheduler  # noqa: E402
from lrkit.spec import parse  # noqa: E402
from lrkit.torch import LRScheduler  # noqa: E402

LR = 0.01
SPEC = "warmup(4, start=0.1x) then cos(end=0.01x)"


class TinyConfig(transformers.PretrainedConfig):
    model_type = "lrkit-tiny"

    def __init__(self, width: int = 8, **kw: Any) -> None:
        self.width = width
        super().__init__(**kw)


class TinyModel(transformers.PreTrainedModel):
    config_class = TinyConfig

    def __init__(self, config: TinyConfig) -> None:
        super().__init__(config)
        self.net = torch.nn.Sequential(torch.nn.Linear(4, config.width), torch.nn.Tanh(),
                                       torch.nn.Linear(config.width, 1))
        self.post_init()

    def _init_weights(self, module: Any) -> None:
        pass  # keep torch's default init (seeded in the tests)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, Any]:
        out = self.net(x)
        loss = None if labels is None else torch.nn.functional.mse_loss(out, labels)
        return {"loss": loss, "logits": out}


class Data(torch.utils.data.Dataset[dict[str, torch.Tensor]]):
    def __init__(self, n: int = 32) -> None:
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 4, generator=g)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"x": self.x[i], "labels": self.x[i].sum(0, keepdim=True)}


class Used(transformers.TrainerCallback):
    """The lr in the optimizer when each update is applied, and the scheduler steps."""

    def __init__(self) -> None:
        self.lrs: list[float] = []
        self.sched_steps: list[int] = []

    def on_pre_optimizer_step(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        self.lrs.append(kw["optimizer"].param_groups[0]["lr"])
        self.sched_steps.append(kw["lr_scheduler"].last_epoch)


def _args(out: Path, **kw: Any) -> Any:
    base = dict(output_dir=str(out), per_device_train_batch_size=4, learning_rate=LR,
                logging_steps=1, report_to=[], use_cpu=True, disable_tqdm=True,
                save_strategy="no", seed=0, dataloader_num_workers=0)
    base.update(kw)
    return transformers.TrainingArguments(**base)


def _train(out: Path, *, resume: str | None = None, build: str = "helper",
           **kw: Any) -> tuple[Any, Used]:
    torch.manual_seed(0)
    model = TinyModel(TinyConfig())
    args = _args(out, **kw)
    if build == "helper":
        opt, sched = create_optimizer_and_scheduler(model, SPEC, args=args)
    else:  # built by hand: TrainerScheduler, or the plain LRScheduler
        opt = torch.optim.AdamW(model.parameters(), lr=LR)
        cls = TrainerScheduler if build == "direct" else LRScheduler
        sched = cls(opt, parse(SPEC, total_steps=kw["max_steps"]))
    used = Used()
    trainer = transformers.Trainer(model=model, args=args, train_dataset=Data(),
                                   optimizers=(opt, sched), callbacks=[used])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.train(resume_from_checkpoint=resume)
    return trainer, used


@pytest.fixture(scope="module")
def schedule() -> Any:
    return parse(SPEC, total_steps=24)


def _logged(trainer: Any) -> dict[int, float]:
    return {h["step"]: h["learning_rate"] for h in trainer.state.log_history
            if "learning_rate" in h}


@pytest.mark.slow
@pytest.mark.parametrize("build", ["helper", "direct"])
def test_trains_and_logs_the_rate_each_update_used(tmp_path: Path, schedule: Any,
                                                   build: str) -> None:
    trainer, used = _train(tmp_path, max_steps=24, build=build)
    want = schedule(np.arange(24.0), base=LR)
    np.testing.assert_allclose(used.lrs, want, rtol=1e-15)
    logged = _logged(trainer)
    assert sorted(logged) == list(range(1, 25))
    for step, lr in logged.items():  # the log after update s shows the rate update s used
        assert lr == pytest.approx(schedule(step - 1, base=LR), rel=1e-15)
    assert logged[1] != logged[2]  # (warmup: consecutive rates differ, so this can fail)
    assert isinstance(trainer.lr_scheduler, LRScheduler)


@pytest.mark.slow
def test_plain_lrscheduler_would_log_the_previous_updates_rate(tmp_path: Path) -> None:
    """Why TrainerScheduler exists: LRScheduler.get_last_lr() is the previous step's rate
    when read before scheduler.step(), which is where the Trainer reads it."""
    trainer, used = _train(tmp_path, max_steps=8, build="plain")
    want = parse(SPEC, total_steps=8)(np.arange(8.0), base=LR)
    np.testing.assert_allclose(used.lrs, want, rtol=1e-15)
    logged = _logged(trainer)
    assert [logged[s] for s in range(2, 9)] == pytest.approx(used.lrs[:7], rel=1e-15)


@pytest.mark.slow
def test_gradient_accumulation_counts_updates(tmp_path: Path, schedule: Any) -> None:
    # 32 samples / batch 4 = 8 micro-batches per epoch; accumulating 4 makes 2 updates
    _, used = _train(tmp_path, max_steps=24, gradient_accumulation_steps=4)
    assert len(used.lrs) == 24
    assert used.sched_steps == list(range(24))
    np.testing.assert_allclose(used.lrs, schedule(np.arange(24.0), base=LR), rtol=1e-15)


@pytest.mark.slow
def test_resume_from_checkpoint_is_exact(tmp_path: Path) -> None:
    _, full = _train(tmp_path / "full", max_steps=24, save_strategy="steps", save_steps=10)
    ckpt = tmp_path / "full" / "checkpoint-10"
    assert (ckpt / "scheduler.pt").exists()
    _, resumed = _train(tmp_path / "resumed", max_steps=24, resume=str(ckpt))
    assert resumed.sched_steps == list(range(10, 24))
    assert resumed.lrs == full.lrs[10:]


def test_helper_reads_training_arguments(tmp_path: Path) -> None:
    args = _args(tmp_path, max_steps=50, weight_decay=0.1)
    model = TinyModel(TinyConfig())
    opt, sched = create_optimizer_and_scheduler(model, Warmup(Linear(40, end=Rel(0.0)), 10),
                                                args=args)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.1, 0.0]  # biases: no decay
    assert opt.param_groups[0]["lr"] == 0.0
    assert sched.base_lrs[0] == LR
    _, s2 = create_optimizer_and_scheduler(model, "warmup(10) then linear", args=args)
    # total_steps came from args.max_steps (50): linear over 40 steps after the warmup
    assert s2.lr_at(30)[0] == pytest.approx(LR * 0.5, rel=1e-15)
