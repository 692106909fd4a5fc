"""Zoo names of checkpoints, one convention for every track: ``name@k`` is network ``name`` after ``k`` epochs of
its source pre-training, taken from the same run as plain ``name`` (its full length).

    checkpoint("digits_cnn@2", {"digits_cnn": 6, "lite0": None})   # ("digits_cnn", 2)
    checkpoint("digits_cnn", {"digits_cnn": 6, "lite0": None})     # ("digits_cnn", None): all 6 epochs

Ranking the checkpoints of one run is an established model-selection benchmark: Y. Li, X. Jia, R. Sang, Y. Zhu,
B. Green, L. Wang, B. Gong. Ranking Neural Checkpoints. CVPR 2021.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping

SEPARATOR = "@"


def checkpoint(name: str, epochs: Mapping[str, int | None]) -> tuple[str, int | None]:
    """(base, k) of zoo name ``base@k``; (name, None) for a plain name, meaning its full pre-training.

    ``epochs``: every known base name -> the length in epochs of the source pre-training that makes it, or None
    where nclib does not pre-train it (weights from elsewhere: no checkpoints). ``k`` must be an integer with
    1 <= k < that length; the full length is the plain name. Anything else raises ``ValueError`` saying why.
    """
    base, sep, k = name.partition(SEPARATOR)
    if base not in epochs:
        close = difflib.get_close_matches(base, list(epochs), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        where = f" in {name!r}" if sep else ""
        raise ValueError(f"unknown model {base!r}{where}; known models: {sorted(epochs)}{hint}")
    if not sep:
        return base, None
    full = epochs[base]
    if full is None:
        raise ValueError(f"{name!r}: {base!r} is not pre-trained by nclib, so it has no checkpoints; write {base!r}")
    if not (re.fullmatch(r"[1-9][0-9]*", k) and int(k) < full):
        raise ValueError(f"{name!r}: k in {base}@k must be an integer from 1 to {full - 1} (epochs of its "
                         f"{full}-epoch pre-training); plain {base!r} is all {full}")  # fmt: skip
    return base, int(k)
