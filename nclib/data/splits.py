"""Stratified, seeded splits: every class keeps its share in every split."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def stratified_split(labels: np.ndarray, sizes: Mapping[str, int | float], seed: int) -> dict[str, np.ndarray]:
    """Split sample indices by class into disjoint named splits; deterministic for a given ``seed``.

    ``sizes`` maps split names to either per-class counts (all ints: class ``c`` puts ``sizes[k]``
    of its samples in split ``k``) or fractions (all floats in (0, 1], summing to at most 1: class
    ``c`` with ``n_c`` samples puts ``round(n_c * sum(f))`` in all, shared by largest remainder).
    Samples left over are in no split. Returns ``{name: sorted int64 indices into labels}``.
    Raises ``ValueError`` if a class has too few samples, i.e. some split would miss a class.
    """
    y = np.asarray(labels)
    if y.ndim != 1 or y.size == 0:
        raise ValueError(f"labels must be a non-empty 1-D array, got shape {y.shape}")
    names = list(sizes)
    values = [sizes[k] for k in names]
    if not names:
        raise ValueError("sizes must name at least one split")
    if any(isinstance(v, bool) for v in values):
        raise ValueError(f"split sizes must be counts or fractions, got {dict(sizes)}")
    counts_mode = all(isinstance(v, int | np.integer) for v in values)
    if counts_mode and min(values) < 1:
        raise ValueError(f"per-class split counts must be >= 1, got {dict(sizes)}")
    fractions = np.asarray(values, dtype=float)
    all_floats = all(isinstance(v, float | np.floating) for v in values)
    if not counts_mode and (not all_floats or fractions.min() <= 0 or fractions.sum() > 1 + 1e-9):
        raise ValueError(f"split sizes must be all ints (per-class counts) or all floats in (0, 1] "
                         f"summing to at most 1, got {dict(sizes)}")
    rng = np.random.default_rng(seed)
    out: dict[str, list[np.ndarray]] = {k: [] for k in names}
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n = np.asarray(values, dtype=np.int64) if counts_mode else _apportion(len(idx), fractions)
        if n.sum() > len(idx) or n.min() < 1:
            raise ValueError(f"class {c.item()!r} has {len(idx)} samples, too few for splits {dict(sizes)} "
                             f"(it would get {dict(zip(names, n.tolist(), strict=True))})")
        for k, part in zip(names, np.split(idx, np.cumsum(n)), strict=False):
            out[k].append(part)
    return {k: np.sort(np.concatenate(parts)).astype(np.int64) for k, parts in out.items()}


def _apportion(n: int, fractions: np.ndarray) -> np.ndarray:
    """Integer shares of ``round(n * sum(fractions))`` items, by largest remainder."""
    exact = n * fractions
    share = np.floor(exact).astype(np.int64)
    extra = int(round(n * fractions.sum())) - int(share.sum())
    share[np.argsort(-(exact - share), kind="stable")[:extra]] += 1
    return share
