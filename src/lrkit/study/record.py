"""What one run measured, and the run file (``runs/<id>.json``) that holds it.

The file format is documented in ``docs/run_format.md``: per update the rate used and the
training loss, the effective-rate band for Adam-type optimizers, the task's metrics at each
evaluation, and the per-layer fields every few updates (``layers``). It is the only
contract between studies and the loss-curve laws.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from pathlib import Path
from typing import Any

from lrkit.errors import StateError
from lrkit.study.config import RunConfig

__all__ = ["RUN_FORMAT", "RUN_VERSION", "RunResult", "load_run", "run_id"]

RUN_FORMAT = "lrkit.run"
RUN_VERSION = 1


def run_id(index: int, cfg: RunConfig) -> str:
    """``r007-cosine-warmup-adamw-s1``: unique in a study (``index``), file-name safe."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{cfg.schedule.name}-{cfg.optimizer}").strip("-")
    return f"r{index:03d}-{slug[:60]}-s{cfg.seed}"


@dataclasses.dataclass
class RunResult:
    """Everything a run measured. ``status`` is ``finished``, ``diverged`` or ``failed``."""

    config: RunConfig
    task: dict[str, Any] = dataclasses.field(default_factory=dict)
    lr: list[float] = dataclasses.field(default_factory=list)
    train_loss: list[float] = dataclasses.field(default_factory=list)
    band: dict[str, list[float]] | None = None
    evals: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    logs: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    status: str = "finished"
    error: str | None = None
    wall_time_s: float = 0.0
    id: str = ""
    layers: dict[str, Any] | None = None

    @property
    def diverged(self) -> bool:
        return self.status == "diverged"

    @property
    def final(self) -> dict[str, float]:
        """The metrics of the last evaluation (empty when there was none)."""
        steps = self.evals.get("step", [])
        if not steps:
            return {}
        return {k: v[-1] for k, v in self.evals.items() if k != "step" and v}

    def value(self, metric: str) -> float:
        """``final[metric]``; NaN for a diverged or failed run or a missing metric."""
        if self.status != "finished":
            return math.nan
        return float(self.final.get(metric, math.nan))

    def to_dict(self) -> dict[str, Any]:
        """The run file's object (see the module doc)."""
        c = self.config
        return {
            "format": RUN_FORMAT, "version": RUN_VERSION, "id": self.id,
            "task": self.task,
            "schedule": {"name": c.schedule.name, "spec": c.schedule.spec,
                         "kind": c.schedule.kind},
            "optimizer": {"name": c.optimizer, "base_lr": c.lr,
                          "weight_decay": c.weight_decay,
                          **({"partner": c.partner()} if c.partner() else {})},
            "seed": c.seed, "steps": c.steps, "accumulate": c.accumulate,
            "status": self.status, "error": self.error,
            "updates": {"lr": self.lr, "train_loss": self.train_loss},
            "effective_lr": self.band,
            "evals": self.evals,
            "logs": self.logs,
            "final": self.final,
            "wall_time_s": self.wall_time_s,
            **({"layers": self.layers} if self.layers is not None else {}),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunResult:
        from lrkit.study.config import ScheduleChoice

        s, o = d["schedule"], d["optimizer"]
        partner = o.get("partner") or {}
        cfg = RunConfig(ScheduleChoice(s["name"], s["spec"], s["kind"]), o["name"],
                        float(o["base_lr"]), int(d["seed"]), int(d["steps"]),
                        o.get("weight_decay"), int(d.get("accumulate", 1)),
                        partner.get("base_lr"), partner.get("weight_decay"))
        return cls(cfg, dict(d.get("task") or {}), list(d["updates"]["lr"]),
                   list(d["updates"]["train_loss"]), d.get("effective_lr"),
                   {k: list(v) for k, v in d["evals"].items()},
                   {k: list(v) for k, v in (d.get("logs") or {}).items()},
                   d["status"], d.get("error"), float(d.get("wall_time_s", 0.0)), d["id"],
                   d.get("layers"))

    def write(self, folder: str | os.PathLike[str]) -> Path:
        """Write ``folder/<id>.json``; return its path."""
        path = Path(folder) / f"{self.id}.json"
        path.write_text(json.dumps(self.to_dict(), allow_nan=True) + "\n")
        return path


def load_run(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a run file and check its header; returns the dict of ``docs/run_format.md``.

    Raises:
        StateError: not a run file of this format and version.
    """
    try:
        d = json.loads(Path(path).read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise StateError(f"run file={str(path)!r} is invalid: {exc}") from None
    if not isinstance(d, dict) or d.get("format") != RUN_FORMAT:
        raise StateError(f"run file={str(path)!r} is invalid: expected format {RUN_FORMAT!r}")
    if d.get("version") != RUN_VERSION:
        raise StateError(f"run file['version']={d.get('version')!r} is invalid: expected "
                         f"{RUN_VERSION}")
    return d
