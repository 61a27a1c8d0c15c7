"""Command-line argument helpers shared by the CLIs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def json_object_arg(flag: str, text: str) -> dict[str, Any]:
    """A CLI argument given as inline JSON or as the path of a ``.json`` file holding an object; ``ValueError``
    naming ``flag`` when it cannot be read, is malformed or is not an object."""
    path = Path(text)
    if not text.lstrip().startswith("{") and path.suffix == ".json":
        try:
            text = path.read_text()
        except OSError as e:
            raise ValueError(f"{flag}: cannot read {path}: {e}") from None
    try:
        d = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{flag}: malformed JSON: {e}") from None
    if not isinstance(d, dict):
        raise ValueError(f"{flag}: expected a JSON object, got {d!r}")
    return d
