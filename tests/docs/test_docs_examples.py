"""Every ```python block of the documentation runs (hand-written pages and the generated
schedule pages), every ```pycon block runs as a doctest, no code block is in a language this
test does not know, and the site builds with ``mkdocs build --strict`` (warnings are errors).

Blocks of one page run in order in one namespace (later blocks use earlier names), in a
temporary working directory. The Segmenter page's "before" block imports Segmenter's own
class: it runs against the typed-in original from ``tests/compat/test_segmenter.py``; its
structure sketch uses symbols (``M``, ``p``, ``W``, ``m``, ``s``), given values here.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
sys.path.insert(0, str(DOCS))

from _gen.pages import PAGES  # noqa: E402

from _markdown import FENCE, SCENARIOS, blocks, run_commands  # noqa: E402

CUDA_PAGES = {"cuda_graphs.md"}
# every kind of block is run here: python in order per page, pycon as doctests, bash
# (lrkit commands; see tests/_markdown.py), or is no code (text: output, a layout)
KNOWN = {"python", "pycon", "text", "bash"}


def python_blocks(markdown: str) -> list[str]:
    return blocks(markdown, "python")


def _pages() -> dict[str, str]:
    return {str(p.relative_to(DOCS)): p.read_text() for p in sorted(DOCS.rglob("*.md"))}


PAGES_MD = _pages()


def _segmenter_prelude(ns: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    spec = importlib.util.spec_from_file_location(
        "segmenter_oracle", ROOT / "tests" / "compat" / "test_segmenter.py")
    assert spec is not None
    assert spec.loader is not None
    oracle = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(oracle)
    segm = types.ModuleType("segm")
    optim = types.ModuleType("segm.optim")
    sched = types.ModuleType("segm.optim.scheduler")
    sched.PolynomialLR = oracle.OriginalPolynomialLR  # type: ignore[attr-defined]
    for name, mod in (("segm", segm), ("segm.optim", optim), ("segm.optim.scheduler", sched)):
        monkeypatch.setitem(sys.modules, name, mod)
    model = torch.nn.Linear(2, 1)
    ns.update(optimizer=torch.optim.SGD(model.parameters(), lr=0.01), num_updates=1)
    # the structure sketch names its parts with symbols: give them values
    from lrkit import Constant, Hold, Join, Rel, Staircase
    from lrkit.compat.segmenter import SegmenterPoly

    ns.update(Join=Join, Constant=Constant, Rel=Rel, Hold=Hold, Staircase=Staircase,
              SegmenterPoly=SegmenterPoly, M=100, p=0.9, W=20, m=1e-3, s=3)


def test_every_page_has_been_found() -> None:
    names = set(PAGES_MD)
    assert {"index.md", "segmenter.md", "effective_lr.md", "howto/lightning.md",
            "howto/hf_trainer.md", "howto/conversions.md", "howto/tensorboard.md"} <= names
    assert {f"schedules/{p.slug}.md" for p in PAGES} <= names
    # pages that claim equivalents carry a checking block
    assert all(python_blocks(PAGES_MD[f"schedules/{p.slug}.md"]) for p in PAGES if p.equivalents)


def test_every_block_is_run_or_plain_text() -> None:
    """No code block escapes the tests by its language (```py, ```console, no language)."""
    for page, text in PAGES_MD.items():
        langs = {m.group(2) for m in FENCE.finditer(text)}
        assert langs <= KNOWN, f"docs/{page}: code blocks in {sorted(langs - KNOWN)}"
        assert text.count("```") == 2 * len(list(FENCE.finditer(text))), f"docs/{page}"


@pytest.mark.parametrize("page", sorted(p for p in PAGES_MD if blocks(PAGES_MD[p], "bash")))
def test_bash_blocks_run(page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    where = f"docs/{page}"
    ran = run_commands(PAGES_MD[page], where)
    assert ran or where in SCENARIOS


@pytest.mark.parametrize("page", sorted(p for p in PAGES_MD if blocks(PAGES_MD[p], "pycon")))
def test_pycon_blocks_run_as_doctests(page: str) -> None:
    import doctest

    import lrkit

    for i, code in enumerate(blocks(PAGES_MD[page], "pycon")):
        globs = {k: getattr(lrkit, k) for k in lrkit.__all__}
        test = doctest.DocTestParser().get_doctest(code, globs, f"{page}[{i}]", page, 0)
        runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
        runner.run(test)
        assert runner.failures == 0, f"docs/{page}, pycon block {i + 1} failed"


@pytest.mark.parametrize("page", sorted(p for p in PAGES_MD if p not in CUDA_PAGES))
def test_python_blocks_run(page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = python_blocks(PAGES_MD[page])
    if not blocks:
        return
    monkeypatch.chdir(tmp_path)
    ns: dict[str, Any] = {"__name__": f"docs_{page.replace('/', '_')[:-3]}"}
    if page == "segmenter.md":
        _segmenter_prelude(ns, monkeypatch)
    for i, code in enumerate(blocks):
        try:
            exec(compile(code, f"docs/{page} [python block {i + 1}]", "exec"), ns)
        except Exception as exc:  # pragma: no cover - the failure message
            raise AssertionError(f"docs/{page}, python block {i + 1} failed: {exc!r}") from exc


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("page", sorted(CUDA_PAGES))
def test_cuda_page_blocks_run(page: str, tmp_path: Path,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    ns: dict[str, Any] = {"__name__": "docs_cuda"}
    for i, code in enumerate(python_blocks(PAGES_MD[page])):
        exec(compile(code, f"docs/{page} [python block {i + 1}]", "exec"), ns)


@pytest.mark.slow
def test_site_builds_strictly(tmp_path: Path) -> None:
    mkdocs = shutil.which("mkdocs", path=os.path.dirname(sys.executable))
    if mkdocs is None:
        pytest.fail("mkdocs is not installed: pip install -e '.[docs]'")
    site = tmp_path / "site"
    r = subprocess.run([mkdocs, "build", "--strict", "--site-dir", str(site)], cwd=ROOT,
                       capture_output=True, text=True, timeout=300,
                       env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    for p in PAGES:
        assert (site / "schedules" / p.slug / "index.html").is_file()
        png = (site / "img" / "schedules" / f"{p.slug}.png").read_bytes()
        assert png.startswith(b"\x89PNG")
    assert (site / "img" / "generated" / "effective_lr.png").stat().st_size > 10_000
    html = (site / "schedules" / "cosine" / "index.html").read_text()
    # the formulas are typeset at build time (MathML): no TeX left for a script to render
    assert html.count("<math ") >= 3
    assert "\\frac" not in html
    assert "arithmatex" not in html
    assert (site / "segmenter" / "index.html").is_file()
    # nothing is loaded from the network: the site works offline, from disk
    for page in site.rglob("*.html"):
        loaded = re.findall(r"<(?:script|link|img)\b[^>]*(?:src|href)=\"(https?:[^\"]+)\"",
                            page.read_text())
        assert not loaded, f"{page.relative_to(site)} loads {loaded}"
