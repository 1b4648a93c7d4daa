"""The study's ``muon`` choice: which parameters Muon trains on the built-in tasks and on
plain models, updates equal to torch's Muon + AdamW stepped by hand, one schedule for both
rates in a compare run, the run file, and bad input."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from lrkit.errors import ConfigError
from lrkit.spec import parse
from lrkit.study import compare, run_one
from lrkit.study.api import plan_runs
from lrkit.study.config import PARTNERS, RunConfig, ScheduleChoice, make_optimizer
from lrkit.study.muon import muon_split, output_head
from lrkit.study.record import RunResult, load_run
from lrkit.tasks.base import check_task
from lrkit.tasks.digits import Digits
from lrkit.tasks.tinylm import TinyLM
from lrkit.torch import CombinedOptimizer, LRScheduler

pytestmark = pytest.mark.filterwarnings("ignore::lrkit.inspect.ScheduleAdviceWarning")

STEPS = 8


def _tiny(**kw: Any) -> TinyLM:
    args: dict[str, Any] = {"context": 16, "width": 16, "layers": 1, "heads": 2,
                            "batch_size": 4, "steps": STEPS, "eval_every": 4,
                            "corpus_bytes": 150_000, "val_windows": 8}
    return TinyLM(**{**args, **kw})


def _cosine(k: int, n: int = STEPS) -> float:  # typed here: 0.5 (1 + cos(pi k / n))
    return 0.5 * (1 + math.cos(math.pi * k / n))


def _kinds(opt: torch.optim.Optimizer, model: nn.Module) -> dict[str, str]:
    """Parameter name -> the class of the part that steps it."""
    assert isinstance(opt, CombinedOptimizer)
    names = {p: n for n, p in model.named_parameters()}
    return {names[p]: type(part).__name__ for part in opt.parts for g in part.param_groups
            for p in g["params"]}


# -- which parameters ------------------------------------------------------------------------

def test_digits_muon_on_the_classifier_conv_kernels_on_adamw() -> None:
    task = Digits(epochs=1)
    torch.manual_seed(0)
    run = task.build(0)
    opt = make_optimizer("muon", run.param_groups(), model=run.model,
                         muon_exclude=task.muon_exclude)
    assert _kinds(opt, run.model) == {
        "6.weight": "Muon",  # the only matrix (10 x 512)
        "0.weight": "AdamW", "2.weight": "AdamW",  # 4-D kernels, not flattened
        "0.bias": "AdamW", "2.bias": "AdamW", "6.bias": "AdamW"}
    assert run.model[0].weight.dim() == 4
    assert [(g["lr"], g["weight_decay"]) for g in opt.param_groups] == [(0.02, 0.1),
                                                                        (3e-3, 1e-2)]
    # without the task's muon_exclude the classifier is the output head: nothing for Muon
    assert output_head(run.model) == "6.weight"
    assert muon_split(run.model)[0] == []


def test_tinylm_muon_on_block_matrices_embeddings_and_norms_on_adamw() -> None:
    task = _tiny(layers=2)
    run = task.build(0)
    opt = make_optimizer("muon", run.param_groups(), 0.03, 0.05, model=run.model,
                         partner_lr=6e-3, partner_weight_decay=0.02,
                         muon_exclude=task.muon_exclude)
    kinds = _kinds(opt, run.model)
    muon = sorted(n for n, k in kinds.items() if k == "Muon")
    assert muon == sorted(f"blocks.{i}.{m}.weight" for i in range(2)
                          for m in ("qkv", "proj", "fc", "out"))
    # the byte embedding (also the output layer: tied), the positions, norms and biases
    assert kinds["embed.weight"] == kinds["pos"] == kinds["ln.weight"] == "AdamW"
    assert kinds["blocks.0.qkv.bias"] == kinds["blocks.1.ln2.weight"] == "AdamW"
    assert set(kinds) == {n for n, _ in run.model.named_parameters()}
    # the task's groups (matrices decayed, the rest not) split in a Muon and an AdamW part
    assert [(type(part).__name__, g["lr"], g["weight_decay"], len(g["params"]))
            for part in opt.parts for g in part.param_groups] == [
        ("Muon", 0.03, 0.05, 8), ("AdamW", 6e-3, 0.02, 2), ("AdamW", 6e-3, 0.0, 18)]
    # without muon_exclude the positions (a bare 2-D table) count as a matrix
    assert "pos" in muon_split(run.model)[0]


class _Net(nn.Module):
    def __init__(self, tie: bool = False) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 6)
        self.hidden = nn.Linear(6, 6)
        self.norm = nn.LayerNorm(6)
        self.head = nn.Linear(6, 10, bias=False)
        if tie:
            self.head.weight = self.embed.weight


@pytest.mark.parametrize(("model", "exclude", "muon"), [
    (nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2)),
     None, ["0.weight", "2.weight"]),  # the last Linear is the head
    (nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)), [], ["0.weight", "2.weight"]),
    (nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8)), None, ["0.weight"]),  # head: a norm
    (_Net(), None, ["hidden.weight"]),
    (_Net(tie=True), None, ["hidden.weight"]),  # head tied to the embedding: AdamW
    (_Net(), ["hid*"], ["head.weight"]),  # the task names what AdamW keeps
    (nn.Linear(3, 4), None, []),  # a lone Linear is its own head
])
def test_split_rule(model: nn.Module, exclude: list[str] | None, muon: list[str]) -> None:
    got, rest = muon_split(model, exclude)
    assert got == muon
    names = [n for n, _ in model.named_parameters()]
    assert rest == [n for n in names if n not in muon]  # everything else, in model order


# -- ground truth ----------------------------------------------------------------------------

def test_updates_equal_torch_muon_and_adamw_stepped_by_hand() -> None:
    """make_optimizer('muon') under lrkit's scheduler moves every parameter of tinylm exactly
    as torch's Muon and AdamW built by hand with the same groups, their rates set by hand to
    base x schedule each update."""
    task = _tiny()
    a, b = task.build(0), task.build(0)
    opt = make_optimizer("muon", a.param_groups(), 0.02, 0.1, model=a.model,
                         partner_lr=6e-3, partner_weight_decay=0.01,
                         muon_exclude=task.muon_exclude)
    sched = LRScheduler(opt, parse(f"cosine over {STEPS}"))
    named = dict(b.model.named_parameters())
    matrices = [p for n, p in named.items() if n.startswith("blocks.") and p.dim() == 2]
    muon = torch.optim.Muon(matrices, lr=0.02, weight_decay=0.1)
    adamw = torch.optim.AdamW([{"params": [named["pos"], named["embed.weight"]]},
                               {"params": [p for p in named.values() if p.dim() < 2],
                                "weight_decay": 0.0}], lr=6e-3, weight_decay=0.01)
    for k in range(STEPS):
        for opt_b, base in ((muon, 0.02), (adamw, 6e-3)):
            for g in opt_b.param_groups:
                g["lr"] = base * _cosine(k)
        for run, steppers in ((a, [opt]), (b, [muon, adamw])):
            loss = run.loss(run.batch(k))
            loss.backward()
            for s in steppers:
                s.step()
                s.zero_grad()
        sched.step()
        for (name, p), q in zip(a.model.named_parameters(), b.model.parameters(), strict=True):
            assert torch.equal(p, q), (k, name)
    assert not torch.equal(named["blocks.0.qkv.weight"], task.build(0).model.blocks[0].qkv.weight)


# -- a study ---------------------------------------------------------------------------------

class _OwnLoop:
    """tinylm's run stepped by its own loop (ctx), noting every group's rate per update."""

    def __init__(self, run: Any) -> None:
        self.run, self.model = run, run.model
        self.lrs: list[list[float]] = []
        self.optimizer: Any = None

    def param_groups(self) -> Any:
        return self.run.param_groups()

    def evaluate(self) -> dict[str, float]:
        return self.run.evaluate()  # type: ignore[no-any-return]

    def train(self, ctx: Any) -> None:
        self.optimizer = ctx.optimizer
        step, go = 0, True
        while go:
            self.lrs.append([float(g["lr"]) for g in ctx.optimizer.param_groups])
            loss = self.run.loss(self.run.batch(step))
            ctx.optimizer.zero_grad()
            loss.backward()
            ctx.optimizer.step()
            step += 1
            go = ctx.step(loss)


class _OwnLoopLM(TinyLM):
    def __init__(self) -> None:
        super().__init__(**{"context": 16, "width": 16, "layers": 1, "heads": 2,
                            "batch_size": 4, "steps": STEPS, "eval_every": 4,
                            "corpus_bytes": 150_000, "val_windows": 8})
        self.built: list[_OwnLoop] = []

    def build(self, seed: int) -> Any:
        self.built.append(_OwnLoop(super().build(seed)))
        return self.built[-1]


def test_compare_muon_one_schedule_drives_both_rates(tmp_path: Path) -> None:
    task = _OwnLoopLM()
    study = compare(task, specs=[f"cos=cosine over {STEPS}"], optimizers=["muon"], seeds=[0],
                    workers=1, output=tmp_path / "rep")
    (r,) = study.runs
    assert r.status == "finished", r.error
    cfg = r.config
    assert (cfg.lr, cfg.weight_decay) == (0.02, 0.1)  # lrkit's Muon defaults
    assert (cfg.partner_lr, cfg.partner_weight_decay) == (6e-3, 1e-2)  # tinylm's adamw rate
    (own,) = task.built
    opt = own.optimizer
    assert isinstance(opt, CombinedOptimizer)
    assert [type(p).__name__ for p in opt.parts] == ["Muon", "AdamW"]
    bases = [0.02] * len(opt.parts[0].param_groups) + [6e-3] * len(opt.parts[1].param_groups)
    assert len(own.lrs) == STEPS
    for k, lrs in enumerate(own.lrs):  # every group: its base x the schedule's value
        assert lrs == pytest.approx([b * _cosine(k) for b in bases], rel=1e-12), k
    np.testing.assert_allclose(r.lr, [0.02 * _cosine(k) for k in range(STEPS)], rtol=1e-12)
    # the per-layer record: Muon's rate after torch's shape adjustment, sqrt(max(1, A/B))
    lay = r.layers
    assert lay is not None
    j = lay["names"].index("blocks.0.qkv.weight")  # 48 x 16: sqrt(3)
    for i, step in enumerate(lay["steps"]):
        want = 0.02 * _cosine(step - 1) * math.sqrt(3.0)
        assert lay["fields"]["p50"][i][j] == pytest.approx(want, rel=1e-3), step
    # the run file carries the partner and reads back
    (path,) = (tmp_path / "rep" / "runs").glob("*.json")
    d = load_run(path)
    assert d["optimizer"] == {"name": "muon", "base_lr": 0.02, "weight_decay": 0.1,
                              "partner": {"name": "adamw", "base_lr": 6e-3,
                                          "weight_decay": 1e-2}}
    assert RunResult.from_dict(d).config == cfg
    html = (tmp_path / "rep" / "report.html").read_text()
    assert '<p class="advice"><b>muon</b>: Muon orthogonalizes' in html


def test_plan_runs_partner_rates() -> None:
    task = _tiny()
    runs = plan_runs(task, schedules=["constant"], optimizers=["adamw", "muon", "sgd"],
                     seeds=[0], lrs={"muon": 0.05, "adamw": 1e-3})
    got = {c.optimizer: (c.lr, c.partner_lr, c.partner_weight_decay) for c in runs}
    assert got == {"adamw": (1e-3, None, None), "muon": (0.05, 1e-3, 1e-2),
                   "sgd": (0.05, None, None)}
    assert PARTNERS == {"muon": "adamw"}
    muon = next(c for c in runs if c.optimizer == "muon")
    assert muon.key()["partner"] == [1e-3, 1e-2]
    assert "partner" not in runs[0].key()  # other optimizers' checkpoints keep their key


# -- bad input -------------------------------------------------------------------------------

def test_no_matrix_for_muon_is_a_clear_error() -> None:
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    with pytest.raises(ConfigError, match=r"optimizer='muon' is invalid for this model: no "
                                          r"parameter for Muon .*Parameters: 0\.weight "
                                          r"\(2, 1, 3, 3\), 0\.bias \(2,\)"):
        make_optimizer("muon", model.parameters(), model=model)


class _NoMatrixTask(Digits):
    """digits with a model that has no 2-D parameter: every muon run fails, clearly."""

    def build(self, seed: int) -> Any:
        run = super().build(seed)
        run.model = nn.Sequential(nn.Conv2d(1, 10, 8), nn.Flatten())
        return run


def test_run_with_no_matrix_fails_with_the_reason() -> None:
    task = _NoMatrixTask(epochs=1)
    cfg = RunConfig(ScheduleChoice("c", "constant"), "muon", 0.02, 0, 3)
    r = run_one(task, cfg)
    assert r.status == "failed"
    assert r.error is not None
    assert r.error.startswith("ConfigError: optimizer='muon' is invalid for this model: no "
                              "parameter for Muon")


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"model": None}, "model=None is invalid: expected the task's torch.nn.Module with "
                      "optimizer='muon'"),
    ({"muon_exclude": ["head.weight", "nope*"]},
     "muon_exclude='nope*' is invalid: expected a pattern naming parameters"),
    ({"groups": [{"lr": 0.1}]},
     "param_groups()[0]['lr']=0.1 is invalid: expected no lr of the group's own"),
    ({"partner_lr": -1.0}, "partner_lr=-1.0 is invalid"),
])
def test_bad_input(kwargs: dict[str, Any], needle: str) -> None:
    model = _Net()
    groups = [{**g, "params": list(model.parameters())} for g in kwargs.pop("groups", [{}])]
    kwargs.setdefault("model", model)
    with pytest.raises(ConfigError) as info:
        make_optimizer("muon", groups, **kwargs)
    assert needle in str(info.value)


def test_task_muon_exclude_is_checked() -> None:
    task = Digits(epochs=1)
    task.muon_exclude = "head"  # type: ignore[assignment]
    with pytest.raises(ConfigError, match=r"task='t' is invalid: muon_exclude='head': expected "
                                          "a list of parameter names"):
        check_task(task, "t")


def test_range_test_refuses_muon() -> None:
    from lrkit.study import range_test

    with pytest.raises(ConfigError, match=r"optimizer='muon' is invalid for a range test: it "
                                          r"has two base rates \(muon's and adamw's\)"):
        range_test(Digits(epochs=1), "muon", num_steps=5)
