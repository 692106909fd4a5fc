"""LEEP (Nguyen et al. 2020), N-LEEP (Li et al. 2021) and NCE (Tran et al. 2019)."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.mixture import GaussianMixture

from nclib._checks import ArrayLike, as_tensor, check_features, check_labels, check_probs, finite_float, is_constant

_CHUNK = 1 << 20  # elements per block of source probabilities (8 MiB in float64)


def leep(source_probs: ArrayLike, labels: ArrayLike) -> float:
    """Log Expected Empirical Prediction, Nguyen et al., ICML 2020, Eq. 2. Higher is better; always <= 0.

    P(y, z) = (1/N) sum_i theta(x_i)_z [y_i = y],  P(y | z) = P(y, z) / P(z),
    LEEP = (1/N) sum_i log sum_z P(y_i | z) theta(x_i)_z.

    A source class z with P(z) = 0 has theta(x_i)_z = 0 for every sample, so its P(y | z) never
    contributes; it is set to 0 rather than 0/0. Uninformative probabilities (every row equal) give
    LEEP = (1/N) sum_i log P(y_i) = -H(Y), the empirical label entropy.

    source_probs: N x Z source-model probabilities (rows sum to 1 within 1e-3; float16 and integer one-hot
    rows are upcast to float64); labels: N integer target classes (any integer codes).
    """
    theta = check_probs(source_probs)
    y, n_classes = check_labels(labels, n=theta.shape[0], device=theta.device)
    n = theta.shape[0]
    # the joint accumulated in float64 over row blocks (each cast in cache); then each sample's EEP
    # sum_z P(y_i | z) theta(x_i)_z from one product in theta's dtype (in float32: ~1e-7 relative)
    step = max(1, _CHUNK // theta.shape[1])
    joint = torch.zeros(n_classes, theta.shape[1], dtype=torch.float64, device=theta.device)
    for s in range(0, n, step):
        joint.index_add_(0, y[s : s + step], theta[s : s + step].to(torch.float64))
    joint /= n  # P(y, z)
    p_z = joint.sum(dim=0)
    cond = joint / p_z.clamp_min(torch.finfo(torch.float64).tiny)  # P(y | z); 0 (not 0/0) where P(z) = 0
    eep = (theta @ cond.T.to(theta.dtype)).gather(1, y[:, None]).to(torch.float64)
    log_eep = torch.log(eep).sum()
    return finite_float(log_eep / n, "leep")


def nleep(
    features: ArrayLike, labels: ArrayLike, n_components_per_class: int = 5, variance: float = 0.8, seed: int = 0
) -> float:
    """Gaussian LEEP (N-LEEP), Li et al., Ranking Neural Checkpoints, CVPR 2021. Higher is better; <= 0.

    PCA keeping ``variance`` of the variance, a Gaussian mixture with ``n_components_per_class * C``
    full-covariance components (sklearn's default, as in the public reference TencentARC/SFDA
    ``metrics.py``), then LEEP with the mixture posteriors p(component | x) in place of the source
    classifier's theta(x). Unlike that reference, which averages P(y_i | x_i), this keeps LEEP's log.
    Seeded by ``seed`` and deterministic on CPU.

    features: N x D embeddings, not all rows equal (constant features leave PCA nothing to keep: ``ValueError``),
    at least ``n_components_per_class * C`` of them; labels: N integer classes (any integer codes).
    Not scale invariant: sklearn's covariance regulariser (1e-6) is absolute, so features far below unit scale
    collapse into one component (N-LEEP -> -H(Y), the uninformative value), and far above it a component holding
    one or two samples makes the fit fail with sklearn's ``ValueError`` ("ill-defined empirical covariance").
    """
    x = check_features(features)
    y, n_classes = check_labels(labels, n=x.shape[0])
    if is_constant(x):
        raise ValueError("nleep: every sample has the same features (zero variance), so PCA has no direction to keep")
    n_components = n_components_per_class * n_classes
    if x.shape[0] < n_components:
        raise ValueError(
            f"nleep fits {n_components} mixture components ({n_components_per_class} per class) "
            f"but there are only {x.shape[0]} samples"
        )
    reduced = PCA(n_components=variance, random_state=seed).fit_transform(x.cpu().numpy())
    reduced = reduced.astype(np.float64)
    gmm = GaussianMixture(n_components=n_components, random_state=seed).fit(reduced)
    return leep(gmm.predict_proba(reduced), y)


def nce(source_labels: ArrayLike, labels: ArrayLike) -> float:
    """Negative Conditional Entropy, Tran, Nguyen & Hassner, ICCV 2019. Higher is better; always <= 0.

    NCE = -H(Y | Z) = sum_{y, z} P(y, z) log P(y | z), from the empirical joint of the target labels Y
    and the source pseudo-labels Z (e.g. the argmax of the source model's probabilities).

    source_labels: N integer source classes (any integer codes; one class is allowed, giving NCE = -H(Y));
    labels: N integer target classes (any integer codes).
    """
    y, n_classes = check_labels(labels)
    z = _check_source_labels(source_labels, n=y.shape[0]).to(y.device)
    n_source = int(z.max()) + 1
    joint = torch.bincount(y * n_source + z, minlength=n_classes * n_source).reshape(n_classes, n_source)
    joint = joint.to(torch.float64) / y.shape[0]
    p_z = joint.sum(dim=0, keepdim=True)
    return finite_float(torch.xlogy(joint, joint / p_z).sum(), "nce")  # joint > 0 implies p_z > 0


def _check_source_labels(z: ArrayLike, n: int) -> torch.Tensor:
    """Integer source pseudo-labels of length ``n``, remapped to 0..Z-1 (a single class is allowed)."""
    t = as_tensor(z, "source_labels")
    if t.ndim != 1 or t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise ValueError(
            f"source_labels must be a 1-D array of integer classes (e.g. argmax of the source probabilities), "
            f"got shape {tuple(t.shape)} and dtype {t.dtype}"
        )
    if t.shape[0] != n:
        raise ValueError(f"source_labels has {t.shape[0]} entries but there are {n} labels; lengths must match")
    return torch.unique(t.to(torch.int64), return_inverse=True)[1]  # no unique kernel for unsigned int32 / 64
