"""NCTI of Wang et al., "How Far Pre-trained Models Are from Neural Collapse on the Target Dataset Informs their
Transferability", ICCV 2023 (reference: github.com/BUserName/NCTI, ``metrics.py`` ``NCTI_Score`` and the zoo
normalisation in ``evaluate_metric_group1_cpu.py``)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

from nclib._checks import ArrayLike, check_features, check_labels, check_min_per_class, finite_float, is_constant
from nclib.scores._gram import blocks, gram, moments, top_eigh

_PCA_DIM = 64  # PCA(n_components=64) in the reference
_TOL = 1e-4  # rank tolerance of sklearn's LinearDiscriminantAnalysis (svd solver)


def _pca(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact PCA to 64 dimensions in float64: (scores N x 64, explained variances with ddof 1, descending)."""
    n, d = x.shape
    if d <= n:  # the D x D scatter in one blocked pass about a rough mean, moved to the exact mean
        shift = x.mean(dim=0)
        sums, g = moments(x, shift=shift)
        offset = sums[0] / n
        evals, evecs = top_eigh(g - n * torch.outer(offset, offset), _PCA_DIM)
        z = torch.cat([b @ evecs for _, b in blocks(x, shift=shift.to(torch.float64) + offset)])
    else:
        xc = x.to(torch.float64)
        xc = xc - xc.mean(dim=0)
        evals, u = top_eigh(gram(xc.T), _PCA_DIM)
        z = u * evals.clamp_min(0).sqrt()
    return z, evals / (n - 1)


def _lda_eigen(z: torch.Tensor, y: torch.Tensor, means: torch.Tensor, priors: torch.Tensor, shrinkage: float):
    """sklearn LDA(solver='eigen', shrinkage=a): (transform N x (C-1), posteriors N x C).

    Sw and St are the biased within-class and total covariances, each shrunk to (1 - a) S + a tr(S)/k I;
    the transform uses the generalised eigenvectors V of (St - Sw, Sw), V^T Sw V = I, largest first.
    """
    n, k = z.shape
    eye = torch.eye(k, dtype=z.dtype, device=z.device)

    def shrink(s: torch.Tensor) -> torch.Tensor:
        return (1 - shrinkage) * s + shrinkage * s.trace() / k * eye

    xw = z - means[y]
    zc = z - z.mean(dim=0)
    sw, st = shrink(xw.T @ xw / n), shrink(zc.T @ zc / n)
    chol, info = torch.linalg.cholesky_ex(sw)
    if info:
        raise ValueError("ncti: the shrunk within-class covariance is singular (constant features?)")
    a = torch.linalg.solve_triangular(chol, st - sw, upper=False)
    a = torch.linalg.solve_triangular(chol, a.T, upper=False)  # L^-1 Sb L^-T
    evecs = torch.linalg.solve_triangular(chol.T, torch.linalg.eigh(a)[1].flip(1), upper=True)
    coef = torch.cholesky_solve(means.T, chol).T  # means Sw^-1 = means V V^T
    logits = z @ coef.T - 0.5 * (means * coef).sum(dim=1) + priors.log()
    return z @ evecs[:, : means.shape[0] - 1], torch.softmax(logits, dim=1)


def _lda_svd(z: torch.Tensor, y: torch.Tensor, means: torch.Tensor, priors: torch.Tensor):
    """sklearn LDA(solver="svd"), as in scikit-learn <= 1.8: (transform N x min(rank, C - 1), posteriors N x C).

    The within-class data are scaled by 1 / sqrt(N - C) (unbiased covariance; scikit-learn 1.9 switched to
    1 / sqrt(N)); singular values below 1e-4 (within) and 1e-4 x the largest (between) are dropped.
    """
    n, n_classes = z.shape[0], means.shape[0]
    xw = z - means[y]
    std = xw.std(dim=0, correction=0)
    std[std == 0] = 1.0
    _, s, vt = torch.linalg.svd(xw / std / math.sqrt(n - n_classes), full_matrices=False)
    rank = int((s > _TOL).sum())
    scalings = (vt[:rank] / std).T / s[:rank]
    xbar = priors @ means
    centres = ((n * priors / (n_classes - 1)).sqrt()[:, None] * (means - xbar)) @ scalings
    _, s, vt = torch.linalg.svd(centres, full_matrices=False)
    scalings = scalings @ vt[: int((s > _TOL * s[0]).sum())].T
    coef = (means - xbar) @ scalings
    logits = (z - xbar) @ scalings @ coef.T - 0.5 * (coef**2).sum(dim=1) + priors.log()
    return ((z - xbar) @ scalings)[:, : n_classes - 1], torch.softmax(logits, dim=1)


def _nuclear_norm_sum(probs: torch.Tensor, y: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """sum_c ||P_c||_*, P_c the rows of ``probs`` of class c: one batched SVD of the P_c padded with zero rows
    to the largest class (a zero row leaves the singular values unchanged)."""
    order = torch.argsort(y, stable=True)
    sizes = counts.long()
    starts = torch.cumsum(sizes, 0) - sizes
    slot = torch.arange(int(sizes.max()), device=y.device)
    idx = order[(starts[:, None] + slot).clamp_max(order.numel() - 1)]  # classes x largest class
    padded = probs[idx] * (slot < sizes[:, None])[..., None]
    return torch.linalg.svdvals(padded).sum()


def _ncti_terms(x: torch.Tensor, y: torch.Tensor, counts: torch.Tensor) -> tuple[float, float, float]:
    """The reference's three per-model terms: (||Z~||_*, mean p(y_i | x_i), log sum_c ||P_c||_*)."""
    z, explained = _pca(x)
    priors = counts / counts.sum()
    means = torch.zeros(counts.shape[0], z.shape[1], dtype=z.dtype, device=z.device).index_add_(0, y, z)
    means /= counts[:, None]
    shrinkage = max(math.exp(-float(explained[:32].sum())), 1e-10)
    if shrinkage == 1e-10:
        low, probs = _lda_svd(z, y, means, priors)
    else:
        low, probs = _lda_eigen(z, y, means, priors, shrinkage)
    seli = torch.linalg.matrix_norm(low - low.mean(dim=0), ord="nuc")
    ncc = probs[torch.arange(z.shape[0], device=z.device), y].mean()
    vc = _nuclear_norm_sum(probs, y, counts)
    return float(seli), float(ncc), math.log(float(vc))


def ncti(features_by_model: Mapping[str, ArrayLike], labels: ArrayLike) -> dict[str, float]:
    """NCTI (Wang et al., ICCV 2023) of every model in a zoo on one labelled target set. Higher is better.

    For each model the reference reduces the features to 64 dimensions by PCA, fits sklearn's LDA
    (solver 'svd' when the top-32 PCA variances sum to at least ln 1e10 = 23.03, else 'eigen' with
    shrinkage exp(-that sum)), and takes three terms:

    - seli: nuclear norm of the centred LDA projection (simplex-ETF / class-separation term);
    - ncc: mean LDA posterior of the true class (nearest-centre classifier term);
    - vc: log sum_c ||P_c||_*, P_c the posteriors of class c's samples (within-class variability term).

    Each term is min-max normalised across the zoo, and NCTI = ncc~ + seli~ - vc~ (in [-1, 2]).
    PCA here is exact; the reference's sklearn PCA switches to unseeded randomized SVD on large inputs.

    features_by_model: model name -> N x D_m embeddings of the same N samples, min(N, D_m) >= 64;
    labels: N integer classes (any integer codes), at least 2 samples per class. Needs at least 2 models.
    ``ValueError`` when a model's features are constant (its shrunk within-class covariance is 0) or a term is
    equal for every model (e.g. all models classify the target perfectly, ncc = 1): its normalisation is 0 / 0.
    """
    if len(features_by_model) < 2:
        raise ValueError(f"ncti normalises its terms across models and needs at least 2, got {len(features_by_model)}")
    feats = {name: check_features(x, f"features_by_model[{name!r}]") for name, x in features_by_model.items()}
    n = next(iter(feats.values())).shape[0]
    y, n_classes = check_labels(labels, n=n)
    counts = check_min_per_class(y, n_classes, score="ncti").to(torch.float64)
    terms = {}
    for name, x in feats.items():
        if x.shape[0] != n:
            raise ValueError(f"features_by_model[{name!r}] has {x.shape[0]} rows but there are {n} labels")
        if min(x.shape) < _PCA_DIM:
            raise ValueError(f"ncti reduces features to {_PCA_DIM} dims by PCA: needs N, D >= 64, got {tuple(x.shape)}")
        if is_constant(x):
            raise ValueError(f"ncti: features_by_model[{name!r}] are constant (every row equal): the within-class "
                             "covariance is singular")  # fmt: skip
        terms[name] = _ncti_terms(x, y.to(x.device), counts.to(x.device))
    table = torch.tensor(list(terms.values()), dtype=torch.float64)  # models x (seli, ncc, vc)
    low, span = table.min(dim=0).values, table.max(dim=0).values - table.min(dim=0).values
    if bool((span == 0).any()):
        raise ValueError("an NCTI term is identical for every model, so its min-max normalisation is undefined")
    norm = (table - low) / span
    return {name: finite_float(norm[i, 1] + norm[i, 0] - norm[i, 2], "ncti") for i, name in enumerate(terms)}
