"""Syntax tree to raw form: what the builder takes, with the column of every value.

Type hints decide what a bare name means (a schedule where only a schedule fits, else a
string) and which field a positional argument fills.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from lrkit.errors import SpecError
from lrkit.spec import _registry as reg
from lrkit.spec._build import Budget, Chain, Fail, Over, _elem_hint
from lrkit.spec._parse import (
    _LITERALS,
    UNITS,
    Arg,
    Call,
    ChainNode,
    ListNode,
    Lit,
    MulNode,
    Node,
    OverNode,
    _fail,
    tokenize,
)

__all__ = ["Converter", "unit_string"]


def _show(node: Node) -> str:
    if isinstance(node, Lit):
        if node.kind == "pct":
            return f"percentage {node.text}"
        if node.kind == "unit":
            return f"'{node.text} {node.value[1]}'"
        kind = {"rel": "relative value", "word": "name"}.get(node.kind, node.kind)
        text = f"{node.value!r}" if node.kind != "rel" else f"{node.value!r}x"
        return f"{kind} {text}"
    return "a list" if isinstance(node, ListNode) else "an expression"


def _schedule_like(node: Node) -> bool:
    if isinstance(node, (Call, ChainNode, MulNode, OverNode)):
        return True
    if isinstance(node, ListNode):
        return bool(node.items) and all(_schedule_like(n) for n in node.items)
    return False


class Converter:
    """Syntax tree to raw form; ``cols`` maps ``(id(raw mapping), field)`` to a column."""

    def __init__(self, total: float | None = None, steps_per_epoch: float | None = None) -> None:
        self.cols: dict[tuple[int, str | None], int] = {}
        self.keep: list[Any] = []  # keeps raw nodes alive, so their ids stay unique
        #: the total that percentages are of: the innermost 'over N', else the parser's
        self.total = total
        self.steps_per_epoch = steps_per_epoch

    def mark(self, raw: Any, field: str | None, col: int) -> None:
        self.keep.append(raw)
        self.cols[(id(raw), field)] = col

    def column(self, node: Any, field: str | None) -> int | None:
        return self.cols.get((id(node), field), self.cols.get((id(node), None)))

    def schedule(self, node: Node) -> Any:
        if isinstance(node, Call):
            return self.call(node)
        if isinstance(node, Lit) and node.kind == "word":
            if node.value in _LITERALS:
                raise _fail(node.col, f"expected a schedule, got {node.value!r}")
            return self.call(Call(node.col, node.value, ()))
        if isinstance(node, ChainNode):
            for p in node.pieces:
                if isinstance(p, (Lit, ListNode)) and not (
                    p.kind == "word" if isinstance(p, Lit) else False
                ):
                    raise _fail(
                        p.col, f"'then' joins schedules: expected a schedule, got {_show(p)}"
                    )
            chain = Chain([self.schedule(p) for p in node.pieces])
            self.mark(chain, None, node.col)
            return chain
        if isinstance(node, OverNode):
            total = self.steps(node.total, "over")
            outer, self.total = self.total, total
            try:
                over = Over(self.schedule(node.node), total)
            finally:
                self.total = outer
            self.mark(over, None, node.col)
            return over
        if isinstance(node, MulNode):
            return self.product(node)
        raise _fail(node.col, f"expected a schedule, got {_show(node)}")

    def product(self, node: MulNode) -> Any:
        acc: Any = None
        acc_col = node.col
        flat = False  # acc is a product made here, so further schedules extend it
        for f in node.factors:
            item: Any = f.value if isinstance(f, Lit) and f.kind == "number" else None
            if item is None:
                item = self.schedule(f)
            if acc is None:
                acc, acc_col = item, f.col
                continue
            a_num, b_num = (
                not isinstance(acc, (dict, Chain, Over)),
                not isinstance(item, (dict, Chain, Over)),
            )
            if a_num and b_num:
                raise _fail(f.col, "expected a schedule on one side of '*', got two numbers")
            if a_num or b_num:
                sched, num = (item, acc) if a_num else (acc, item)
                acc, flat = {"kind": "scale", "schedule": sched, "factor": num}, False
                self.mark(acc, "factor", f.col if b_num else acc_col)
            elif flat:
                acc["schedules"].append(item)
            else:
                acc, flat = {"kind": "product", "schedules": [acc, item]}, True
            self.mark(acc, None, node.col)
        if not isinstance(acc, (dict, Chain, Over)):
            raise _fail(node.col, "expected a schedule on one side of '*'")
        return acc

    def call(self, node: Call) -> dict[str, Any]:
        ki = reg.info(node.name)
        if ki is None:
            raise _fail(
                node.col,
                f"unknown schedule {node.name!r}{reg.suggest(node.name, reg.names())}"
                f"; expected one of {', '.join(reg.names())}",
            )
        out: dict[str, Any] = {"kind": ki.kind}
        self.mark(out, None, node.col)
        sched_slots = list(ki.schedule_fields)
        other_slots = list(ki.positional)
        keywords = False
        named: dict[str, Arg] = {}
        for arg in node.args:
            if arg.key is None:
                if keywords:
                    raise _fail(
                        arg.col, f"positional argument after keyword arguments in {ki.kind}(...)"
                    )
                like = _schedule_like(arg.value) or self._names_schedule(
                    arg.value, ki, sched_slots, other_slots
                )
                slots = sched_slots if like else other_slots
                if not slots:
                    kind = "schedule" if slots is sched_slots else "value"
                    raise _fail(
                        arg.col,
                        f"too many {kind} arguments for {ki.kind}(...): expected"
                        f" {reg.signature(ki.kind)}",
                    )
                name = slots.pop(0)
            else:
                keywords = True
                name = arg.key
                if ki.field(name) is None:
                    known = [f.name for f in ki.fields]
                    raise _fail(
                        arg.col,
                        f"unknown argument {name!r} for {ki.kind}{reg.suggest(name, known)}"
                        f"; expected one of {', '.join(known)}",
                    )
            if name in out or name in named:
                raise _fail(arg.col, f"argument {name!r} of {ki.kind}(...) given twice")
            named[name] = arg
        # percentages are of the call's own total_steps where it gives one (wsd(1000,
        # warmup_steps=10%)), else of the innermost 'over N' / the parser's total
        own = named.get("total_steps")
        outer = self.total
        if own is not None and isinstance(own.value, Lit) and own.value.kind in ("number", "unit"):
            self.total = self.steps(own.value, "total_steps")
        try:
            for name, arg in named.items():
                out[name] = self.value(arg.value, ki.hints[name], name)
                self.mark(out, name, arg.value.col)
        finally:
            self.total = outer
        return out

    @staticmethod
    def _names_schedule(
        node: Node, ki: reg.KindInfo, sched_slots: list[str], other_slots: list[str]
    ) -> bool:
        """A bare name of a kind fills a schedule field when the next value field cannot take
        a string (``clamp(poly, 0.1)``); otherwise bare names are strings."""
        if not (isinstance(node, Lit) and node.kind == "word" and sched_slots):
            return False
        if node.value in _LITERALS or reg.info(node.value) is None:
            return False
        return not other_slots or not _takes_str(ki.hints[other_slots[0]])

    def steps(self, node: Lit, field: str) -> float:
        """A step count written with a unit (``10%``, ``2 epochs``, ``0.5 steps``) or bare."""
        if node.kind == "pct":
            if field == "over":
                raise _fail(node.col, "'over' takes steps or epochs ('over 10 epochs'), not"
                            f" a percentage: got {node.text}")
            return self.percent(node, field)
        if node.kind == "unit":
            number, unit = node.value
            if unit == "steps":
                return number  # type: ignore[no-any-return]
            spe = self.steps_per_epoch
            if spe is None:
                raise _fail(
                    node.col,
                    f"'{node.text} {unit}' needs the optimizer steps per epoch: pass"
                    " steps_per_epoch= (Python) or --steps-per-epoch S (command line)",
                )
            return _exact(Fraction(node.text) * Fraction(spe))
        number = node.value
        if not isinstance(number, bool) and isinstance(number, (int, float)) and 0 < number < 1:
            if field == "over":
                raise _fail(
                    node.col,
                    f"'over {node.text}' is less than one step: expected a total of steps"
                    f" ('over 1000', 'over 10 epochs'), or 'over {node.text} steps' if meant",
                )
            raise _fail(
                node.col,
                f"{field}={node.text} is less than one step: for a fraction of the total write"
                f" a percentage, e.g. {_pct_hint(node.text)}; for a fraction of one step write"
                f" '{node.text} steps'",
            )
        return number  # type: ignore[no-any-return]

    def percent(self, node: Lit, field: str) -> int:
        """``p%`` of the total, rounded up to whole steps (as HF's ``warmup_ratio``)."""
        p = Fraction(node.text.rstrip("%"))
        if not 0 <= p <= 100:
            raise _fail(node.col, f"{field}={node.text} is invalid: expected a percentage"
                        " between 0% and 100% of the total")
        if self.total is None:
            raise _fail(
                node.col,
                f"{field}={node.text} is a percentage of the total steps, but no total was given:"
                " add 'over N' (or pass total_steps=, or --steps N on the command line)",
            )
        return math.ceil(p * Fraction(self.total) / 100)

    def value(self, node: Node, hint: Any, field: str = "", item: bool = False) -> Any:
        if isinstance(node, Lit):
            if node.kind in ("pct", "unit") and field not in reg.STEP_FIELDS:
                raise _fail(
                    node.col,
                    f"{_show(node)} is a number of steps, but {field or 'this value'} is not"
                    " a step count; units (%, steps, epochs) are for "
                    + ", ".join(sorted(reg.STEP_FIELDS)),
                )
            if node.kind in ("pct", "unit") or (
                node.kind == "number" and field in _SCALAR_STEPS and not item
            ):
                return self.steps(node, field)
            if node.kind == "rel":
                return {"rel": node.value}
            if node.kind != "word":
                return node.value
            if node.value in _LITERALS:
                return _LITERALS[node.value]
            if reg.mentions_schedule(hint) and not _takes_str(hint):
                return self.schedule(node)
            return node.value
        if isinstance(node, ListNode):
            # list items take units but may be fractions (piecewise steps, boundaries)
            return [self.value(n, _elem_hint(hint, i), field, True)
                    for i, n in enumerate(node.items)]
        return self.schedule(node)


#: scalar step-count fields, where a bare number below 1 is refused (``warmup(0.1)`` is
#: almost always meant as a ratio)
_SCALAR_STEPS = reg.STEP_FIELDS - {"boundaries"}


def _exact(x: Fraction) -> float:
    """A step count as an int where whole, else the nearest float."""
    return int(x) if x.denominator == 1 else float(x)


def _pct_hint(text: str) -> str:
    try:
        pct = Fraction(text) * 100
    except (ValueError, ZeroDivisionError):  # pragma: no cover - the tokenizer's numbers
        return "10%"
    return f"{_exact(pct)}%"


def _takes_str(hint: Any) -> bool:
    if hint is str or hint is Any:
        return True
    return any(_takes_str(a) for a in typing.get_args(hint))


def unit_string(raw: str, path: str, budget: Budget, node: Any, field: str) -> Any:
    """A step count written with a unit in a dict (``"10%"``, ``"2 epochs"``, ``"5 steps"``),
    resolved as in spec strings: a percentage of the mapping's own ``total_steps`` where it
    gives a number, else of the parser's total; epochs with ``steps_per_epoch``."""
    try:
        toks = tokenize(raw.strip())
    except SpecError:
        return raw
    kinds = [t.kind for t in toks]
    if kinds == ["pct", "eof"]:
        lit = Lit(1, "pct", toks[0].value, toks[0].text)
    elif kinds == ["number", "name", "eof"] and toks[1].text in UNITS:
        lit = Lit(1, "unit", (toks[0].value, UNITS[toks[1].text]), toks[0].text)
    else:
        return raw
    own = node.get("total_steps") if isinstance(node, Mapping) else None
    own_total = isinstance(own, (int, float)) and not isinstance(own, bool)
    total = own if own_total and field != "total_steps" else budget.total
    try:
        return Converter(total, budget.steps_per_epoch).steps(lit, field)
    except SpecError as exc:
        message = str(exc).split(": ", 1)[-1]  # drop the column: a dict has a key path
        raise Fail(path, message, node, field) from None
