"""No page links to a file the repository does not contain.

Every relative link and image of the README, CONTRIBUTING.md, BENCHMARKS.md,
benchmarks/README.md and every page under docs/ (Markdown ``[text](target)``,
``![alt](target)``, reference definitions and HTML ``src=``/``href=``) must name a file (or
folder) tracked by git, so it resolves on the code host as well as in the built site; the
mkdocs navigation likewise. Links into code blocks are not links and are left out.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted([ROOT / "README.md", ROOT / "CONTRIBUTING.md", ROOT / "BENCHMARKS.md",
                ROOT / "benchmarks" / "README.md", *(ROOT / "docs").rglob("*.md")])

_FENCED = re.compile(r"^( *)(```|~~~).*?^\1\2", re.M | re.S)
_INLINE = re.compile(r"`[^`\n]*`")
_LINKS = [
    re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)"),  # [t](x), ![a](x)
    re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.M),  # [ref]: x
    re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']"""),  # HTML
]


def links(markdown: str) -> list[str]:
    text = _INLINE.sub("", _FENCED.sub("", markdown))
    return [m.group(1) for pattern in _LINKS for m in pattern.finditer(text)]


def _tracked() -> set[Path]:
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: the tracked files are unknown")
    out = subprocess.run([git, "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
    files = {ROOT / f for f in out.stdout.decode().split("\0") if f}
    return files | {d for f in files for d in f.parents if ROOT in d.parents or d == ROOT}


def test_link_parser() -> None:
    md = ('see [a](docs/a.md#x) and ![i](img/i.png "t") [b]: ../b.md\n[r]: r.md\n'
          '`[not](x.md)`\n```python\n[no](y.md)\n```\n<img src="z.png"> [w](https://e.org)')
    assert sorted(links(md)) == sorted(["docs/a.md#x", "img/i.png", "r.md", "z.png",
                                        "https://e.org"])


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_relative_links_resolve(page: Path) -> None:
    tracked = _tracked()
    missing = []
    for target in links(page.read_text(encoding="utf-8")):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith("#"):
            continue  # a URL (http:, mailto:) or an anchor of this page
        path = unquote(target.split("#", 1)[0].split("?", 1)[0])
        resolved = (page.parent / path).resolve()
        if resolved not in tracked:
            missing.append(target)
    assert not missing, f"{page.relative_to(ROOT)} links to files not in the repository: {missing}"


def test_mkdocs_nav_pages_exist() -> None:
    tracked = _tracked()
    nav = re.findall(r"^\s*-\s*(?:[^:\n]+:\s*)?([\w./-]+\.md)\s*$",
                     (ROOT / "mkdocs.yml").read_text(), re.M)
    assert len(nav) > 20
    missing = [p for p in nav if (ROOT / "docs" / p) not in tracked]
    assert not missing, f"mkdocs.yml names pages the repository does not contain: {missing}"
