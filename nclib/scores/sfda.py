"""SFDA of Shao et al., "Not All Models Are Equal: Predicting Model Transferability in a Self-challenging
Fisher Space", ECCV 2022 (reference: github.com/TencentARC/SFDA, ``metrics.py``, ``SFDA_Score``)."""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch

from nclib._checks import ArrayLike, check_features, check_labels, check_min_per_class, finite_float, is_constant
from nclib.scores._gram import gram_sum

_CHUNK = 8192  # rows per step: bounds the float64 temporaries to CHUNK x D


def _blocks(x: torch.Tensor, y: torch.Tensor, mix: tuple | None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield float64 row blocks of ``x``; with ``mix = (w, outer)`` the ConfMix rows w x + (1 - w) outer[y]."""
    for start in range(0, x.shape[0], _CHUNK):
        xb, yb = x[start : start + _CHUNK].to(torch.float64), y[start : start + _CHUNK]
        if mix is not None:
            w = mix[0][start : start + _CHUNK, None]
            xb = torch.lerp(mix[1][yb], xb, w)  # w x + (1 - w) outer[y]
        yield xb, yb


def _largest_eigenvalue(a: torch.Tensor) -> float:
    """The reference's ``iterative_A``: 3 doubled power-iteration steps from the row sums of ``a``."""
    v = a.sum(dim=1)
    for _ in range(3):
        u = a @ v
        u = u / torch.linalg.vector_norm(u)
        v = a @ u
        v = v / torch.linalg.vector_norm(v)
    return float(v @ a @ u)


def _fisher_probs(
    x: torch.Tensor, y: torch.Tensor, counts: torch.Tensor, mix: tuple | None, shrinkage: float | None
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Class posteriors of the regularised Fisher (LDA) classifier; returns (probs N x C, class means, shrinkage).

    Sw = sum_c pi_c Cov_c (biased), Sw_l = (1 - l) Sw + l tr(Sw)/D I with l = max(exp(-5 lambda_max(Sw)), 1e-10)
    unless given. The reference classifies in the full Fisher space (all generalised eigenvectors V of
    (Sb, Sw_l), V^T Sw_l V = I), so its weights M V V^T equal M Sw_l^-1: logits_c = x Sw_l^-1 mu_c
    - mu_c Sw_l^-1 mu_c / 2 + log pi_c.
    """
    n, d = x.shape
    means = torch.zeros(counts.shape[0], d, dtype=torch.float64, device=x.device)
    for xb, yb in _blocks(x, y, mix):
        means.index_add_(0, yb, xb)
    means /= counts[:, None]
    sw = gram_sum(xb - means[yb] for xb, yb in _blocks(x, y, mix)) / n
    if shrinkage is None:
        shrinkage = max(math.exp(-5 * _largest_eigenvalue(sw)), 1e-10)
    sw_shrunk = (1 - shrinkage) * sw
    sw_shrunk.diagonal().add_(shrinkage * sw.trace() / d)
    chol, info = torch.linalg.cholesky_ex(sw_shrunk)
    if info:
        raise ValueError("sfda: the shrunk within-class covariance is singular (constant features?)")
    coef = torch.cholesky_solve(means.T, chol).T  # C x D
    intercept = -0.5 * (means * coef).sum(dim=1) + torch.log(counts / n)
    logits = torch.cat([xb @ coef.T for xb, _ in _blocks(x, y, mix)]) + intercept
    return torch.softmax(logits, dim=1), means, shrinkage


def sfda(features: ArrayLike, labels: ArrayLike) -> float:
    """SFDA score (Shao et al., ECCV 2022): mean probability of the true class in a self-challenged Fisher space.

    Higher is better. Follows ``SFDA_Score`` of the reference code, which is deterministic:

    1. Fit the regularised Fisher classifier (adaptive shrinkage l, see ``_fisher_probs``) and take
       p_i = softmax(softmax(logits_i))_{y_i} (the reference softens the posteriors with a second softmax).
    2. ConfMix: x~_i = p_i x_i + (1 - p_i) mu_out_{y_i}, mu_out_c = mean of the other C - 1 class means.
    3. Refit on x~ with the same l; score = (1/N) sum_i p(y_i | x~_i) (the reference omits the log).

    features: N x D embeddings (D > N allowed; constant features, every row equal, whose within-class covariance
    is 0, give a ``ValueError``); labels: N integer classes (any integer codes), at least 2 samples per class.
    """
    x = check_features(features)
    y, n_classes = check_labels(labels, n=x.shape[0], device=x.device)
    counts = check_min_per_class(y, n_classes, score="sfda").to(torch.float64)
    if is_constant(x):
        raise ValueError("sfda: the features are constant (every row equal): the within-class covariance is singular")
    rows = torch.arange(x.shape[0], device=x.device)

    probs, means, shrinkage = _fisher_probs(x, y, counts, None, None)
    confidence = torch.softmax(probs, dim=1)[rows, y]
    outer = (means.sum(dim=0) - means) / (n_classes - 1)
    probs, _, _ = _fisher_probs(x, y, counts, (confidence, outer), shrinkage)
    return finite_float(probs[rows, y].mean(), "sfda")
