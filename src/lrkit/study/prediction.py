"""``lrkit compare --predict``: fit a loss-curve law on some schedules, predict the others.

Per optimizer, the runs of the named schedules (seeds averaged in log space by
:func:`lrkit.laws.io.average_seeds`) are fitted with :func:`lrkit.laws.fit` on their training
loss (from the first step ``start="auto"`` chooses when there are more schedules than the
law needs, else from the start); every other schedule of that optimizer is predicted from
its rates alone and checked against its measured (seed-averaged) curve with
:func:`lrkit.laws.evaluate.held_out`. The
report gets a section with predicted against measured curves (prediction.png), a table per
held-out schedule, the fitted law as law.json and every number in prediction.json.

A fit that cannot be made (too few or too short runs, no convergence) gives a line saying
why, in the section and on stderr, and no numbers.
"""

from __future__ import annotations

import html
import json
import math
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lrkit.study.report import Section

__all__ = ["BOOTSTRAP", "predict_section", "predicted_vs_measured"]

#: bootstrap refits per law (each costs about one fit; 0: the band comes from the
#: left-out-schedule refits alone, made with three or more fitted schedules)
BOOTSTRAP = 0


def predict_section(fit_on: Sequence[str], law: str = "multi-power") -> Section:
    """A report section (``section(folder, runs)``) for :func:`predicted_vs_measured`."""
    names = list(fit_on)

    def section(folder: Path, runs: Sequence[Any]) -> tuple[str, str]:
        return predicted_vs_measured(folder, runs, names, law)

    return section


def _law_runs(runs: Sequence[Any]) -> list[Any]:
    from lrkit.laws.io import run_from_dict

    return [run_from_dict(r.to_dict(), r.config.label) for r in runs]


def _one_optimizer(opt: str, mine: Sequence[Any], fit_on: Sequence[str], law: str
                   ) -> dict[str, Any]:
    """The fit and the held-out rows of one optimizer; ``error`` set when no law was fitted."""
    import numpy as np

    from lrkit.laws import LawError, LawWarning, fit
    from lrkit.laws.evaluate import held_out
    from lrkit.laws.fit import MIN_RUNS, TAIL
    from lrkit.laws.io import average_seeds

    out: dict[str, Any] = {"optimizer": opt, "fitted_on": list(fit_on), "law": law,
                           "error": None, "warnings": [], "held_out": [], "fit": None}
    by_name: dict[str, list[Any]] = {}
    for r in mine:
        by_name.setdefault(r.config.schedule.name, []).append(r)
    try:
        missing = [n for n in fit_on if n not in by_name]
        if missing:
            raise LawError(f"no finished run of {', '.join(missing)}")
        train = average_seeds(_law_runs([r for n in fit_on for r in by_name[n]]))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", LawWarning)
            # with more schedules than the law needs, the first fitted step is chosen by
            # how well left-out-schedule refits predict (past a study's early transient)
            start = "auto" if len(train) > MIN_RUNS.get(law, len(train)) else 0
            result = fit(train, law, bootstrap=BOOTSTRAP, start=start)
        out["warnings"] = [str(w.message) for w in caught if issubclass(w.category, LawWarning)]
    except (LawError, ValueError) as e:
        out["error"] = str(e)
        return out
    out["fit"] = result
    for name, group in by_name.items():
        if name in fit_on:
            continue
        try:
            seeds = _law_runs(group)
            with np.errstate(all="ignore"):
                rows = held_out(result, average_seeds(seeds))
        except (LawError, ValueError) as e:
            out["held_out"].append({"schedule": name, "error": str(e)})
            continue
        if not rows:
            out["held_out"].append({"schedule": name, "error": "no step after warmup to "
                                    "compare"})
            continue
        finals = []
        for s in seeds:  # the same tail mean as held_out's measured final loss
            k = max(1, round(TAIL * s.n))
            sel = s.steps > s.n - k
            finals.append(float(s.losses[sel].mean()) if sel.any() else float(s.losses[-1]))
        spread = (max(finals) - min(finals)) / (sum(finals) / len(finals)) \
            if len(finals) > 1 else math.nan
        row = rows[0]
        if not (math.isfinite(row["predicted_final"]) and row["predicted_final"] > 0):
            out["held_out"].append({"schedule": name, "error": "the law predicts a final loss "
                                    f"of {row['predicted_final']:.4g}, outside what it can "
                                    "describe: fit on more or longer runs"})
            continue
        out["held_out"].append({
            "schedule": name, "seeds": len(seeds), "updates": row["updates"],
            "predicted_final": row["predicted_final"], "measured_final": row["measured_final"],
            "final_error": row["final_error"], "curve_error": row["curve_error"],
            "r2": row["r2"], "seed_spread": spread, "warnings": row["warnings"]})
    return out


def _figure(folder: Path, results: list[dict[str, Any]], runs: Sequence[Any]) -> str | None:
    """prediction.png: measured (solid) against predicted (dashed) per optimizer."""
    import numpy as np

    from lrkit.laws import LawError, LawWarning, predict
    from lrkit.laws.io import average_seeds
    from lrkit.study.figures import DPI, _colors, _figure

    done = [res for res in results if res["fit"] is not None]
    if not done:
        return None
    fig, axes = _figure(1, len(done), (min(11.0, 5.5 * len(done)), 4.0))
    for ax, res in zip(axes[0], done, strict=True):
        mine = [r for r in runs if r.config.optimizer == res["optimizer"]
                and r.status == "finished"]
        colors = _colors([r.config.schedule.name for r in mine])
        for name, color in colors.items():
            try:
                (avg,) = average_seeds(_law_runs(
                    [r for r in mine if r.config.schedule.name == name]))
            except (LawError, ValueError):  # the table says why
                continue
            fitted = name in res["fitted_on"]
            bad = {row["schedule"] for row in res["held_out"] if "error" in row}
            ax.plot(avg.steps, avg.losses, color=color, lw=0.8, alpha=0.45,
                    label=f"{name} ({'fitted' if fitted else 'measured'})")
            if name in bad:
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", LawWarning)
                p = predict(res["fit"], avg.rates, avg.n, at=avg.steps)
            ok = np.isfinite(p.loss) & (p.loss > 0)
            ax.plot(avg.steps[ok], p.loss[ok], color=color, lw=1.6,
                    ls=":" if fitted else "--",
                    label=f"{name} ({'law' if fitted else 'predicted'})")
        ax.set_yscale("log")
        ax.set_title(f"{res['optimizer']}: law fitted on {', '.join(res['fitted_on'])}")
        ax.set_xlabel("update")
        ax.set_ylabel("training loss (mean over seeds)")
        ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(folder / "prediction.png", dpi=DPI)
    return "prediction.png"


def _finite(x: Any) -> Any:
    """``x`` with every non-finite float as None (strict JSON)."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x


def _num(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:.3f}"


def _pct(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{100 * x:+.2f}"


def predicted_vs_measured(folder: Path, runs: Sequence[Any], fit_on: Sequence[str],
                          law: str = "multi-power") -> tuple[str, str]:
    """Fit per optimizer on ``fit_on``, predict the other schedules; (title, html).

    Writes law.json (one optimizer) or law-OPT.json (several), prediction.json and
    prediction.png into ``folder``; a fit that fails is a line here and on stderr.
    """
    from lrkit.laws.io import fit_to_dict, save_law

    esc = html.escape
    optimizers = list(dict.fromkeys(r.config.optimizer for r in runs))
    results = []
    for opt in optimizers:
        mine = [r for r in runs if r.config.optimizer == opt and r.status == "finished"]
        results.append(_one_optimizer(opt, mine, fit_on, law))
    parts = [f"<p>The {esc(law)} law was fitted, per optimizer, on the training loss of "
             f"<b>{esc(', '.join(fit_on))}</b> (seeds averaged in log space) and predicts "
             "every other schedule from its rates alone. <i>final error</i>: predicted "
             "against measured final loss (mean over the last 5% of updates, seeds "
             "averaged); <i>curve error</i>: mean relative error over every update after "
             "warmup; <i>R²</i> of the log loss; <i>seed spread</i>: the measured final "
             "losses' range over seeds relative to their mean, the noise the error "
             "compares with.</p>"]
    for res in results:
        opt = res["optimizer"]
        parts.append(f"<h3>{esc(opt)}</h3>")
        if res["error"] is not None:
            line = f"{opt}: no law fitted on {', '.join(fit_on)}: {res['error']}"
            print(f"lrkit compare: prediction: {line}", file=sys.stderr)
            parts.append(f'<p class="failed">{esc(line)}</p>')
            continue
        name = "law.json" if len(optimizers) == 1 else f"law-{opt}.json"
        save_law(res["fit"], folder / name)
        res["law_file"] = name
        rows = []
        for row in res["held_out"]:
            if "error" in row:
                line = f"{opt}: {row['schedule']} not predicted: {row['error']}"
                print(f"lrkit compare: prediction: {line}", file=sys.stderr)
                rows.append(f'<tr><td class=l>{esc(row["schedule"])}</td>'
                            f'<td class=l colspan=8>{esc(row["error"])}</td></tr>')
                continue
            rows.append(
                f'<tr><td class=l>{esc(row["schedule"])}</td><td>{row["seeds"]}</td>'
                f'<td>{row["updates"]}</td><td>{row["predicted_final"]:.4f}</td>'
                f'<td>{row["measured_final"]:.4f}</td><td>{_pct(row["final_error"])}</td>'
                f'<td>{100 * row["curve_error"]:.2f}</td><td>{_num(row["r2"])}</td>'
                f'<td>{_pct(row["seed_spread"]).lstrip("+")}</td></tr>')
        head = "".join(f"<th{' class=l' if c == 'schedule' else ''}>{c}</th>" for c in (
            "schedule", "seeds", "updates", "predicted final", "measured final",
            "final error %", "curve error %", "R²", "seed spread %"))
        parts.append(f'<p>Fitted law: <a href="{name}">{name}</a> (use it with '
                     f"<code>lrkit predict {name} SPEC --steps N</code>).</p>")
        if rows:
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}"
                         "</tbody></table>")
        else:
            parts.append("<p>Every schedule of this optimizer was fitted: nothing left to "
                         "predict.</p>")
        for w in res["warnings"]:
            parts.append(f"<p><i>{esc(w)}</i></p>")
    fig = _figure(folder, results, runs)
    if fig is not None:
        parts.insert(1, f'<figure><img src="{fig}" alt="{fig}"><figcaption>Measured '
                     "training loss (solid, mean over seeds) against the law: predicted "
                     "(dashed) for the held-out schedules, fitted (dotted) for the others."
                     "</figcaption></figure>")
    data = [{**{k: v for k, v in res.items() if k != "fit"},
             "params": None if res["fit"] is None else fit_to_dict(res["fit"])["params"]}
            for res in results]
    (folder / "prediction.json").write_text(json.dumps(_finite(data), indent=1) + "\n")
    return "Predicted against measured", "".join(parts)
