"""H-score (Bao et al.) and its Ledoit-Wolf regularised form (Ibrahim et al.)."""

from __future__ import annotations

import warnings

import torch

from nclib._checks import ArrayLike, check_features, check_labels, finite_float
from nclib.scores._gram import blocks, moments


def _trace_pinv(cov: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """tr(B^T pinv(cov) B) for symmetric cov: Cholesky when positive definite, else numpy's pinv (rcond 1e-15)."""
    chol, info = torch.linalg.cholesky_ex(cov)
    if int(info) == 0:
        return (torch.linalg.solve_triangular(chol, b, upper=False) ** 2).sum()
    evals, evecs = torch.linalg.eigh(cov)
    big = evals.abs() > 1e-15 * evals.abs().max()
    inv = torch.where(big, 1 / torch.where(big, evals, 1.0), 0.0)
    return (inv[:, None] * (evecs.T @ b) ** 2).sum()


def hscore(features: ArrayLike, labels: ArrayLike, shrinkage: bool = False) -> float:
    """H-score (Bao et al., ICIP 2019): H = tr(pinv(cov(f)) cov(E[f | y])). Higher is better.

    cov(f) is the sample covariance of the features (ddof 1) and cov(E[f | y]) that of each sample's
    class mean, (1 / (N - 1)) sum_c n_c (mu_c - mu)(mu_c - mu)^T, as in ``h_score`` of
    github.com/thuml/Transfer-Learning-Library (``tllib/ranking/hscore.py``).

    ``shrinkage=True``: the regularised H-score of Ibrahim, Ponomareva & Mazumder ("Newer is not always
    better", ICLR 2023), following ``regularized_h_score`` of the same file: cov(f) is replaced by the
    Ledoit-Wolf estimate (1 - a) S + a tr(S)/D I (S the biased covariance, a the Ledoit-Wolf shrinkage of
    ``sklearn.covariance.LedoitWolf``) and H_a = tr(inv(cov_a) (1 - a) cov(E[f | y])).

    When D >= N - 1 (and the centred features have rank N - 1), cov(f) is invertible on the span of the
    centred samples, which holds every class-mean offset, so H = C - 1 for any features: every such model
    ties. ``hscore`` then warns (``UserWarning``); reduce D below N - 1 (e.g. PCA) or use ``shrinkage=True``.
    Constant features (every row equal) give H = 0: both covariances are 0 (exactly: the features are centred on
    their rough mean before the Gram), with either form.

    One float64-accumulated Gram of the centred features gives both covariances.
    features: N x D (D > N allowed); labels: N integer classes (any integer codes).
    """
    x = check_features(features)
    y, n_classes = check_labels(labels, n=x.shape[0], device=x.device)
    n, d = x.shape
    if d >= n - 1 and not shrinkage:
        warnings.warn(
            f"hscore: D = {d} >= N - 1 = {n - 1}: the sample covariance is singular and its pseudo-inverse makes "
            f"H-score equal C - 1 = {n_classes - 1} for any features of full rank, so every such model ties; "
            "reduce D below N - 1 (e.g. with PCA), or use shrinkage=True (hscore_shrink)",
            UserWarning,
            stacklevel=2,
        )
    counts = torch.bincount(y, minlength=n_classes).to(torch.float64)
    shift = x.mean(0)  # rough centring before the Gram; the exact mean comes from the float64 sums
    sums, g = moments(x, y, n_classes, shift=shift)
    mean = sums.sum(0) / n
    scatter = g - n * torch.outer(mean, mean)  # sum_i (x_i - mu)(x_i - mu)^T
    # cov(E[f|y]) = B B^T with columns sqrt(n_c / (N - 1)) (mu_c - mu)
    b = ((sums / counts[:, None] - mean) * (counts[:, None] / (n - 1)).sqrt()).T
    if not shrinkage:
        return finite_float(_trace_pinv(scatter / (n - 1), b), "hscore")

    emp = scatter / n
    trace = emp.trace()
    frob = (emp**2).sum()
    fourth = 0.0  # sum_i ||x_i - mu||^4, the other moment of the Ledoit-Wolf shrinkage
    for _, blk in blocks(x, shift=shift.to(torch.float64) + mean):
        fourth += float((torch.linalg.vector_norm(blk, dim=1) ** 4).sum())
    lw_delta = float(frob - trace**2 / d) / d  # sklearn's ledoit_wolf_shrinkage
    lw_beta = min((fourth / n - float(frob)) / (d * n), lw_delta)
    a = 0.0 if lw_beta == 0 else lw_beta / lw_delta
    cov = (1 - a) * emp
    cov.diagonal().add_(a * trace / d)
    return finite_float((1 - a) * _trace_pinv(cov, b), "hscore")
