"""Generate the schedule reference pages and figures of the documentation.

Run from the repository root after changing a schedule's docstring or the table below:
``python docs/_gen/pages.py``. It writes ``docs/schedules/*.md``, ``docs/img/schedules/*.png``
and ``docs/img/generated/effective_lr.png``; these are committed, so the links resolve on the
code host too, and ``tests/docs/test_generated_pages.py`` fails when they are out of date.
``tests/docs/test_docs_examples.py`` runs every ``python`` block of every page. Each page:
the docstring (summary, formula, symbol key, args, raises, doctest), a plot generated here,
and the equivalent configuration in torch / timm / Hugging Face / mmengine as an executable
block that checks the conversion numerically.
"""

from __future__ import annotations

import inspect
import io
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import lrkit from the checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from lrkit import schedules as S
from lrkit.schedules import Rel, Schedule


@dataclass(frozen=True)
class Page:
    slug: str
    cls: type[Schedule]
    example: str  # a Python expression (names from lrkit) drawn on the page
    steps: int
    # (framework, expression giving a Schedule[, the first step where they agree])
    equivalents: tuple[tuple[str, str] | tuple[str, str, int], ...] = ()
    base: float = 1.0


def _onecycle() -> str:
    return ("from_torch(torch.optim.lr_scheduler.OneCycleLR(opt(), max_lr=1.0, total_steps=200,"
            " pct_start=0.25))")


PAGES: tuple[Page, ...] = (
    Page("constant", S.Constant, "Constant()", 100, (
        ("Hugging Face", 'from_hf("constant")'),
        ("mmengine", 'from_mmengine(dict(type="ConstantLR", factor=1.0, by_epoch=False, '
                     'begin=0, end=100))'),
    )),
    Page("linear", S.Linear, "Linear(100, start=Rel(0.1), end=Rel(1.0))", 150, (
        ("torch", "from_torch(torch.optim.lr_scheduler.LinearLR(opt(), 0.1, 1.0, "
                  "total_iters=100))"),
        ("mmengine", 'from_mmengine(dict(type="LinearLR", start_factor=0.1, by_epoch=False, '
                     'begin=0, end=101))'),
    )),
    Page("poly", S.Poly, "Poly(100, power=2.0, end=1e-3)", 150, (
        ("timm", 'from_timm("poly", num_epochs=100, decay_rate=2.0, min_lr=1e-3)'),
        ("Hugging Face", 'from_hf("polynomial", num_warmup_steps=0, num_training_steps=100, '
                         'power=2.0, lr_end=1e-3, lr=1.0)'),
        ("mmengine", 'from_mmengine(dict(type="PolyLR", power=2.0, eta_min=1e-3, '
                     'by_epoch=False, begin=0, end=101))'),
    )),
    Page("cosine", S.Cosine, "Cosine(100, end=0.05)", 150, (
        ("torch", "from_torch(torch.optim.lr_scheduler.CosineAnnealingLR(opt(), T_max=100, "
                  "eta_min=0.05))"),
        ("timm", 'from_timm("cosine", num_epochs=100, min_lr=0.05)'),
        ("Hugging Face", 'from_hf("cosine_with_min_lr", num_warmup_steps=0, '
                         'num_training_steps=100, min_lr_rate=0.05)'),
        ("mmengine", 'from_mmengine(dict(type="CosineAnnealingLR", T_max=100, eta_min=0.05, '
                     'by_epoch=False, begin=0, end=101))'),
    )),
    Page("cosine_restarts", S.CosineRestarts, "CosineRestarts(20, period_mult=2, end=0.01)",
         300, (
        ("torch", "from_torch(torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt(), "
                  "T_0=20, T_mult=2, eta_min=0.01))"),
        ("timm", 'from_timm("cosine", num_epochs=20, cycle_mul=2.0, cycle_decay=1.0, '
                 'cycle_limit=1000, min_lr=0.01)'),
    )),
    Page("exponential", S.Exponential, "Exponential(0.98)", 150, (
        ("torch", "from_torch(torch.optim.lr_scheduler.ExponentialLR(opt(), gamma=0.98))"),
        ("mmengine", 'from_mmengine(dict(type="ExponentialLR", gamma=0.98, by_epoch=False))'),
    )),
    Page("step_decay", S.StepDecay, "StepDecay(30, gamma=0.5)", 150, (
        ("torch", "from_torch(torch.optim.lr_scheduler.StepLR(opt(), step_size=30, gamma=0.5))"),
        ("timm", 'from_timm("step", decay_epochs=30, decay_rate=0.5)'),
        ("mmengine", 'from_mmengine(dict(type="StepLR", step_size=30, gamma=0.5, '
                     'by_epoch=False))'),
    )),
    Page("multistep", S.MultiStep, "MultiStep((50, 80), gamma=0.1)", 120, (
        ("torch", "from_torch(torch.optim.lr_scheduler.MultiStepLR(opt(), milestones=[50, 80],"
                  " gamma=0.1))"),
        ("timm (its milestones act one epoch earlier)",
         'from_timm("multistep", decay_milestones=(51, 81), decay_rate=0.1)'),
        ("mmengine", 'from_mmengine(dict(type="MultiStepLR", milestones=[50, 80], gamma=0.1, '
                     'by_epoch=False))'),
    )),
    Page("piecewise", S.Piecewise, "Piecewise((0, 20, 60, 100), (0.1, 1.0, 1.0, 0.0))", 120),
    Page("inverse_sqrt", S.InverseSqrt, "Warmup(InverseSqrt(20), 20)", 200, (
        ("Hugging Face (with its warmup)", 'from_hf("inverse_sqrt", num_warmup_steps=20)'),
    )),
    Page("cyclic", S.Cyclic, "Cyclic(0.1, 1.0, step_size_up=20, mode='triangular2')", 200, (
        ("torch", "from_torch(torch.optim.lr_scheduler.CyclicLR(opt(), base_lr=0.1, max_lr=1.0,"
                  " step_size_up=20, mode='triangular2'))"),
    )),
    Page("onecycle", S.OneCycle, "OneCycle(200, peak=1.0, pct_start=0.25)", 220, (
        ("torch", _onecycle()),
        ("mmengine", 'from_mmengine(dict(type="OneCycleLR", eta_max=1.0, total_steps=200, '
                     'pct_start=0.25, by_epoch=False))'),
    )),
    Page("wsd", S.WSD, "WSD(200, 20, decay_steps=50, end=Rel(0.1), start=Rel(0.1))", 220, (
        ("Hugging Face", 'from_hf("warmup_stable_decay", num_warmup_steps=20, '
                         'num_training_steps=200, num_decay_steps=50, min_lr_ratio=0.1, '
                         'decay_type="linear")'),
    )),
    Page("sqrt_decay", S.SqrtDecay, "SqrtDecay(100, end=0.0)", 120),
    Page("exp_decay", S.ExpDecay, "ExpDecay(100, 0.1, end=0.0)", 120, (
        ("timm (wsd, decay_fn='exp', the decay over all 100 epochs; epoch 0 is the base rate "
         "timm sets at construction, here the same)",
         'from_timm("wsd", num_epochs=100, decay_epochs=100, decay_fn="exp")'),
    )),
    Page("warmup", S.Warmup, "Warmup(Cosine(180), 20)", 220, (
        ("Hugging Face", 'from_hf("cosine", num_warmup_steps=20, num_training_steps=200)'),
        ("timm (warmup_prefix=True)", 'from_timm("cosine", num_epochs=180, warmup_epochs=20, '
                                      'warmup_lr=0.0, warmup_prefix=True)'),
    )),
    Page("timewarp", S.TimeWarp, "TimeWarp(Cosine(100, end=0.01), 100, power=2.0)", 120, (
        ("timm (k_decay)", 'from_timm("cosine", num_epochs=100, min_lr=0.01, k_decay=2.0)'),
    )),
    Page("tanh", S.Tanh, "Tanh(100, end=0.01)", 100, (
        ("timm (steps 1-99: timm runs update 0 at the base rate it sets at construction; "
         "from step 100 timm drops to min_lr, lrkit holds its last value)",
         'from_timm("tanh", num_epochs=100, min_lr=0.01)', 1),
    )),
    Page("plateau", S.Plateau, "Plateau(Constant(), factor=0.5, patience=5)", 100),
    Page("join", S.Join, "Join((Linear(20, start=0.1, end=1.0), Cosine(100)), (20,))", 150, (
        ("torch", "from_torch(torch.optim.lr_scheduler.SequentialLR(o := opt(), "
                  "[torch.optim.lr_scheduler.LinearLR(o, 0.1, 1.0, 20), "
                  "torch.optim.lr_scheduler.CosineAnnealingLR(o, 100)], milestones=[20]))"),
    )),
    Page("scale", S.Scale, "Scale(Cosine(100), 0.5)", 120),
    Page("product", S.Product, "Product((Cosine(100, peak=1.0), Cyclic(0.5, 1.0, 10)))", 120),
    Page("staircase", S.Staircase, "Staircase(Linear(100, end=0.0), 10)", 120),
    Page("clamp", S.Clamp, "Clamp(Cosine(100), low=0.2)", 120),
    Page("repeat", S.Repeat, "Repeat(Linear(30, end=0.0), 30, times=3)", 120),
    Page("hold", S.Hold, "Hold(Cosine(100), after=60)", 120),
    Page("lerp", S.Lerp, "Lerp(Constant(0.05), Clamp(InverseSqrt(10), low=0.05), "
         "Join((Constant(1.0), Linear(20, 1.0, 0.0)), (80,)))", 120, (
        ("timm (rsqrt with min_lr)", 'from_timm("rsqrt", num_epochs=100, stable_timescale=10, '
                                     'decay_epochs=20, min_lr=0.05)'),
    )),
    Page("shift", S.Shift, "Shift(Cosine(100, end=0.01), by=1)", 110, (
        ("torch (OneCycleLR without a rise: pct_start * total_steps < 1)",
         "from_torch(torch.optim.lr_scheduler.OneCycleLR(opt(), max_lr=1.0, total_steps=100, "
         "pct_start=0.0, div_factor=1.0, final_div_factor=100.0))"),
        ("Hugging Face (cosine_warmup_with_min_lr without warmup)",
         'from_hf("cosine_warmup_with_min_lr", num_warmup_steps=0, num_training_steps=100, '
         'min_lr_rate=0.01)'),
    )),
)

# PNGs without the matplotlib version in them: the same figure gives the same bytes
_PNG_METADATA = {"Software": None}

# ---------------------------------------------------------------------------------------
_ROLE = re.compile(r":(?:class|meth|func|mod|data|attr):`~?([^`]+)`")
_MATH = re.compile(r":math:`([^`]+)`")
_SECTIONS = ("Args:", "Raises:", "Example:", "Examples:", "Equivalent:", "Reference:")


def _inline(text: str) -> str:
    text = _MATH.sub(lambda m: "$" + m.group(1) + "$", text)
    text = _ROLE.sub(lambda m: "`" + m.group(1).split(".")[-1] + "`", text)
    return text.replace("``", "`")


def docstring_markdown(cls: type) -> str:
    """The class docstring as Markdown: math blocks, sections, doctests as ``pycon``."""
    doc = inspect.getdoc(cls) or ""
    lines = doc.splitlines()
    out: list[str] = []
    i = 0
    section = ""
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if stripped.startswith(".. math::"):
            rest = stripped[len(".. math::"):].strip()
            body = [rest] if rest else []
            i += 1
            while i < len(lines) and (not lines[i].strip() or lines[i].startswith("    ")):
                body.append(lines[i].strip())
                i += 1
            out += ["", "$$", *[b for b in body if b], "$$", ""]
            continue
        head = next((s for s in _SECTIONS if stripped.startswith(s)), None)
        if head is not None and not line.startswith(" "):
            section = head.rstrip(":")
            tail = stripped[len(head):].strip()
            out += ["", f"**{section}**", ""]
            if section in ("Example", "Examples"):
                block = []
                i += 1
                while i < len(lines) and (not lines[i].strip() or lines[i].startswith("    ")):
                    block.append(lines[i][4:])
                    i += 1
                while block and not block[-1].strip():
                    block.pop()
                out += ["```pycon", *block, "```", "",
                        "*(a doctest: it runs in CI with the test suite)*", ""]
                continue
            if tail:
                out.append(_inline(tail))
            i += 1
            continue
        if section in ("Args", "Raises") and line.startswith("    ") and \
                not line.startswith("        "):
            name, _, desc = stripped.partition(":")
            out.append(f"- `{name}`: {_inline(desc.strip())}")
        elif section in ("Args", "Raises") and line.startswith("        "):
            out[-1] += " " + _inline(stripped)
        else:
            out.append(_inline(line))
        i += 1
    return "\n".join(out).strip() + "\n"


def equivalents_block(page: Page) -> str:
    """A Python block that builds each equivalent and checks it against the example."""
    code = [
        "import numpy as np",
        "import torch",
        "from lrkit import *",
        "from lrkit.convert import from_hf, from_mmengine, from_timm, from_torch",
        "",
        "def opt():  # a fresh optimizer (base rate 1.0) for each torch scheduler",
        "    return torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)",
        "",
        f"ours = {page.example}",
        f"t = np.arange({page.steps}.0)",
    ]
    for fw, expr, *first in page.equivalents:
        k = f"[{first[0]}:]" if first else ""
        code += [f"# {fw}", f"theirs = {expr}",
                 f"assert np.allclose(theirs(t{k}), ours(t{k}), rtol=1e-9, atol=1e-12)"]
    return "```python\n" + "\n".join(code) + "\n```\n"


def page_markdown(page: Page) -> str:
    name = page.cls.__name__
    md = [f"# {name}", "", f"`lrkit.{name}` (spec name `{page.cls.kind}`)", "",
          docstring_markdown(page.cls), "", "## Plot", "",
          f"![{name}](../img/schedules/{page.slug}.png)", "",
          f"`{page.example}` over {page.steps} steps (base rate 1).",
          "", "## The same schedule elsewhere", ""]
    if page.equivalents:
        md += ["| framework | configuration |", "|---|---|"]
        md += [f"| {fw} | `{expr.replace('|', '&#124;')}` |" for fw, expr, *_ in page.equivalents]
        md += ["", "Checked (this block runs in CI):", "", equivalents_block(page)]
    else:
        md += ["No scheduler in torch, timm, Hugging Face or mmengine has this form; build it "
               "with lrkit and export it with `lrkit.convert.to_lambda` (torch `LambdaLR`) or "
               "`to_optax` (see [Conversions](../howto/conversions.md))."]
    return "\n".join(md) + "\n"


def index_markdown() -> str:
    rows = ["| schedule | spec name | summary |", "|---|---|---|"]
    for p in PAGES:
        summary = _inline((inspect.getdoc(p.cls) or "").splitlines()[0])
        rows.append(f"| [{p.cls.__name__}]({p.slug}.md) | `{p.cls.kind}` | {summary} |")
    return ("# Schedules\n\nEvery schedule is a closed-form function of the step (updates "
            "completed, from 0). Values are absolute floats or `Rel(f)`: f times the group's "
            "base rate.\n\n" + "\n".join(rows) + "\n")


def plot_png(page: Page) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from lrkit.plot import plot_schedules

    schedule = eval(page.example, {**vars(S), "Rel": Rel})  # our own table above
    fig = plot_schedules({page.cls.__name__: schedule}, page.steps, base_lr=page.base,
                         figsize=(7.0, 3.2), dpi=80)
    buf = io.BytesIO()
    FigureCanvasAgg(fig)
    fig.tight_layout()
    fig.savefig(buf, format="png", metadata=_PNG_METADATA)
    return buf.getvalue()


def effective_lr_png(steps: int = 240) -> bytes:
    """The monitor's figure for the explainer: ``examples/effective_lr.py``'s run (StepLR's
    base rate and AdamW's applied rates), shorter."""
    import importlib.util

    from lrkit.inspect import plot_effective_lr

    path = Path(__file__).resolve().parents[2] / "examples" / "effective_lr.py"
    spec = importlib.util.spec_from_file_location("lrkit_example_effective_lr", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    mon, _loss = example.train(steps, every=8)
    fig = plot_effective_lr(mon, figsize=(7.0, 4.5), dpi=80)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata=_PNG_METADATA)
    return buf.getvalue()


def generated_pages() -> dict[str, str]:
    """Markdown of every generated page, keyed by its path under docs/."""
    out = {"schedules/index.md": index_markdown()}
    for p in PAGES:
        out[f"schedules/{p.slug}.md"] = page_markdown(p)
    return out


def generated_images() -> dict[str, Callable[[], bytes]]:
    """Image path under docs/ -> a function producing its PNG bytes."""
    out: dict[str, Callable[[], bytes]] = {
        f"img/schedules/{p.slug}.png": (lambda p=p: plot_png(p)) for p in PAGES}
    out["img/generated/effective_lr.png"] = effective_lr_png
    return out


def write(docs: Path, images: bool = True) -> list[Path]:
    """Write the generated pages (and figures) under ``docs``; return the files changed."""
    changed = []
    items: list[tuple[str, Callable[[], bytes]]] = [
        (path, (lambda text=text: text.encode())) for path, text in generated_pages().items()]
    if images:
        items += list(generated_images().items())
    for path, make in items:
        target = docs / path
        data = make()
        if target.is_file() and target.read_bytes() == data:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        changed.append(target)
    return changed


if __name__ == "__main__":
    for f in write(Path(__file__).resolve().parents[1], images="--no-images" not in sys.argv):
        print(f"wrote {f}")
