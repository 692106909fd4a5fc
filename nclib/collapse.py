"""Neural-collapse diagnostics of Papyan, Han & Donoho, "Prevalence of neural collapse during the terminal
phase of deep learning training", PNAS 2020 (NC1-NC4), on penultimate embeddings.

Notation: h_i the D-dimensional embedding of sample i (N samples), y_i its class (C classes), mu_c the mean of
class c, mu_G = (1/C) sum_c mu_c the global mean, and M the C x D matrix of centred class means with rows
mu_c - mu_G. As in the authors' reference code, mu_G is the mean of the class means (the mean of all samples
when classes are balanced), so a simplex ETF is centred at the origin whatever the class sizes. Every
diagnostic is lower-is-better except ``nc4`` (agreement, higher is better); all are 0 (``nc4``: 1) at full
collapse onto a simplex equiangular tight frame.

Labels are remapped to 0..C-1 in sorted order: row c of ``weights`` is the class with the c-th smallest label.
"""

from __future__ import annotations

import torch

from nclib._checks import ArrayLike, as_tensor, check_features, check_labels, finite_float

_CHUNK = 8192  # rows per step: bounds the float64 temporaries to CHUNK x D


def _class_means(features: ArrayLike, labels: ArrayLike) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return (features, remapped labels, C x D float64 class means)."""
    x = check_features(features)
    y, n_classes = check_labels(labels, n=x.shape[0], device=x.device)
    counts = torch.bincount(y, minlength=n_classes).to(torch.float64)
    sums = torch.zeros(n_classes, x.shape[1], dtype=torch.float64, device=x.device)
    for start in range(0, x.shape[0], _CHUNK):
        sums.index_add_(0, y[start : start + _CHUNK], x[start : start + _CHUNK].to(torch.float64))
    return x, y, sums / counts[:, None]


def _centred(means: torch.Tensor) -> torch.Tensor:
    centred = means - means.mean(dim=0)
    if not bool(centred.abs().max() > 0):
        raise ValueError("all class means coincide: the embeddings carry no class information")
    return centred


def _nc1(x: torch.Tensor, y: torch.Tensor, means: torch.Tensor) -> float:
    # Sigma_B = M^T M / C = V S^2 V^T / C, so tr(Sigma_W Sigma_B^+) / C = (1/N) sum_i ||S^-1 V^T (h_i - mu_{y_i})||^2,
    # with the rank of M capped at C - 1 as in the reference code (M's rows sum to zero).
    _, s, vt = torch.linalg.svd(_centred(means), full_matrices=False)
    keep = (s > s[0] * max(means.shape) * torch.finfo(torch.float64).eps).nonzero().numel()
    keep = min(keep, means.shape[0] - 1)
    proj = vt[:keep].T / s[:keep]  # D x r
    total = torch.zeros((), dtype=torch.float64, device=x.device)
    for start in range(0, x.shape[0], _CHUNK):
        yc = y[start : start + _CHUNK]
        total += ((x[start : start + _CHUNK].to(torch.float64) - means[yc]) @ proj).square().sum()
    return finite_float(total / x.shape[0], "nc1")


def _nc2(means: torch.Tensor) -> dict[str, float]:
    m = _centred(means)
    norms = torch.linalg.vector_norm(m, dim=1)
    unit = m / norms[:, None]
    rows, cols = torch.triu_indices(m.shape[0], m.shape[0], offset=1, device=m.device)
    cos = (unit @ unit.T)[rows, cols]  # the C(C-1)/2 pairwise cosines
    return {
        "equinorm": finite_float(norms.std() / norms.mean(), "nc2 equinorm"),
        "equiangularity": finite_float(cos.std() if cos.numel() > 1 else 0.0, "nc2 equiangularity"),
        "angle_gap": finite_float((cos + 1 / (m.shape[0] - 1)).abs().mean(), "nc2 angle_gap"),
    }


def _nc3(means: torch.Tensor, weights: ArrayLike) -> float:
    m = _centred(means)
    w = check_features(weights, "weights").to(device=m.device, dtype=torch.float64)
    if w.shape != m.shape:
        raise ValueError(f"weights must be C x D = {tuple(m.shape)} (one row per class), got {tuple(w.shape)}")
    return finite_float((w / torch.linalg.norm(w) - m / torch.linalg.norm(m)).square().sum(), "nc3")


def _nc4(x: torch.Tensor, labels: ArrayLike, means: torch.Tensor, predictions: ArrayLike) -> float:
    p = as_tensor(predictions, "predictions")
    if p.ndim != 1 or p.shape[0] != x.shape[0] or p.is_floating_point():
        raise ValueError(
            f"predictions must be {x.shape[0]} integer class labels (1-D, same coding as labels), got "
            f"shape {tuple(p.shape)} and dtype {p.dtype}"
        )
    classes = torch.unique(as_tensor(labels, "labels")).to(x.device)
    sq_norms = means.square().sum(dim=1)
    agree = 0
    for start in range(0, x.shape[0], _CHUNK):
        # argmin_c ||h - mu_c||^2 = argmin_c (||mu_c||^2 - 2 h . mu_c)
        ncc = (sq_norms - 2 * x[start : start + _CHUNK].to(torch.float64) @ means.T).argmin(dim=1)
        agree += int((classes[ncc] == p[start : start + _CHUNK].to(x.device)).sum())
    return agree / x.shape[0]


def nc1(features: ArrayLike, labels: ArrayLike) -> float:
    """NC1 variability collapse: tr(Sigma_W Sigma_B^+) / C. Lower is more collapsed (0 at full collapse).

    Sigma_W = (1/N) sum_i (h_i - mu_{y_i})(h_i - mu_{y_i})^T (within-class covariance),
    Sigma_B = (1/C) sum_c (mu_c - mu_G)(mu_c - mu_G)^T (between-class covariance), + the Moore-Penrose
    pseudo-inverse (rank at most C - 1). Computed in the span of the class means without forming D x D matrices.

    features: N x D embeddings; labels: N integer classes (at least 2).
    """
    x, y, means = _class_means(features, labels)
    return _nc1(x, y, means)


def nc2(features: ArrayLike, labels: ArrayLike) -> dict[str, float]:
    """NC2 convergence to a simplex ETF, from the centred class means mu_c - mu_G. Each entry: lower is better.

    ``equinorm``: std_c ||mu_c - mu_G|| / avg_c ||mu_c - mu_G|| (coefficient of variation, sample std);
    ``equiangularity``: sample std of the C(C-1)/2 pairwise cosines cos(mu_c - mu_G, mu_c' - mu_G), c < c'
    (0 when C = 2: a single pair);
    ``angle_gap``: avg over pairs of |cos + 1/(C-1)|, the distance from the simplex angle.
    """
    _, _, means = _class_means(features, labels)
    return _nc2(means)


def nc3(features: ArrayLike, labels: ArrayLike, weights: ArrayLike) -> float:
    """NC3 self-duality: || W / ||W||_F - M / ||M||_F ||_F^2. Lower is better (0: classifier = class means).

    weights: C x D last-layer classifier weights, row c for the class with the c-th smallest label.
    In [0, 4].
    """
    _, _, means = _class_means(features, labels)
    return _nc3(means, weights)


def nc4(features: ArrayLike, labels: ArrayLike, predictions: ArrayLike) -> float:
    """NC4 simplification to the nearest class centre: fraction of samples where the network's prediction equals
    argmin_c ||h_i - mu_c||. Higher is better (1 at full collapse).

    predictions: N class labels predicted by the network, in the same coding as ``labels``.
    """
    x, _, means = _class_means(features, labels)
    return _nc4(x, labels, means, predictions)


def diagnostics(
    features: ArrayLike, labels: ArrayLike, weights: ArrayLike | None = None, predictions: ArrayLike | None = None
) -> dict[str, float]:
    """All of NC1-NC4 from one pass over the class means: keys ``nc1``, ``nc2_equinorm``,
    ``nc2_equiangularity``, ``nc2_angle_gap``, and ``nc3`` / ``nc4`` when ``weights`` / ``predictions`` are given.
    """
    x, y, means = _class_means(features, labels)
    out = {"nc1": _nc1(x, y, means), **{f"nc2_{k}": v for k, v in _nc2(means).items()}}
    if weights is not None:
        out["nc3"] = _nc3(means, weights)
    if predictions is not None:
        out["nc4"] = _nc4(x, labels, means, predictions)
    return out
