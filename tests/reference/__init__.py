"""Values the score tests pin from the authors' reference implementations.

They live in ``pins.json`` beside this file, one object per score (source repository, commit, call, the versions it
ran with, and ``values``), and are written by ``regenerate.py``, which reruns the references on the tests' own inputs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

PINS_FILE = Path(__file__).with_name("pins.json")
STRICT = True  # regenerate.py turns it off, so that it can import a test module whose cases are not all pinned yet


def load_pins() -> dict[str, dict[str, Any]]:
    return json.loads(PINS_FILE.read_text())


def _tuples(value: Any) -> Any:
    """JSON lists back to tuples, inside dicts too."""
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: _tuples(v) for k, v in value.items()}
    return value


def pinned(score: str, keys: Iterable[Any]) -> dict[Any, Any]:
    """``{key: pinned value}`` of ``score`` for each of ``keys``, in their order.

    A key is a case name or a tuple of arguments, written in the file as ``str(key)``. The file must pin exactly these
    keys, so that no pin goes untested and no case unpinned. Lists come back as tuples."""
    pins, keys = load_pins(), list(keys)
    if not STRICT:
        values = pins.get(score, {}).get("values", {})
        return {key: _tuples(values.get(str(key))) for key in keys}
    values = pins[score]["values"]
    if sorted(map(str, keys)) != sorted(values):
        raise KeyError(f"{PINS_FILE.name}[{score!r}] pins {sorted(values)}, the test has {sorted(map(str, keys))}")
    return {key: _tuples(values[str(key)]) for key in keys}
