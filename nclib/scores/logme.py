"""LogME: log maximum evidence of a Bayesian linear model on the features (You et al.)."""

from __future__ import annotations

import math
import warnings
from typing import Literal

import torch

from nclib._checks import ArrayLike, check_features, check_labels, finite_float
from nclib.scores._gram import moments

# exact=True: a grid over log(alpha / beta) in steps of 0.25, e^25 beyond the eigenvalues, and 40 golden-section
# steps in the best grid point's bracket (log(alpha / beta) to 2e-9)
_GRID_STEP, _GRID_PAD, _GOLDEN_STEPS = 0.25, 25.0, 40


def _eigh(g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenpairs of a PSD Gram; |eigenvalues| are its singular values, as the reference's SVD returns."""
    evals, evecs = torch.linalg.eigh(g)
    return evals.abs(), evecs


def logme(
    features: ArrayLike,
    labels: ArrayLike,
    method: Literal["fixed_point", "icml"] = "fixed_point",
    exact: bool = False,
) -> float:
    """LogME (You et al., ICML 2021; JMLR 2022 "Ranking and Tuning Pre-trained Models"). Higher is better.

    For each class c, the one-hot target y_c (N) is fitted by y = F m + noise with prior
    m ~ N(0, I / alpha) and noise ~ N(0, I / beta). With sigma_i the eigenvalues of F^T F and
    x = u^T y_c its coordinates in the left singular basis, alpha and beta maximise the evidence
    (Eq. 2 of the JMLR paper; log N(y_c | 0, I / beta + F F^T / alpha))

        L = D/2 log alpha + N/2 log beta - 1/2 sum_{i=1..D} log(alpha + beta sigma_i)
            - beta/2 ||y_c - F m||^2 - alpha/2 ||m||^2 - N/2 log(2 pi),

    and LogME = mean_c L_c / N. ``method="fixed_point"`` is the JMLR fixed-point iteration
    (at most 11 steps, stop when alpha/beta moves by <= 1e-3 relative); ``"icml"`` the original
    ICML iteration (stop at < 1e-2; 1e-5 added to both squared norms in L). Both reproduce
    ``LogME.py`` of github.com/thuml/LogME, quirks included: the fixed-point code keeps only
    sqrt(sigma) > 1e-10 when N > D and, when D >= N, sums the log term over the N singular values
    only; the ICML code always sums it over all D eigenvalues of F^T F.

    The fixed-point quirk matters when D >= N: the D - N zero eigenvalues, which contribute
    -(D - N)/2 log alpha, are left out while D/2 log alpha is kept, so the score grows with D - N and
    no longer is an evidence (two Gaussian classes of 40, D = 200: 7.51 where the evidence is 0.60). In
    that regime this method warns (``UserWarning``). ``exact=True`` returns the exact maximised evidence
    instead, with the log term over all D eigenvalues (each zero one contributing log alpha), no 1e-5
    added anywhere and no fixed point: beta is profiled out in closed form and the evidence maximised over
    alpha / beta (see ``_max_evidence``). When D >= N that maximum is often the noise-free limit
    beta -> inf, which the fixed point can only chase. For N > D with F of full rank the exact value differs
    from the default only by the default's stopping rule and 1e-5 terms (~1e-6 relative).

    One eigendecomposition serves all classes: of the D x D Gram F^T F when N > D, else of the
    N x N Gram F F^T (the thin SVD of F). Gram, eigendecomposition and evidence are float64: a
    float32 Gram or eigh moves LogME by up to 1e-3 relative on ill-conditioned (e.g. ReLU) features.

    features: N x D (not centred, as in the reference; constant nonzero rows give a finite score, all-zero
    features a ``ValueError``); labels: N integer classes (any integer codes).
    """
    if method not in ("fixed_point", "icml"):
        raise ValueError(f"method must be 'fixed_point' or 'icml', got {method!r}")
    if exact and method != "fixed_point":
        raise ValueError("exact=True replaces the reference iteration; use it with method='fixed_point'")
    x = check_features(features)
    y, n_classes = check_labels(labels, n=x.shape[0], device=x.device)
    n, d = x.shape
    if d >= n and method == "fixed_point" and not exact:
        warnings.warn(
            f"logme: D = {d} >= N = {n}: like the reference code, the log-determinant is summed over the N nonzero "
            "eigenvalues while D/2 log alpha counts all D, which inflates the score with D - N (it is no longer an "
            "evidence and favours wide features); reduce D with PCA below N, or pass exact=True for the exact "
            "evidence",
            UserWarning,
            stacklevel=2,
        )
    counts = torch.bincount(y, minlength=n_classes).to(torch.float64)

    if n > d:  # sigma, w = (v_i^T F^T y_c)^2 = sigma_i x_i^2 from the D x D Gram
        sums, g = moments(x, y, n_classes)
        sigma, v = _eigh(g)
        w = (v.T @ sums.T) ** 2
        x2 = None
    else:  # x = U^T y_c from the N x N Gram; U is square, so ||y_c||^2 = sum_i x_i^2
        sigma, u = _eigh(moments(x.T)[1])
        x2 = torch.zeros(n_classes, n, dtype=torch.float64, device=x.device).index_add_(0, y, u).T ** 2
        w = sigma[:, None] * x2
    if not bool((sigma > 0).any()):
        raise ValueError("logme: the features are all zero, so the evidence has no maximum (alpha -> 0)")
    if exact:
        return finite_float(_max_evidence(sigma, w, x2, counts).mean() / n, "logme")

    if x2 is None:
        if method == "fixed_point":
            keep = sigma.sqrt() > 1e-10
            if not bool(keep.any()):
                raise ValueError(
                    f"logme: every singular value of the features (largest {float(sigma.max().sqrt()):.3g}) is below "
                    "the reference's cut-off 1e-10; rescale the features, or pass exact=True"
                )
            sigma, w = sigma[keep], w[keep]

        def residual(t):  # ||y_c - F m||^2 with m the posterior mean for alpha / beta = t
            return counts - (w * (2 * t + sigma[:, None]) / (t + sigma[:, None]) ** 2).sum(0)
    else:

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


def _max_evidence(sigma: torch.Tensor, w: torch.Tensor, x2: torch.Tensor | None, counts: torch.Tensor) -> torch.Tensor:
    """The exact maximised log evidence of each class (``exact=True``), C values.

    With t = alpha / beta, the evidence is maximised over beta in closed form, beta = N / q(t) with
    q(t) = y_c^T (I + F F^T / t)^-1 y_c = ||y_c - F m||^2 + t ||m||^2, which leaves the profile

        L(t) = N/2 log(N / q(t)) - N/2 - 1/2 sum_{i=1..D} log(1 + sigma_i / t) - N/2 log(2 pi)

    (the D/2 log alpha cancels against the D eigenvalues' log alpha; a zero eigenvalue adds nothing).
    L is evaluated on a grid of log t spanning the nonzero eigenvalues by e^25 either side, where it is flat
    to ~1e-11, and its best point refined by golden-section search. q(t) is ||y_c||^2 - sum_i w_i / (sigma_i + t)
    from the D x D Gram (``x2`` None), sum_i x_i^2 t / (t + sigma_i) from the N x N one: the noise-free limit
    t -> 0, where the supremum lies when D >= N and F F^T is invertible, loses no digits. If the supremum is that
    limit while F has rank < N, y_c lies in the span of the features and the evidence is unbounded: ``ValueError``.
    """
    n = int(counts.sum())
    sigma = torch.where(sigma > sigma.max() * max(n, sigma.numel()) * torch.finfo(sigma.dtype).eps, sigma, 0.0)
    positive = sigma > 0
    if x2 is None:
        base, coef = counts, -torch.where(positive[:, None], w, 0.0)

        def kernel(t: torch.Tensor) -> torch.Tensor:
            return 1 / (sigma + t[:, None])
    else:
        base, coef = torch.zeros_like(counts), x2

        def kernel(t: torch.Tensor) -> torch.Tensor:
            return t[:, None] / (t[:, None] + sigma)

    def evidence(q: torch.Tensor, log_det: torch.Tensor) -> torch.Tensor:
        return (n * torch.log(n / q) - n - log_det - n * math.log(2 * math.pi)) / 2

    def at(u: torch.Tensor) -> torch.Tensor:  # L at a per-class log t
        t = u.exp()
        return evidence(base + (kernel(t) * coef.T).sum(1), torch.log1p(sigma / t[:, None]).sum(1))

    lo, hi = math.log(float(sigma[positive].min())) - _GRID_PAD, math.log(float(sigma.max())) + _GRID_PAD
    u = torch.arange(lo, hi + _GRID_STEP, _GRID_STEP, dtype=sigma.dtype, device=sigma.device)
    t = u.exp()
    grid = evidence(base + kernel(t) @ coef, torch.log1p(sigma / t[:, None]).sum(1, keepdim=True))  # G x C
    best = grid.argmax(0)
    unbounded = torch.nonzero(best == 0).flatten().tolist()
    if unbounded and int(positive.sum()) < n:
        raise ValueError(
            f"logme(exact=True): the one-hot target of class(es) {unbounded} (after remapping to 0..C-1) lies in the "
            "span of the features, so the evidence grows without bound as the noise vanishes (beta -> inf)"
        )
    a, b = u[(best - 1).clamp_min(0)], u[(best + 1).clamp_max(u.numel() - 1)]
    ratio = (math.sqrt(5) - 1) / 2
    for _ in range(_GOLDEN_STEPS):
        left, right = b - ratio * (b - a), a + ratio * (b - a)
        keep_left = at(left) >= at(right)
        a, b = torch.where(keep_left, a, left), torch.where(keep_left, right, b)
    return torch.maximum(at((a + b) / 2), grid.max(0).values)
