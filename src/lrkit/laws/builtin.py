"""A published law and synthetic runs drawn from it, to try the commands without data.

``luo2025-400m`` is the multi-power law Luo et al. (2025) report for their 400M-parameter
model (peak rate 3e-4, warmup 2160 updates, fitted on 24000-update runs; the authors'
repository lists the parameters). ``synthetic:SHAPE`` runs follow it plus 0.3 % noise.
"""

from __future__ import annotations

from lrkit.laws.fit import LawFit
from lrkit.laws.run import LawError, Run

__all__ = ["BUILTIN_LAWS", "SYNTHETIC_SHAPES", "builtin_law", "synthetic"]

#: Luo et al. 2025, 400M model (L0, A, alpha, B, C, beta, gamma)
LUO_400M = {"L0": 2.375, "A": 0.654, "alpha": 0.429, "B": 523.425, "C": 2.025,
            "beta": 0.594, "gamma": 0.635}
PEAK, WARMUP, HORIZON = 3e-4, 2160, 24000
BUILTIN_LAWS = ("luo2025-400m",)
SYNTHETIC_SHAPES = {
    "const": "warmup({w}) then const",
    "cos": "warmup({w}) then cosine(end=0.1x)",
    "wsd": "wsd({n}, warmup_steps={w}, decay_fraction=0.2, end=0.1x)",
    "linear": "warmup({w}) then linear(end=0)",
}


def builtin_law(name: str) -> LawFit:
    """The built-in law ``name`` as a fit (no bootstrap samples, no standard errors)."""
    if name not in BUILTIN_LAWS:
        raise LawError(f"law={name!r} is invalid: expected a law.json or one of "
                       f"{', '.join(BUILTIN_LAWS)}")
    nan = float("nan")
    return LawFit(law="multi-power", params=dict(LUO_400M), unit=PEAK, warmup=WARMUP,
                  stderr={k: nan for k in LUO_400M}, identified=True, unidentified=[],
                  runs=[{"label": "luo2025-400m", "updates": HORIZON, "final_rate": 3e-5}],
                  samples=[], options={}, noise=nan, cost=nan, starts=[])


def synthetic(text: str, steps: int = 3000) -> Run:
    """``synthetic:SHAPE`` (const, cos, wsd, linear): a run of ``steps`` updates following
    ``luo2025-400m`` with 0.3 % noise, warmup 5 % of the run, logged every 10 updates."""
    from lrkit.laws.predict import synthetic_run

    shape = text.partition(":")[2]
    if shape not in SYNTHETIC_SHAPES:
        raise LawError(f"{text!r}: expected synthetic:SHAPE with SHAPE one of "
                       f"{', '.join(SYNTHETIC_SHAPES)}")
    spec = SYNTHETIC_SHAPES[shape].format(w=steps // 20, n=steps)
    return synthetic_run("multi-power", LUO_400M, spec, steps, peak=PEAK, noise=0.003,
                         every=10, seed=sorted(SYNTHETIC_SHAPES).index(shape), label=text)
