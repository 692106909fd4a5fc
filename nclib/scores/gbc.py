"""GBC: Gaussian Bhattacharyya Coefficient class separability (Pandy et al.)."""

from __future__ import annotations

import torch

from nclib._checks import ArrayLike, check_features, check_labels, check_min_per_class, finite_float
from nclib.scores._gram import blocks, moments, top_eigh


def gbc(features: ArrayLike, labels: ArrayLike, pca_dim: int = 64) -> float:
    """GBC (Pandy et al., CVPR 2022): - sum_{c != c'} exp(-D_B(c, c')). Higher is better (<= 0).

    Follows the authors' code (github.com/google-research/google-research,
    ``stable_transfer/transferability/gbc.py`` with its default ``gaussian_type='spherical'`` and
    ``pca_reduction=64``): the features are reduced by PCA to k = min(pca_dim, D, N - 1) dimensions;
    class c is the Gaussian N(mu_c, s_c I) with mu_c its mean and s_c the mean over the k dimensions of
    its per-dimension variances (biased, each floored at 1e-4). Between two classes, with s = (s_c + s_c') / 2,

        D_B = ||mu_c - mu_c'||^2 / (8 s) + 1/2 (log s - 1/2 log s_c - 1/2 log s_c'),

    the log terms as in the reference (not multiplied by k). The sum runs over ordered pairs.

    The PCA basis is the top-k eigenvectors of the D x D scatter, formed and decomposed in the input dtype
    (the reference itself casts the PCA output to float32), blocks summed in float64.
    features: N x D (D > N allowed; constant features, every row equal, give -C (C - 1): all classes coincide);
    labels: N integer classes (any integer codes), at least 2 samples per class. Not scale invariant (the
    variance floor is absolute): features far below 1e-2 in scale tend to the constant-feature value -C (C - 1).
    """
    if pca_dim < 1:
        raise ValueError(f"pca_dim must be a positive integer, got {pca_dim}")
    x = check_features(features)
    y, n_classes = check_labels(labels, n=x.shape[0], device=x.device)
    counts = check_min_per_class(y, n_classes, score="gbc").to(torch.float64)
    n, d = x.shape
    k = min(pca_dim, d, n - 1)
    shift = x.mean(0)  # rough centring before the Gram; the exact mean comes from the float64 sums
    sums, g = moments(x, shift=shift, dtype=x.dtype)
    mean = sums[0] / n
    scatter = g - n * torch.outer(mean, mean)
    basis = top_eigh(scatter.to(x.dtype), k)[1]  # D x k, top-k principal axes

    centre = mean.to(x.dtype) @ basis
    zsum = torch.zeros(n_classes, k, dtype=torch.float64, device=x.device)
    zsq = torch.zeros_like(zsum)
    for s, b in blocks(x, shift=shift, dtype=x.dtype):
        z = (b @ basis - centre).to(torch.float64)
        zsum.index_add_(0, y[s], z)
        zsq.index_add_(0, y[s], z**2)
    mu = zsum / counts[:, None]
    var = torch.clamp(zsq / counts[:, None] - mu**2, min=1e-4).mean(1)  # spherical: mean per-dimension variance

    avg = (var[:, None] + var[None, :]) / 2
    log_var = var.log()
    sq_dist = torch.cdist(mu, mu, compute_mode="donot_use_mm_for_euclid_dist") ** 2
    dist = sq_dist / (8 * avg) + 0.5 * (avg.log() - 0.5 * log_var[:, None] - 0.5 * log_var[None, :])
    coef = torch.exp(-dist)
    return finite_float(-(coef.sum() - coef.diagonal().sum()), "gbc")
