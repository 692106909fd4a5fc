"""Neural-collapse (variability-collapse) transferability score of Suresh, Abrol & Thakur."""

from __future__ import annotations

from typing import Literal

import torch

from nclib._checks import ArrayLike, check_features, check_labels, check_min_per_class, finite_float, is_constant

_CHUNK = 1 << 18  # elements per step (2 MiB in float64): buffers stay in cache, few Python steps
_SAME_MEAN = "nc: every class has the same mean (e.g. constant features), so the ratio's denominator is 0"


def nc(features: ArrayLike, labels: ArrayLike, variant: Literal["paper", "demo"] = "paper") -> float:
    """Neural-collapse score, Eq. 2 of "Pitfalls in Measuring Neural Transferability". Lower is better.

    ``variant="paper"`` (Eq. 2)::

        S = sum_c mean_{i in c} ||e_i - mu_c||_2  /  sum_{c < c'} ||mu_c - mu_c'||_2

    ``variant="demo"`` reproduces ``compute_neural_collapse_score`` of the authors' public demo
    (github.com/AnshThakur/NC_Scores_Demo): the numerator is the mean over all N samples of
    ||e_i - mu_{y_i}|| and the denominator the mean of ||mu_c - mu_c'|| over ordered pairs c != c'.
    With n_c samples per class, demo / paper = (C - 1) / 2 * (sum_c n_c m_c / N) / (sum_c m_c / C),
    m_c the class-c mean distance. For balanced classes this is the constant (C - 1) / 2, so both
    rank models alike; for imbalanced classes (e.g. 960 / 428 coughs) the demo weights the larger
    class's spread more and the two variants can rank models differently.

    features: N x D embeddings; labels: N integer classes (any integer codes), at least 2 samples per class.
    Perfectly collapsed classes give S = 0; features whose class means all coincide (e.g. constant features) a
    ``ValueError``.
    """
    if variant not in ("paper", "demo"):
        raise ValueError(f"variant must be 'paper' or 'demo', got {variant!r}")
    x = check_features(features)
    y, n_classes = check_labels(labels, n=x.shape[0], device=x.device)
    counts = check_min_per_class(y, n_classes, score="nc").to(torch.float64)
    if is_constant(x):
        raise ValueError(_SAME_MEAN)

    # One pass for the class sums (accumulated in float64), one for the distances, both in row chunks
    # through two reused buffers (no N x D temporary).
    rows = max(1, _CHUNK // x.shape[1])
    sums = torch.zeros(n_classes, x.shape[1], dtype=torch.float64, device=x.device)
    wide = torch.empty(min(rows, x.shape[0]), x.shape[1], dtype=torch.float64, device=x.device)
    for start in range(0, x.shape[0], rows):
        xc = x[start : start + rows]
        sums.index_add_(0, y[start : start + rows], wide[: xc.shape[0]].copy_(xc))
    means = sums / counts[:, None]

    means_x = means.to(x.dtype)
    diff = torch.empty(min(rows, x.shape[0]), x.shape[1], dtype=x.dtype, device=x.device)
    dist = torch.zeros(n_classes, dtype=torch.float64, device=x.device)  # per-class sum of ||e_i - mu_c||
    for start in range(0, x.shape[0], rows):
        yc, xc = y[start : start + rows], x[start : start + rows]
        d = torch.index_select(means_x, 0, yc, out=diff[: xc.shape[0]]).sub_(xc)  # direct subtraction
        dist.index_add_(0, yc, torch.linalg.vector_norm(d, dim=1).to(torch.float64))

    between = torch.pdist(means)  # ||mu_c - mu_c'|| for c < c'
    if not bool(between.max() > 0):
        raise ValueError(_SAME_MEAN)
    if variant == "paper":
        return finite_float((dist / counts).sum() / between.sum(), "nc")
    return finite_float(dist.sum() / counts.sum() / between.mean(), "nc")
