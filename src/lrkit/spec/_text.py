"""Cheap checks of JSON and YAML text before it is parsed, and the YAML loader to use.

A schedule spec holds at most :data:`~lrkit.spec._build.MAX_NODES` values nested at most
:data:`~lrkit.spec._build.MAX_DEPTH` levels, so text that cannot be one is refused *before*
the (much slower) parser sees it: too long, too many separators (each value of a JSON or
YAML document needs at least one ``,``, ``:``, newline, ``[``, ``{`` or ``- ``), or brackets
nested too deeply. Each check is a few passes of C string methods (or one NumPy cumulative
sum), so any input is accepted or refused in a few milliseconds per megabyte.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lrkit.errors import SpecError
from lrkit.spec._build import MAX_DEPTH, MAX_NODES

__all__ = ["MAX_DOCUMENT", "check_document", "yaml_loader"]

#: Longest JSON or YAML text accepted (characters, or bytes for ``bytes``).
MAX_DOCUMENT = 1_000_000
#: Most separators a document may hold: two per value leaves room for keys and comments.
MAX_SEPARATORS = 2 * MAX_NODES

_SEPARATORS = (",", ":", "\n", "[", "{", "- ")


def _max_bracket_depth(text: str | bytes) -> int:
    """The deepest nesting of ``[``/``{`` (quoted text included: a spec needs no brackets in
    its strings, so over-counting only refuses text that is not a spec)."""
    raw = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
    b = np.frombuffer(raw, dtype=np.uint8)
    step = (b == ord("[")).astype(np.int32) + (b == ord("{"))
    step -= (b == ord("]")).astype(np.int32) + (b == ord("}"))
    return int(np.cumsum(step).max()) if step.size else 0


def check_document(text: Any, what: str) -> None:
    """Raise :class:`SpecError` unless ``text`` is JSON/YAML text a spec could be."""
    if not isinstance(text, (str, bytes)):
        raise SpecError(f"expected {what} text (str or bytes), got {type(text).__name__}")
    if len(text) > MAX_DOCUMENT:
        raise SpecError(
            f"{what} text too long: {len(text)} characters, expected at most {MAX_DOCUMENT}"
        )
    depth = _max_bracket_depth(text)
    if depth > MAX_DEPTH:
        raise SpecError(
            f"{what} text nested too deeply: {depth} levels of brackets,"
            f" expected at most {MAX_DEPTH}"
        )
    if isinstance(text, bytes):
        count = sum(text.count(s.encode()) for s in _SEPARATORS)
    else:
        count = sum(text.count(s) for s in _SEPARATORS)
    if count > MAX_SEPARATORS:
        raise SpecError(
            f"{what} text too large: {count} separators (',', ':', newlines, brackets);"
            f" expected a spec of at most {MAX_NODES} values"
        )


def yaml_loader() -> Any:
    """The safe YAML loader: libyaml's ``CSafeLoader`` where PyYAML has it, else
    ``SafeLoader`` (the same documents and tags; only faster). Never a full loader."""
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)
