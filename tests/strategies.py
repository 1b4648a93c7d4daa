"""Shared hypothesis strategies: configured schedules with the bounds their values obey."""

from __future__ import annotations

import dataclasses
import math
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from hypothesis import strategies as st

from lrkit.schedules import (
    WSD,
    Constant,
    Cosine,
    CosineRestarts,
    Cyclic,
    Exponential,
    InverseSqrt,
    Linear,
    MultiStep,
    OneCycle,
    OneCycleMomentum,
    Piecewise,
    Poly,
    Rel,
    Schedule,
    SqrtDecay,
    StepDecay,
    Warmup,
)

#: absolute rate-like values (0 included; spans several orders of magnitude)
values = st.one_of(
    st.just(0.0),
    st.floats(1e-6, 10.0, allow_nan=False, allow_infinity=False),
)
positive = st.floats(1e-6, 10.0, allow_nan=False, allow_infinity=False)
lengths = st.one_of(
    st.integers(1, 5000).map(float),
    st.floats(0.5, 5000.0, allow_nan=False, allow_infinity=False),
)
gammas = st.floats(0.0, 1.0, allow_nan=False)
#: a value that may be relative (bound with the base the tests use, see `BASE`)
maybe_rel = st.one_of(values, st.floats(0.0, 2.0).map(Rel))

BASE = 0.5


def bound(v: float | Rel) -> float:
    """A value as it is after ``bind(BASE)``."""
    return v.factor * BASE if isinstance(v, Rel) else v


@dataclasses.dataclass(frozen=True)
class Case:
    """A schedule, the interval its values stay in, and its documented monotonicity."""

    schedule: Schedule
    low: float
    high: float
    monotone: str | None = None  # "dec" / "inc" / None

    def __repr__(self) -> str:
        return f"Case({self.schedule!r})"


def _case(s: Schedule, *vals: float | Rel, monotone: str | None = None) -> Case:
    b = [bound(v) for v in vals]
    return Case(s, min(b), max(b), monotone)


def _dec(peak: float | Rel, end: float | Rel) -> str | None:
    return "dec" if bound(peak) >= bound(end) else "inc"


@st.composite
def cosine(draw: st.DrawFn) -> Case:
    peak, end = draw(maybe_rel), draw(maybe_rel)
    return _case(Cosine(draw(lengths), peak, end), peak, end, monotone=_dec(peak, end))


@st.composite
def poly(draw: st.DrawFn) -> Case:
    peak, end = draw(maybe_rel), draw(maybe_rel)
    power = draw(st.floats(0.1, 5.0))
    return _case(Poly(draw(lengths), power, peak, end), peak, end, monotone=_dec(peak, end))


@st.composite
def linear(draw: st.DrawFn) -> Case:
    a, b = draw(maybe_rel), draw(maybe_rel)
    return _case(Linear(draw(lengths), a, b), a, b, monotone=_dec(a, b))


@st.composite
def restarts(draw: st.DrawFn) -> Case:
    peak, end = draw(values), draw(values)
    s = CosineRestarts(
        period=draw(lengths),
        period_mult=draw(st.one_of(st.just(1.0), st.just(2.0), st.floats(1.0, 3.0))),
        peak=peak,
        end=end,
        peak_decay=draw(st.floats(0.0, 1.0)),
        max_cycles=draw(st.one_of(st.none(), st.integers(1, 6))),
    )
    return _case(s, peak, end)


@st.composite
def exponential(draw: st.DrawFn) -> Case:
    peak = draw(values)
    grow = draw(st.booleans())
    if grow:
        gamma = draw(st.floats(1.0, 2.0))
        end = draw(values)
        s = Exponential(gamma, peak, period=draw(lengths), staircase=draw(st.booleans()), end=end)
        return _case(s, peak, end, monotone="inc" if end >= peak else None)
    gamma = draw(gammas)
    floor = draw(st.one_of(st.none(), values))
    s = Exponential(
        gamma,
        peak,
        period=draw(lengths),
        staircase=draw(st.booleans()),
        total_steps=draw(st.one_of(st.none(), lengths)),
        end=floor,
    )
    lo = 0.0 if floor is None else min(floor, peak)
    hi = peak if floor is None else max(floor, peak)
    return Case(s, lo, hi, "dec" if floor is None or floor <= peak else None)


@st.composite
def step(draw: st.DrawFn) -> Case:
    peak, gamma = draw(values), draw(gammas)
    return Case(StepDecay(draw(lengths), gamma, peak), 0.0, peak, "dec")


@st.composite
def multistep(draw: st.DrawFn) -> Case:
    peak, gamma = draw(values), draw(gammas)
    ms = tuple(sorted(draw(st.lists(st.integers(0, 5000).map(float), max_size=6))))
    return Case(MultiStep(ms, gamma, peak), 0.0, peak, "dec")


@st.composite
def piecewise(draw: st.DrawFn) -> Case:
    n = draw(st.integers(1, 6))
    steps = tuple(sorted(draw(st.lists(st.integers(0, 3000).map(float), min_size=n, max_size=n))))
    vals = tuple(draw(st.lists(maybe_rel, min_size=n, max_size=n)))
    interp = draw(st.sampled_from(("linear", "constant")))
    return _case(Piecewise(steps, vals, interp), *vals)


@st.composite
def inverse_sqrt(draw: st.DrawFn) -> Case:
    peak = draw(maybe_rel)
    return Case(InverseSqrt(draw(lengths), peak), 0.0, bound(peak), "dec")


@st.composite
def cyclic(draw: st.DrawFn) -> Case:
    low, high = draw(values), draw(values)
    s = Cyclic(
        low,
        high,
        step_size_up=draw(st.floats(1.0, 500.0)),
        step_size_down=draw(st.one_of(st.none(), st.floats(1.0, 500.0))),
        mode=draw(st.sampled_from(("triangular", "triangular2", "exp_range"))),
        gamma=draw(st.floats(0.9, 1.0)),
    )
    return _case(s, low, high)


@st.composite
def onecycle(draw: st.DrawFn) -> Case:
    total = float(draw(st.integers(10, 5000)))
    three = draw(st.booleans())
    pct = draw(st.floats(0.05, 0.45 if three else 0.95))
    if pct * total <= 1.5:
        pct = 2.0 / total
    peak = draw(maybe_rel)
    div, fdiv = draw(st.floats(1.0, 100.0)), draw(st.floats(1.0, 1e4))
    anneal = draw(st.sampled_from(("cos", "linear")))
    if draw(st.booleans()):
        s: Schedule = OneCycle(total, peak, pct, div, fdiv, anneal, three)
        return Case(s, bound(peak) / div / fdiv, bound(peak))
    lo, hi = sorted((draw(values), draw(values)))
    return Case(OneCycleMomentum(total, pct, lo, hi, anneal, three), lo, hi)


@st.composite
def wsd(draw: st.DrawFn) -> Case:
    total = draw(st.floats(10.0, 5000.0))
    warm = draw(st.floats(0.0, total / 3))
    decay = draw(st.floats(1.0, total / 2))
    peak, end, start = draw(maybe_rel), draw(maybe_rel), draw(maybe_rel)
    shape = draw(st.sampled_from(("linear", "cosine", "1-sqrt")))
    s = WSD(total, warm, decay_steps=decay, peak=peak, end=end, decay_shape=shape, start=start)
    return _case(s, peak, end, start)


@st.composite
def sqrt_decay(draw: st.DrawFn) -> Case:
    peak, end = draw(maybe_rel), draw(maybe_rel)
    return _case(SqrtDecay(draw(lengths), peak, end), peak, end, monotone=_dec(peak, end))


@st.composite
def warmup(draw: st.DrawFn) -> Case:
    inner = draw(st.one_of(cosine(), poly(), linear(), inverse_sqrt()))
    start = draw(values)
    shape = draw(st.sampled_from(("linear", "cosine", "constant", "exponential")))
    if shape == "exponential" and start == 0.0:
        start = 1e-3
    s = Warmup(
        inner.schedule, draw(lengths), start, shape, draw(st.sampled_from(("prefix", "overlap")))
    )
    return Case(s, min(start, inner.low), max(start, inner.high))


@st.composite
def constant(draw: st.DrawFn) -> Case:
    v = draw(maybe_rel)
    return _case(Constant(v), v, monotone="dec")


#: every schedule family
cases = st.one_of(
    constant(),
    linear(),
    poly(),
    cosine(),
    restarts(),
    exponential(),
    step(),
    multistep(),
    piecewise(),
    inverse_sqrt(),
    cyclic(),
    onecycle(),
    wsd(),
    sqrt_decay(),
    warmup(),
)


@st.composite
def step_arrays(draw: st.DrawFn, horizon: float | None = None) -> np.ndarray:
    """Steps: integers, fractions, and a few far past any horizon."""
    ints = draw(st.lists(st.integers(0, 20000), min_size=1, max_size=40))
    fracs = draw(st.lists(st.floats(0.0, 20000.0), max_size=20))
    far = draw(st.lists(st.floats(0.0, 1e12), max_size=3))
    return np.asarray(sorted([*ints, *fracs, *far]), dtype=np.float64)


# -- hostile inputs (tests/test_hostile_*.py) --------------------------------------------------
#: values that break naive arithmetic: extremes, NaN/inf, huge ints, wrong types, containers
HOSTILE_SCALARS: list[object] = [
    0, 1, -1, 0.5, 2, 3, 7, 10, 100, 0.9, 0.1, 1e-8, 1000.0, 1e20,
    1e308, -1e308, 5e-324, 1e-320, math.nan, math.inf, -math.inf,
    10**400, -(10**400), 2**63, 2**64, True, False, None, 1j, complex(math.nan, 0),
    "x", "cosine", "linear", "nan", "1e308", "", b"1", (), (1.0,), (0.0, 1.0), (1.0, 0.0, 2.0),
    [1, 2], {"a": 1}, np.float64(0.5), np.int64(7), np.float32(math.nan), np.array([1.0, 2.0]),
    Rel(0.5), Rel(1e308), Rel(5e-324),
]
hostile_scalars = st.sampled_from(HOSTILE_SCALARS)


def _json_leaf() -> st.SearchStrategy[object]:
    return st.one_of(
        st.none(), st.booleans(), st.integers(-(10**30), 10**30),
        st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
        st.sampled_from(["poly", "cosine", "warmup", "join", "plateau", "repeat", "constant",
                         "total_steps", "schedule", "schedules", "rel", "kind", "1e308"]),
    )


#: JSON-like trees, biased towards the keys and kinds of the dict form
json_trees = st.recursive(
    _json_leaf(),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.sampled_from(["kind", "total_steps", "peak", "end", "power", "schedule",
                             "schedules", "boundaries", "steps", "rel", "factor", "period",
                             "value", "gamma", "x"]),
            children, max_size=5),
    ),
    max_leaves=20,
)


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Fail (instead of hanging) if the block runs longer than ``seconds`` (SIGALRM)."""

    def fail(*_: Any) -> None:
        raise TimeoutError(f"took more than {seconds} s")

    old = signal.signal(signal.SIGALRM, fail)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def json_paths(d: Any, pre: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every key/index path into a JSON-like tree of dicts and lists (parents first)."""
    if isinstance(d, dict):
        for k, v in d.items():
            yield (*pre, k)
            yield from json_paths(v, (*pre, k))
    elif isinstance(d, list):
        for i, v in enumerate(d):
            yield (*pre, i)
            yield from json_paths(v, (*pre, i))


def corrupt_tree(tree: Any, data: st.DataObject, values: list[object],
                 max_edits: int) -> Any:
    """A deep copy of a JSON-like ``tree`` with 1 to ``max_edits`` hostile edits at drawn
    paths: a value replaced by one of ``values``, a key or item deleted, or a subtree
    replaced by a random JSON tree."""
    import copy

    tree = copy.deepcopy(tree)
    for _ in range(data.draw(st.integers(1, max_edits))):
        paths = list(json_paths(tree))
        if not paths:
            break
        path = data.draw(st.sampled_from(paths))
        target = tree
        for k in path[:-1]:
            target = target[k]
        how = data.draw(st.sampled_from(["value", "delete", "tree"]))
        if how == "delete":
            del target[path[-1]]
        else:
            new = data.draw(st.sampled_from(values) if how == "value" else json_trees)
            target[path[-1]] = copy.deepcopy(new)
    return tree
