"""TransRate: coding-rate gain of the features over the class-conditional coding rates (Huang et al.)."""

from __future__ import annotations

import torch

from nclib._checks import ArrayLike, check_features, check_labels, finite_float
from nclib.scores._gram import moments

_BATCH = 1 << 23  # elements of float64 per batch of padded small classes (64 MiB)


def _coding_rate(scatter: torch.Tensor, n: torch.Tensor | int, eps: float) -> torch.Tensor:
    """R = 1/2 logdet(I + S / (n eps)) given the scatter S = Z^T Z (or Z Z^T) of n rows (batched over S's leading
    dimensions, with ``n`` one count per matrix). Overwrites ``scatter``."""
    a = scatter.div_(torch.as_tensor(n, dtype=scatter.dtype, device=scatter.device)[..., None, None] * eps)
    a.diagonal(dim1=-2, dim2=-1).add_(1.0)
    return torch.linalg.cholesky(a).diagonal(dim1=-2, dim2=-1).log().sum(-1)


def transrate(features: ArrayLike, labels: ArrayLike, eps: float = 1e-4) -> float:
    """TransRate (Huang et al., ICML 2022): TrR = R(Z) - (1/C) sum_c R(Z_c). Higher is better.

    Follows the official code (as in ``tllib/ranking/transrate.py`` of
    github.com/thuml/Transfer-Learning-Library): Z is the features minus their global mean (no other
    normalisation), Z_c the rows of Z in class c (not re-centred), and the coding rate of an n x D
    matrix is R(Z) = 1/2 logdet(I + Z^T Z / (n eps)) -- with 1 / (n eps), not the paper's
    D / (n eps^2).

    All scatters are float64, formed in row blocks about a rough mean m0 and moved to the exact mean m by
    sum_i (x_i - m)(x_i - m)^T = sum_i (x_i - m0)(x_i - m0)^T - s d^T - d s^T + n d d^T (s = sum_i (x_i - m0),
    d = m - m0); the full scatter is the sum of the per-class ones; the log-determinants use float64 Cholesky.
    A class with n_c <= D rows takes the n_c x n_c Gram instead, batched over such classes:
    det(I_D + Z_c^T Z_c / a) = det(I_n + Z_c Z_c^T / a) (Sylvester), so many small classes cost no D x D
    factorisation each. A float32 Gram moves TransRate by up to 1e-4 relative on ill-conditioned features
    and can make I + Z^T Z / (n eps) indefinite.
    features: N x D (D > N allowed; constant features, every row equal, give TrR = 0: every coding rate is 0);
    labels: N integer classes (any integer codes). Not scale invariant (eps is absolute): features far below
    sqrt(eps) in scale tend to the constant-feature value 0.
    """
    if not eps > 0:
        raise ValueError(f"eps must be positive, got {eps}")
    x = check_features(features)
    y, n_classes = check_labels(labels, n=x.shape[0], device=x.device)
    n, d = x.shape
    shift = x.mean(0)  # rough mean m0
    counts = torch.bincount(y, minlength=n_classes)
    small = counts <= d
    # one blocked pass over the rows of all small classes, one per large class
    rows = None if bool(small.all()) else torch.nonzero(small[y]).flatten()
    sums, total = moments(x, y, n_classes, rows=rows, shift=shift)
    large = {}
    for c in torch.nonzero(~small).flatten().tolist():
        class_sum, large[c] = moments(x, rows=torch.nonzero(y == c).flatten(), shift=shift)
        sums[c] = class_sum[0]
        total += large[c]
    offset = sums.sum(0) / n  # d = m - m0
    mean = shift.to(torch.float64) + offset

    def about_mean(g: torch.Tensor, s: torch.Tensor, count: int) -> torch.Tensor:  # in place, as above
        v = s - count / 2 * offset  # s d^T + d s^T - n d d^T = v d^T + d v^T
        return g.addr_(v, offset, alpha=-1).addr_(offset, v, alpha=-1)

    rate_given_y = sum(
        _coding_rate(about_mean(g, sums[c], int(counts[c])), int(counts[c]), eps) for c, g in large.items()
    )
    small_classes = torch.nonzero(small).flatten()
    if small_classes.numel():
        rate_given_y = rate_given_y + _small_class_rates(x, y, counts, small_classes, mean, eps).sum()
    total = about_mean(total, sums.sum(0), n)
    return finite_float(_coding_rate(total, n, eps) - rate_given_y / n_classes, "transrate")


def _small_class_rates(
    x: torch.Tensor, y: torch.Tensor, counts: torch.Tensor, classes: torch.Tensor, mean: torch.Tensor, eps: float
) -> torch.Tensor:
    """R(Z_c) from the n_c x n_c Grams Z_c Z_c^T of the given classes, in batches of classes padded with zero rows
    (a zero row adds a unit eigenvalue to I + Z_c Z_c^T / a, and log 1 = 0)."""
    order = torch.argsort(y, stable=True)
    starts = torch.cumsum(counts, 0) - counts
    width = int(counts[classes].max())
    per_batch = max(1, _BATCH // (width * x.shape[1]))
    rates = []
    for i in range(0, classes.numel(), per_batch):
        batch = classes[i : i + per_batch]
        slot = torch.arange(width, device=x.device)
        valid = slot < counts[batch, None]  # classes x width
        idx = order[(starts[batch, None] + slot).clamp_max(order.numel() - 1)]
        z = (x[idx].to(torch.float64) - mean) * valid[..., None]  # classes x width x D, zero rows past n_c
        rates.append(_coding_rate(z @ z.transpose(1, 2), counts[batch], eps))
    return torch.cat(rates)
