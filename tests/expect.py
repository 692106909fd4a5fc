"""Assertions shared by several test files."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def warns_if(expected: bool, match: str) -> Iterator[None]:
    """Assert that the block emits a UserWarning matching ``match`` exactly when ``expected``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    hits = [w for w in caught if issubclass(w.category, UserWarning) and re.search(match, str(w.message))]
    assert bool(hits) == expected, [str(w.message) for w in caught]
