"""The committed schedule pages and figures are what ``python docs/_gen/pages.py`` writes.

The pages are committed (not generated at build time) so that every link resolves where
people read the Markdown, on the code host included. Pages are compared byte for byte; the
figures are checked to exist, one per page, as PNGs of the generated size (their bytes depend
on the matplotlib and FreeType versions).
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
sys.path.insert(0, str(DOCS))

from _gen.pages import PAGES, generated_images, generated_pages  # noqa: E402

FIX = "out of date: run `python docs/_gen/pages.py` and commit the result"


def test_pages_are_up_to_date() -> None:
    pages = generated_pages()
    assert set(pages) == {"schedules/index.md", *(f"schedules/{p.slug}.md" for p in PAGES)}
    on_disk = {str(p.relative_to(DOCS)) for p in (DOCS / "schedules").glob("*.md")}
    assert on_disk == set(pages), f"docs/schedules/ holds other pages than generated: {FIX}"
    for path, text in pages.items():
        assert (DOCS / path).read_text(encoding="utf-8") == text, f"docs/{path} is {FIX}"


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_figures_are_committed() -> None:
    images = generated_images()
    assert len(images) == len(PAGES) + 1
    for path in images:
        data = (DOCS / path).read_bytes()
        # 7 x 3.2 in at 80 dpi (schedules); 7 x 4.5 in at 100 dpi (the monitor figure)
        expected = (560, 256) if path.startswith("img/schedules/") else (700, 450)
        assert _png_size(data) == expected, f"docs/{path} is {FIX}"
    on_disk = {str(p.relative_to(DOCS)) for p in (DOCS / "img" / "schedules").glob("*")}
    assert on_disk == {p for p in images if p.startswith("img/schedules/")}
