"""What a study varies: schedules (presets or specs), optimizers with their base rates, seeds.

A :class:`RunConfig` is one run; it holds plain data only, so it travels to worker processes
and Ray workers as it is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from lrkit._validate import bad, check_int, check_number
from lrkit.errors import ConfigError

__all__ = [
    "CLASS_NAMES",
    "OPTIMIZERS",
    "PACKAGES",
    "PARTNERS",
    "PRESETS",
    "RunConfig",
    "ScheduleChoice",
    "base_rates",
    "build_schedule",
    "default_schedules",
    "make_optimizer",
    "optimizer_class",
    "partner_rates",
    "resolve_schedules",
    "set_determinism",
]

#: Optimizers of a study: name -> (default base rate, default weight decay). ``schedulefree``
#: (``AdamWScheduleFree``) and ``prodigy`` need their packages (:data:`PACKAGES`); Prodigy's
#: rate multiplies its own estimate ``d``, hence 1.0. ``muon`` is torch's ``Muon`` on the
#: hidden weight matrices (the rate before its shape adjustment) with AdamW, at ``adamw``'s
#: rate and decay (:data:`PARTNERS`), on every other parameter (:mod:`lrkit.study.muon`).
OPTIMIZERS: dict[str, tuple[float, float]] = {
    "sgd": (0.05, 5e-4),
    "adamw": (3e-3, 1e-2),
    "adam": (3e-3, 0.0),
    "nadam": (3e-3, 0.0),
    "radam": (3e-3, 0.0),
    "rmsprop": (1e-3, 0.0),
    "adagrad": (3e-2, 0.0),
    "adafactor": (1e-2, 0.0),
    "schedulefree": (3e-3, 0.0),
    "prodigy": (1.0, 0.0),
    "muon": (0.02, 0.1),
}

#: Study optimizers made of two: name -> the study optimizer whose base rate and weight decay
#: (given, the task's, else :data:`OPTIMIZERS`) train the parameters the first one does not.
PARTNERS: dict[str, str] = {"muon": "adamw"}

#: Third-party optimizers: name -> (module, class, pip package).
PACKAGES: dict[str, tuple[str, str, str]] = {
    "schedulefree": ("schedulefree", "AdamWScheduleFree", "schedulefree"),
    "prodigy": ("prodigyopt", "Prodigy", "prodigyopt"),
}

#: The optimizer class each study name builds (for :func:`lrkit.inspect.advice.advice_for`).
CLASS_NAMES: dict[str, str] = {
    "sgd": "SGD", "adamw": "AdamW", "adam": "Adam", "nadam": "NAdam", "radam": "RAdam",
    "rmsprop": "RMSprop", "adagrad": "Adagrad", "adafactor": "Adafactor",
    "schedulefree": "AdamWScheduleFree", "prodigy": "Prodigy", "muon": "Muon",
}


def optimizer_class(name: str) -> Any:
    """The optimizer class of a study name; a third-party package is imported here.

    Raises:
        ConfigError: an unknown name, or a third-party package that is not installed.
    """
    if name not in OPTIMIZERS:
        raise bad("optimizer", name, "one of " + ", ".join(OPTIMIZERS))
    if name in PACKAGES:
        import importlib

        module, cls, pip = PACKAGES[name]
        try:
            return getattr(importlib.import_module(module), cls)
        except ImportError:
            raise ConfigError(f"optimizer={name!r} needs the {pip!r} package: "
                              f"pip install {pip}") from None
    if name in PARTNERS:  # Muon and its partner, stepped as one optimizer
        if not hasattr(torch.optim, CLASS_NAMES[name]):
            raise ConfigError(f"optimizer={name!r} needs torch.optim.{CLASS_NAMES[name]} "
                              f"(torch >= 2.9; this is torch {torch.__version__})")
        from lrkit.torch.combined import CombinedOptimizer

        return CombinedOptimizer
    return getattr(torch.optim, CLASS_NAMES[name])


@dataclasses.dataclass(frozen=True)
class ScheduleChoice:
    """One schedule of a study: a spec string, or Segmenter's scheduler class.

    ``kind`` is ``"spec"`` (``spec`` is parsed by :func:`lrkit.spec.parse` with the run's
    steps as horizon) or ``"segmenter"`` (:class:`lrkit.compat.segmenter.PolynomialLR`,
    stepped with ``step_update(num_updates)`` as in Segmenter's training loop).
    """

    name: str
    spec: str
    kind: str = "spec"


def _presets(total: int, per_eval: int, higher_is_better: bool) -> dict[str, ScheduleChoice]:
    warm = max(1, round(0.1 * total))
    m1, m2 = round(0.5 * total), round(0.75 * total)
    mode = ", mode=max" if higher_is_better else ""
    specs = {
        "setr": f"poly(power=0.9, end=1e-4) over {total}",
        "poly-warmup": f"warmup({warm}) then poly(power=0.9) over {total}",
        "step": f"multistep(boundaries=[{m1}, {m2}], gamma=0.1)",
        "cosine-warmup": f"warmup({warm}) then cosine over {total}",
        "onecycle": f"onecycle over {total}",
        "plateau": f"plateau(factor=0.3, patience=0, every={per_eval}{mode})",
        "constant": "constant",
    }
    out = {k: ScheduleChoice(k, v) for k, v in specs.items()}
    out["segmenter"] = ScheduleChoice(
        "segmenter",
        f"segmenter({total}, power=0.9, end=1e-05)",
        kind="segmenter",
    )
    order = ("setr", "segmenter", "poly-warmup", "step", "cosine-warmup", "onecycle")
    return {k: out[k] for k in (*order, "plateau", "constant")}


#: The names of lrkit's built-in schedules, in report order.
PRESETS: tuple[str, ...] = tuple(_presets(100, 10, False))


def _task_schedules(task: Any, steps: int) -> dict[str, ScheduleChoice]:
    own = getattr(task, "schedules", None)
    if own:
        return {k: ScheduleChoice(k, v) for k, v in own.items()}
    return _presets(steps, task.eval_every, bool(task.higher_is_better))


def default_schedules(task: Any, steps: int | None = None) -> list[ScheduleChoice]:
    """The task's default schedules (its ``schedules`` attribute, else lrkit's presets) for
    a horizon of ``steps`` updates (default ``task.steps``)."""
    return list(_task_schedules(task, steps or task.steps).values())


def resolve_schedules(
    names: Sequence[str] | None, specs: Sequence[str], task: Any, steps: int | None = None
) -> list[ScheduleChoice]:
    """Named schedules (the task's or lrkit's presets) plus custom ``[label=]spec`` strings.

    With neither names nor specs, all default schedules. Raises :class:`ConfigError` for an
    unknown name or a repeated label, :class:`lrkit.errors.SpecError` for a bad spec.
    """
    steps = steps or task.steps
    presets = _task_schedules(task, steps)
    if getattr(task, "schedules", None):
        presets = {**_presets(steps, task.eval_every, bool(task.higher_is_better)), **presets}
    chosen: list[ScheduleChoice] = []
    for name in names or ([] if specs else list(_task_schedules(task, steps))):
        if name not in presets:
            raise bad("schedule", name, "one of " + ", ".join(presets))
        chosen.append(presets[name])
    for i, text in enumerate(specs):
        label, sep, spec = text.partition("=")
        if not sep or "(" in label or " " in label.strip():
            label, spec = f"custom{i + 1}", text
        chosen.append(ScheduleChoice(label.strip(), spec.strip()))
    seen: set[str] = set()
    for c in chosen:
        if c.name in seen:
            raise ConfigError(f"schedule label {c.name!r} is used twice: give each a new label")
        seen.add(c.name)
        if c.kind == "spec":
            build_schedule(c, steps)
    return chosen


def build_schedule(choice: ScheduleChoice, steps: int) -> Any:
    """The :class:`~lrkit.schedules.base.Schedule` of a spec choice.

    A spec with its own horizon (``onecycle over 100``, ``cosine(500)``) is taken as given;
    one without (``warmup(50) then cosine``) gets the whole run, ``steps``.
    """
    from lrkit.errors import SpecError
    from lrkit.spec import parse

    try:
        return parse(choice.spec)
    except SpecError:  # no horizon of its own: the run's (a bad spec fails here again)
        return parse(choice.spec, total_steps=steps)


def base_rates(task: Any, optimizers: Sequence[str],
               given: Mapping[str, float] | None = None) -> dict[str, tuple[float, float]]:
    """(base rate, weight decay) per optimizer: ``given`` rates, else the task's ``lrs`` /
    ``weight_decay``, else :data:`OPTIMIZERS`."""
    own_lr = dict(getattr(task, "lrs", None) or {})
    own_wd = dict(getattr(task, "weight_decay", None) or {})
    out = {}
    for o in optimizers:
        optimizer_class(o)  # an unknown name or a missing package fails before any run
        lr = (given or {}).get(o, own_lr.get(o, OPTIMIZERS[o][0]))
        wd = own_wd.get(o, OPTIMIZERS[o][1])
        out[o] = (check_number(f"lr[{o}]", lr, low=0, low_open=True),
                  check_number(f"weight_decay[{o}]", wd, low=0))
    return out


def partner_rates(task: Any, optimizers: Sequence[str],
                  given: Mapping[str, float] | None = None) -> dict[str, tuple[float, float]]:
    """(base rate, weight decay) of the partner (:data:`PARTNERS`) of each two-part optimizer
    of ``optimizers``: those of the partner's own name in :func:`base_rates`."""
    return {o: base_rates(task, [PARTNERS[o]], given)[PARTNERS[o]]
            for o in optimizers if o in PARTNERS}


def make_optimizer(
    name: str, params: Any, lr: float | None = None, weight_decay: float | None = None, *,
    model: torch.nn.Module | None = None, partner_lr: float | None = None,
    partner_weight_decay: float | None = None, muon_exclude: Sequence[str] | None = None,
) -> torch.optim.Optimizer:
    """The optimizer of a study name (:data:`OPTIMIZERS`) with the given base rate.

    ``sgd`` has momentum 0.9 (Nesterov off); the others keep their class's defaults apart from
    ``lr`` and ``weight_decay``. A schedule-free optimizer is returned in train mode (the
    runner calls ``optimizer.eval()`` around evaluations).

    ``muon`` needs the ``model``: a :class:`~lrkit.torch.CombinedOptimizer` of torch's Muon
    (``lr``, ``weight_decay``) on the model's hidden weight matrices and AdamW
    (``partner_lr``, ``partner_weight_decay``; default: ``adamw``'s in :data:`OPTIMIZERS`) on
    the other parameters; ``muon_exclude`` names what AdamW keeps besides the embeddings
    (:mod:`lrkit.study.muon`).
    """
    cls = optimizer_class(name)
    default_lr, default_wd = OPTIMIZERS[name]
    lr = default_lr if lr is None else check_number("lr", lr, low=0, low_open=True)
    wd = default_wd if weight_decay is None else check_number("weight_decay", weight_decay, low=0)
    if name in PARTNERS:
        return _make_two_part(name, params, lr, wd, model, partner_lr, partner_weight_decay,
                              muon_exclude)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=wd)
    opt: torch.optim.Optimizer = cls(params, lr=lr, weight_decay=wd)
    if callable(getattr(opt, "train", None)):
        opt.train()  # type: ignore[attr-defined]
    return opt


def _make_two_part(name: str, params: Any, lr: float, wd: float, model: Any,
                   partner_lr: float | None, partner_wd: float | None,
                   exclude: Sequence[str] | None) -> torch.optim.Optimizer:
    from lrkit.study.muon import make_muon

    if not isinstance(model, torch.nn.Module):
        raise bad("model", model, f"the task's torch.nn.Module with optimizer={name!r} (it "
                  "tells hidden matrices from embeddings and the output head)")
    p_lr, p_wd = OPTIMIZERS[PARTNERS[name]]
    p_lr = p_lr if partner_lr is None else check_number("partner_lr", partner_lr, low=0,
                                                        low_open=True)
    p_wd = p_wd if partner_wd is None else check_number("partner_weight_decay", partner_wd,
                                                        low=0)
    return make_muon(params, model, lr=lr, weight_decay=wd, adamw_lr=p_lr,
                     adamw_weight_decay=p_wd, exclude=exclude)


def set_determinism(threads: int) -> None:
    """Deterministic kernels and a fixed number of threads for every run."""
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(threads)


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """One run: schedule, optimizer (base rate, weight decay), seed, horizon, accumulation.

    ``partner_lr`` / ``partner_weight_decay``: for a two-part optimizer (:data:`PARTNERS`,
    ``muon``), the base rate and decay of the part that trains the other parameters
    (``None``: its defaults); ``None`` for the others.
    """

    schedule: ScheduleChoice
    optimizer: str
    lr: float
    seed: int
    steps: int
    weight_decay: float | None = None
    accumulate: int = 1
    partner_lr: float | None = None
    partner_weight_decay: float | None = None

    def __post_init__(self) -> None:
        check_int("steps", self.steps, low=1)
        check_int("accumulate", self.accumulate, low=1)
        check_int("seed", self.seed, low=0)
        if self.partner_lr is not None:
            check_number("partner_lr", self.partner_lr, low=0, low_open=True)
        if self.partner_weight_decay is not None:
            check_number("partner_weight_decay", self.partner_weight_decay, low=0)

    @property
    def label(self) -> str:
        return f"{self.schedule.name} / {self.optimizer} / seed {self.seed}"

    def key(self) -> dict[str, Any]:
        """What a checkpoint must match to be resumed by this run."""
        c = self.schedule
        key = {"schedule": [c.name, c.spec, c.kind], "optimizer": self.optimizer,
               "lr": self.lr, "weight_decay": self.weight_decay, "seed": self.seed,
               "steps": self.steps, "accumulate": self.accumulate}
        if self.partner_lr is not None or self.partner_weight_decay is not None:
            key["partner"] = [self.partner_lr, self.partner_weight_decay]
        return key

    def partner(self) -> dict[str, Any] | None:
        """The run file's ``optimizer.partner``: name, ``base_lr``, ``weight_decay`` (as
        given; ``None``: the defaults); ``None`` when the optimizer has no partner."""
        if self.optimizer not in PARTNERS:
            return None
        return {"name": PARTNERS[self.optimizer], "base_lr": self.partner_lr,
                "weight_decay": self.partner_weight_decay}
