"""States written by released formats (fixtures under tests/torch/fixtures) still load.

The fixtures were written by ``fixtures/make_state_fixtures.py`` with format versions 1 and
2; a later format must keep reading them. Expected rates are typed formulas, not saved outputs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from lrkit import Constant, Linear, StateError
from lrkit.torch import LRScheduler

FIXTURES = Path(__file__).parent / "fixtures"
sys.path.insert(0, str(FIXTURES))
import make_state_fixtures as make  # noqa: E402

sys.path.remove(str(FIXTURES))


def _poly_warmup(t: int, base: float) -> float:
    """Warmup 7 steps (linear from 0) then poly(23, power 0.9) from base to 0.1 base."""
    if t < 7:
        return base * t / 7
    u = min(t - 7, 23) / 23
    end = 0.1 * base
    return end + (base - end) * (1 - u) ** 0.9


def _load(name: str) -> dict[str, Any]:
    state: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return state


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("source", ["json", "pt"])
def test_plain_state_loads_and_continues(source: str, version: int) -> None:
    if source == "json":
        state = _load(f"state_v{version}_plain.json")
    else:
        state = torch.load(FIXTURES / f"state_v{version}_plain.pt", weights_only=True)
    assert state["version"] == version
    opt, sched = make.plain()
    sched.load_state_dict(state)
    assert sched.last_epoch == 17
    for t in range(17, 35):
        for g, base in zip(opt.param_groups, (0.1, 0.01), strict=True):
            assert g["lr"] == pytest.approx(_poly_warmup(t, base), rel=1e-12, abs=1e-15)
            assert g["momentum"] == pytest.approx(0.95 - 0.1 * min(t, 30) / 30, rel=1e-12)
        sched.step()


@pytest.mark.parametrize("version", [1, 2])
def test_plateau_state_loads_with_its_reductions(version: int) -> None:
    opt, sched = make.plateau()
    sched.load_state_dict(_load(f"state_v{version}_plateau.json"))
    assert sched.last_epoch == 20

    def inner(t: int) -> float:  # warmup 5 then linear(40) from 0.01 to 0.005
        return 0.01 * t / 5 if t < 5 else 0.01 * (1 - 0.5 * min(t - 5, 40) / 40)

    assert opt.param_groups[0]["lr"] == pytest.approx(0.5 * inner(20), rel=1e-12)
    # the plateau reduced at step 20: the last update (step 19) was not reduced. Version 1
    # did not save that (it is read as reduced, what version-1 code reported)
    last = inner(19) if version == 2 else 0.5 * inner(19)
    assert sched.get_last_lr() == [pytest.approx(last, rel=1e-12)]
    # best so far 0.9 (saved); 0.5 at step 25 improves; then two bad metrics (patience 1)
    for t, metric in ((25, 0.5), (30, 0.6), (35, 0.7)):
        for _ in range(4):
            sched.step()
        sched.step(metric)
        assert sched.last_epoch == t
    assert opt.param_groups[0]["lr"] == pytest.approx(0.25 * inner(35), rel=1e-12)


def test_v1_state_from_another_configuration_is_refused_or_kept() -> None:
    state = _load("state_v1_plain.json")
    opt = torch.optim.SGD([{"params": [torch.zeros(2, requires_grad=True)], "lr": 0.1},
                           {"params": [torch.zeros(3, requires_grad=True)], "lr": 0.01}],
                          momentum=0.9)
    with pytest.raises(StateError, match=r"does not fit this scheduler: .*on_mismatch"):
        LRScheduler(opt, Linear(50), momentum=Constant(0.9)).load_state_dict(state)
    keep = LRScheduler(opt, Linear(50), momentum=Constant(0.9), on_mismatch="keep_new")
    keep.load_state_dict(state)
    assert keep.last_epoch == 17
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * (1 - 17 / 50), rel=1e-12)
    # a plateau state into a scheduler without a plateau: mismatch too
    with pytest.raises(StateError, match="does not fit"):
        make.plain()[1].load_state_dict(_load("state_v1_plateau.json"))


@pytest.mark.parametrize(("edit", "match"), [
    ({"version": 3}, r"state_dict\['version'\]=3 is invalid: expected one of 1, 2"),
    ({"version": None}, r"version"),
    ({"format": "torch"}, r"state_dict\['format'\]='torch' is invalid"),
])
def test_unknown_versions_and_formats_are_refused(edit: dict[str, Any], match: str) -> None:
    state = {**_load("state_v1_plain.json"), **edit}
    with pytest.raises(StateError, match=match):
        make.plain()[1].load_state_dict(state)
