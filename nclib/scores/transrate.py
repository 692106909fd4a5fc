"""TransRate: coding-rate gain of the features over the class-conditional coding rates (Huang et al.)."""

from __future__ import annotations

import torch

from nclib._checks import ArrayLike, check_features, check_labels, finite_float
from nclib.scores._gram import blocks, gram, moments


def _coding_rate(scatter: torch.Tensor, n: int, eps: float) -> torch.Tensor:
    """R = 1/2 logdet(I + S / (n eps)) given the scatter S = Z^T Z (or Z Z^T) of n rows."""
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

    All scatters are float64, of the rows minus their float64 mean, formed in row blocks (the full scatter
    is the sum of the per-class ones); the log-determinants use float64 Cholesky. A class with n_c <= D
    rows takes the n_c x n_c Gram instead: det(I_D + Z_c^T Z_c / a) = det(I_n + Z_c Z_c^T / a) (Sylvester),
    so many small classes cost no D x D factorisation each. A float32 Gram moves TransRate by up to 1e-4
    relative on ill-conditioned features and can make I + Z^T Z / (n eps) indefinite.
    features: N x D (D > N allowed); labels: N integer classes.
    """
    if not eps > 0:
        raise ValueError(f"eps must be positive, got {eps}")
    x = check_features(features)
    y, n_classes = check_labels(labels, n=x.shape[0], device=x.device)
    n, d = x.shape
    shift = x.mean(0)  # rough mean, refined in float64
    mean = shift.to(torch.float64) + sum(b.sum(0) for _, b in blocks(x, shift=shift)) / n
    counts = torch.bincount(y, minlength=n_classes)
    # the scatter of all rows of the small classes in one blocked pass; the large classes add theirs below
    total = moments(x, rows=torch.nonzero(counts[y] <= d).flatten(), shift=mean)[1]
    rate_given_y = 0.0
    for c, count in enumerate(counts.tolist()):
        rows = torch.nonzero(y == c).flatten()
        if count <= d:
            z = x[rows].to(torch.float64) - mean
            rate_given_y += _coding_rate(gram(z.T), count, eps)  # Z_c Z_c^T, n_c x n_c
        else:
            scatter = moments(x, rows=rows, shift=mean)[1]  # sum_{i in c} (x_i - mu)(x_i - mu)^T
            total += scatter
            rate_given_y += _coding_rate(scatter, count, eps)
    return finite_float(_coding_rate(total, n, eps) - rate_given_y / n_classes, "transrate")
