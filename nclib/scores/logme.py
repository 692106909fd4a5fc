"""LogME: log maximum evidence of a Bayesian linear model on the features (You et al.)."""

from __future__ import annotations

import math
from typing import Literal

import torch

from nclib._checks import ArrayLike, check_features, check_labels, finite_float
from nclib.scores._gram import moments


def _eigh(g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenpairs of a PSD Gram; |eigenvalues| are its singular values, as the reference's SVD returns."""
    evals, evecs = torch.linalg.eigh(g)
    return evals.abs(), evecs


def logme(features: ArrayLike, labels: ArrayLike, method: Literal["fixed_point", "icml"] = "fixed_point") -> float:
    """LogME (You et al., ICML 2021; JMLR 2022 "Ranking and Tuning Pre-trained Models"). Higher is better.

    For each class c, the one-hot target y_c (N) is fitted by y = F m + noise with prior
    m ~ N(0, I / alpha) and noise ~ N(0, I / beta). With sigma_i the eigenvalues of F^T F and
    x = u^T y_c its coordinates in the left singular basis, alpha and beta maximise the evidence

        L = D/2 log alpha + N/2 log beta - 1/2 sum_i log(alpha + beta sigma_i)
            - beta/2 ||y_c - F m||^2 - alpha/2 ||m||^2 - N/2 log(2 pi),

    and LogME = mean_c L_c / N. ``method="fixed_point"`` is the JMLR fixed-point iteration
    (at most 11 steps, stop when alpha/beta moves by <= 1e-3 relative); ``"icml"`` the original
    ICML iteration (stop at < 1e-2; 1e-5 added to both squared norms in L). Both reproduce
    ``LogME.py`` of github.com/thuml/LogME, quirks included: the fixed-point code keeps only
    sqrt(sigma) > 1e-10 when N > D and, when D >= N, sums the log term over the N singular values
    only; the ICML code always sums it over all D eigenvalues of F^T F.

    One eigendecomposition serves all classes: of the D x D Gram F^T F when N > D, else of the
    N x N Gram F F^T (the thin SVD of F). Gram, eigendecomposition and evidence are float64: a
    float32 Gram or eigh moves LogME by up to 1e-3 relative on ill-conditioned (e.g. ReLU) features.

    features: N x D (not centred, as in the reference); labels: N integer classes.
    """
    if method not in ("fixed_point", "icml"):
        raise ValueError(f"method must be 'fixed_point' or 'icml', got {method!r}")
    x = check_features(features)
    y, n_classes = check_labels(labels, n=x.shape[0], device=x.device)
    n, d = x.shape
    counts = torch.bincount(y, minlength=n_classes).to(torch.float64)

    if n > d:  # sigma, w = (v_i^T F^T y_c)^2 = sigma_i x_i^2 from the D x D Gram
        sums, g = moments(x, y, n_classes)
        sigma, v = _eigh(g)
        w = (v.T @ sums.T) ** 2
        if method == "fixed_point":
            keep = sigma.sqrt() > 1e-10
            sigma, w = sigma[keep], w[keep]

        def residual(t):  # ||y_c - F m||^2 with m the posterior mean for alpha / beta = t
            return counts - (w * (2 * t + sigma[:, None]) / (t + sigma[:, None]) ** 2).sum(0)
    else:  # x = U^T y_c from the N x N Gram; U is square, so ||y_c||^2 = sum_i x_i^2
        sigma, u = _eigh(moments(x.T)[1])
        x2 = torch.zeros(n_classes, n, dtype=torch.float64, device=x.device).index_add_(0, y, u).T ** 2
        w = sigma[:, None] * x2

        def residual(t):
            return (x2 * (t / (t + sigma[:, None])) ** 2).sum(0)

    tol, eps = (1e-3, 0.0) if method == "fixed_point" else (1e-2, 1e-5)
    alpha = torch.ones(n_classes, dtype=torch.float64, device=x.device)
    beta, m2, res2 = alpha.clone(), alpha.clone(), alpha.clone()
    active = torch.ones(n_classes, dtype=torch.bool, device=x.device)
    s = sigma[:, None]
    for _ in range(11):
        t = alpha / beta
        gamma = (s / (s + t)).sum(0)
        m2_new, res2_new = (w / (t + s) ** 2).sum(0), residual(t)
        alpha_new, beta_new = gamma / (m2_new + 1e-5), (n - gamma) / (res2_new + 1e-5)
        alpha, beta = torch.where(active, alpha_new, alpha), torch.where(active, beta_new, beta)
        m2, res2 = torch.where(active, m2_new, m2), torch.where(active, res2_new, res2)
        ratio = (alpha_new / beta_new - t).abs() / t
        active &= ~((ratio <= tol) if method == "fixed_point" else (ratio < tol))
        if not bool(active.any()):
            break

    log_det = torch.log(alpha + beta * s).sum(0)
    if method == "icml":  # the reference sums over all D eigenvalues of F^T F; the rest are zero
        log_det = log_det + (d - sigma.numel()) * torch.log(alpha)
    evidence = (
        d / 2 * torch.log(alpha)
        + n / 2 * torch.log(beta)
        - log_det / 2
        - beta / 2 * (res2 + eps)
        - alpha / 2 * (m2 + eps)
        - n / 2 * math.log(2 * math.pi)
    ) / n
    return finite_float(evidence.mean(), "logme")
