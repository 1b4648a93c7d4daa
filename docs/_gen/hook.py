"""mkdocs hook: add the generated schedule pages and figures to the site at build time."""

from __future__ import annotations

import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _gen.pages import generated_images, generated_pages


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    for path, text in generated_pages().items():
        files.append(File.generated(config, path, content=text))
    for path, make in generated_images().items():
        files.append(File.generated(config, path, content=make()))
    return files
