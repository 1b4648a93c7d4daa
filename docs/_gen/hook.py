"""mkdocs hook: typeset the math at build time, as MathML (no script, no CDN).

``pymdownx.arithmatex`` (generic mode) wraps each formula in ``<span class="arithmatex">``
(inline, ``\\(...\\)``) or ``<div class="arithmatex">`` (display, ``\\[...\\]``); this hook
replaces each with the MathML that the ``latex2mathml`` package (the ``docs`` extra) writes.
Browsers render MathML natively, so the site shows its formulas offline, from disk.
"""

from __future__ import annotations

import html
import re
from typing import Any

from latex2mathml.converter import convert

_MATH = re.compile(
    r'<(?P<tag>span|div) class="arithmatex">\s*\\(?P<open>[(\[])(?P<tex>.*?)\\[)\]]\s*</(?P=tag)>',
    re.S,
)


def to_mathml(page_html: str) -> str:
    """``page_html`` with every arithmatex formula replaced by its MathML."""

    def sub(m: re.Match[str]) -> str:
        display = "block" if m.group("open") == "[" else "inline"
        return convert(html.unescape(m.group("tex")).strip(), display=display)

    return _MATH.sub(sub, page_html)


def on_page_content(page_html: str, **kwargs: Any) -> str:
    return to_mathml(page_html)
