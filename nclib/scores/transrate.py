"""TransRate: coding-rate gain of the features over the class-conditional coding rates (Huang et al.)."""

from __future__ import annotations

import torch

from nclib._checks import ArrayLike, check_features, check_labels, finite_float
from nclib.scores._gram import blocks, moments


def _coding_rate(scatter: torch.Tensor, n: int, eps: float) -> torch.Tensor:
    """R = 1/2 logdet(I + Z^T Z / (n eps)) given the scatter Z^T Z of n rows."""
    a = scatter / (n * eps)
    a.diagonal().add_(1.0)
    return torch.linalg.cholesky(a).diagonal().log().sum()


def transrate(features: ArrayLike, labels: ArrayLike, eps: float = 1e-4) -> float:
    """TransRate (Huang et al., ICML 2022): TrR = R(Z) - (1/C) sum_c R(Z_c). Higher is better.

    Follows the official code (as in ``tllib/ranking/transrate.py`` of
    github.com/thuml/Transfer-Learning-Library): Z is the features minus their global mean (no other
    normalisation), Z_c the rows of Z in class c (not re-centred), and the coding rate of an n x D
    matrix is R(Z) = 1/2 logdet(I + Z^T Z / (n eps)) -- with 1 / (n eps), not the paper's
    D / (n eps^2).

    All scatters come from float64 per-class Grams of the roughly centred rows (their sum is the full
    Gram); the log-determinants use float64 Cholesky. A float32 Gram moves TransRate by up to 1e-4
    relative on ill-conditioned features and can make I + Z^T Z / (n eps) indefinite.
    features: N x D (D > N allowed); labels: N integer classes.
    """
    if not eps > 0:
        raise ValueError(f"eps must be positive, got {eps}")
    x = check_features(features)
    y, n_classes = check_labels(labels, n=x.shape[0], device=x.device)
    n = x.shape[0]
    shift = x.mean(0)  # rough centring before the Grams; the exact mean is summed in float64
    mean = sum(b.sum(0) for _, b in blocks(x, shift=shift)) / n
    total = torch.zeros(x.shape[1], x.shape[1], dtype=torch.float64, device=x.device)
    rate_given_y = 0.0
    for c, count in enumerate(torch.bincount(y, minlength=n_classes).tolist()):
        sums, g = moments(x, rows=torch.nonzero(y == c).flatten(), shift=shift)
        total += g
        cross = torch.outer(sums[0], mean)
        scatter = g - cross - cross.T + count * torch.outer(mean, mean)  # sum_{i in c} (x_i - mu)(x_i - mu)^T
        rate_given_y += _coding_rate(scatter, count, eps)
    rate = _coding_rate(total - n * torch.outer(mean, mean), n, eps)
    return finite_float(rate - rate_given_y / n_classes, "transrate")
