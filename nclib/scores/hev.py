"""HEV: held-out evidence with a size prior, a concrete score with the four properties of the paper's Section 5.2."""

from __future__ import annotations

import math

import numpy as np
import torch

from nclib._checks import ArrayLike, as_tensor, check_features, check_integers, check_labels, finite_float, is_constant
from nclib.scores._gram import moments

_MAX_ITER = 200
_TOL = 1e-10  # relative change of alpha / beta at which the fixed point has converged
_CLUSTER_DIMS = 64  # k-means runs on the coordinates on this many leading principal directions
_ALPHA_CAP = 1e100  # largest alpha / (beta max sigma): a head with prior precision beyond it is 0 to ~1e-100


def hev(
    features: ArrayLike,
    labels: ArrayLike | None,
    val_features: ArrayLike,
    val_labels: ArrayLike | None,
    n_params: int,
    *,
    n_clusters: int | None = None,
    size_prior: float = 0.5,
    seed: int = 0,
) -> float:
    """Held-out evidence with a size prior (this book's answer to Section 5.2 of Suresh et al.). Higher is better.

    ::

        HEV = E_train - max(0, E_train - E_val) - size_prior * ln(P) / N_train
            = min(E_train, E_val) - size_prior * ln(P) / N_train

    A Bayesian linear model t = F m + noise, prior m ~ N(0, I / alpha), noise ~ N(0, 1 / beta), is fitted to
    each target column t of the training split (features and targets centred on their training means; F holds
    the coordinates on the leading min(rank, N_train - 2) principal directions, i.e. all of them unless
    D >= N_train - 1, where the evidence would otherwise have no maximum);
    alpha and beta maximise the evidence by MacKay's fixed point (MacKay, Neural Computation 1992; LogME's model).

    * ``E_train``: the maximised log evidence per training sample, ln p(t | F, alpha, beta) / (N_train - 1) (the
      LogME term: how well the frozen features explain the target, with an Occam factor for the head; centring
      spends one sample, so the evidence is that of the N_train - 1 directions orthogonal to the constant);
    * ``E_val``: the mean log predictive density of the validation targets under the posterior fitted on the
      training split, ln N(t_j; f_j^T m, 1 / beta + f_j^T A^-1 f_j), A = alpha I + beta F^T F. Both are nats per
      sample of the same quantity, so ``E_train - E_val`` is the drop from training to validation data; only a
      drop is charged (a model that does better on validation keeps its training evidence);
    * ``size_prior * ln(P) / N_train``: a prior over the zoo, p(model) proportional to P^-size_prior (P: the
      backbone's parameter count), per training sample. It breaks near-ties in favour of smaller models and
      weighs more when the downstream data are few; 0 switches it off.

    The target decides the task, so the score does not depend on classification:

    * integer ``labels``: classification, one target column per class (one-hot);
    * floating ``labels`` (N): regression on the standardised target;
    * ``labels=None`` (and ``val_labels=None``): clustering; the targets are the one-hot assignments of k-means
      (``n_clusters`` clusters, ``seed``; Lloyd 1982) on the training features' coordinates on their 64 leading
      principal directions, and validation samples go to the nearest training centroid. E then measures how well
      the features carry their own cluster structure.

    E is averaged over target columns. HEV is unchanged by an orthogonal rotation, a common scaling or a shift
    of the features (alpha absorbs the scale, the centring the shift) and, in regression, by the target's units.

    features: N x D training embeddings, not all rows equal (``ValueError``); val_features: M x D validation
    embeddings of the same model; labels / val_labels: as above (classes: any integer codes; validation classes
    must occur in training); n_params: P >= 1.
    """
    terms = hev_terms(features, labels, val_features, val_labels, n_params, n_clusters=n_clusters,
                      size_prior=size_prior, seed=seed)  # fmt: skip
    return finite_float(min(terms["e_train"], terms["e_val"]) - terms["size_penalty"], "hev")


def hev_terms(
    features: ArrayLike,
    labels: ArrayLike | None,
    val_features: ArrayLike,
    val_labels: ArrayLike | None,
    n_params: int,
    *,
    n_clusters: int | None = None,
    size_prior: float = 0.5,
    seed: int = 0,
) -> dict[str, float]:
    """The three terms of :func:`hev` (same arguments): ``e_train`` and ``e_val`` (nats per sample, higher is
    better) and ``size_penalty`` = size_prior * ln(P) / N_train (nats per sample, subtracted)."""
    x = check_features(features).to(torch.float64)
    if x.shape[0] < 3:
        raise ValueError(f"hev needs at least 3 training samples, got {x.shape[0]}")
    if is_constant(x):
        raise ValueError("hev: every training sample has the same features (zero variance): there is nothing to fit")
    v = check_features(val_features, "val_features").to(device=x.device, dtype=torch.float64)
    if v.shape[1] != x.shape[1]:
        raise ValueError(f"val_features has {v.shape[1]} dimensions but features has {x.shape[1]}; same model?")
    if isinstance(n_params, bool) or not isinstance(n_params, int | np.integer) or n_params < 1:
        raise ValueError(f"n_params must be a positive integer (the model's parameter count), got {n_params!r}")
    if not (isinstance(size_prior, int | float) and math.isfinite(size_prior) and size_prior >= 0):
        raise ValueError(f"size_prior must be a finite number >= 0, got {size_prior!r}")
    mean = x.mean(0)
    x, v = x - mean, v - mean
    sigma, basis = _principal(x)
    t, t_val = _targets(x @ basis[:, -_CLUSTER_DIMS:], labels, v @ basis[:, -_CLUSTER_DIMS:], val_labels, n_clusters,
                        seed)  # fmt: skip
    e_train, e_val = _evidence(x, sigma, basis, t, v, t_val)
    return {"e_train": finite_float(e_train, "hev"), "e_val": finite_float(e_val, "hev"),
            "size_penalty": size_prior * math.log(n_params) / x.shape[0]}  # fmt: skip


def _targets(
    x: torch.Tensor, labels, v: torch.Tensor, val_labels, n_clusters: int | None, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Centred N x K training and M x K validation targets (one column per class, cluster or regression target);
    ``x`` and ``v`` (principal coordinates) serve k-means only."""
    if (labels is None) != (val_labels is None):
        raise ValueError("pass labels and val_labels both, or both as None (clustering)")
    if labels is None:
        from sklearn.cluster import KMeans

        if not isinstance(n_clusters, int) or not 2 <= n_clusters < x.shape[0]:
            raise ValueError(f"without labels, n_clusters must be an integer in 2..N-1, got {n_clusters!r}")
        km = KMeans(n_clusters, n_init=4, random_state=seed).fit(x.cpu().numpy())
        y, y_val = torch.from_numpy(km.labels_), torch.from_numpy(km.predict(v.cpu().numpy()))
        return _one_hot(y.to(x.device, torch.int64), y_val.to(x.device, torch.int64), n_clusters)
    if n_clusters is not None:
        raise ValueError("n_clusters is for labels=None (clustering); with labels the targets are given")
    raw, raw_val = as_tensor(labels, "labels"), as_tensor(val_labels, "val_labels")
    if raw.is_floating_point() != raw_val.is_floating_point():
        raise ValueError("labels and val_labels must both be classes (integers) or both regression targets (floats)")
    for name, r, n in (("labels", raw, x.shape[0]), ("val_labels", raw_val, v.shape[0])):
        if r.ndim != 1 or r.shape[0] != n:
            raise ValueError(f"{name} must be 1-D with one entry per sample ({n}), got shape {tuple(r.shape)}")
    if raw.is_floating_point():  # regression: standardise on the training split
        t, t_val = raw.to(x.device, torch.float64), raw_val.to(x.device, torch.float64)
        if not (bool(torch.isfinite(t).all()) and bool(torch.isfinite(t_val).all())):
            raise ValueError("regression targets contain NaN or inf")
        scale = t.std()
        if not scale > 0:
            raise ValueError("the training regression target is constant: there is nothing to predict")
        return ((t - t.mean()) / scale)[:, None], ((t_val - t.mean()) / scale)[:, None]
    raw, raw_val = check_integers(raw, "labels"), check_integers(raw_val, "val_labels")
    check_labels(raw, n=x.shape[0])
    classes = torch.unique(raw)
    y, y_val = torch.searchsorted(classes, raw), torch.searchsorted(classes, raw_val).clamp(max=classes.numel() - 1)
    unseen = torch.unique(raw_val[classes[y_val] != raw_val])
    if unseen.numel():
        raise ValueError(f"val_labels has class(es) {unseen.tolist()} that never occur in labels")
    return _one_hot(y.to(x.device), y_val.to(x.device), classes.numel())


def _one_hot(y: torch.Tensor, y_val: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    t = torch.nn.functional.one_hot(y, k).to(torch.float64)
    prior = t.mean(0)
    return t - prior, torch.nn.functional.one_hot(y_val, k).to(torch.float64) - prior


def _principal(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues (k x 1, ascending) and directions (D x k) of the centred F^T F, k = min(rank, N - 2).

    The head sees the features' coordinates on these leading principal directions (all of them unless
    D >= N - 1): with k = N - 1 the centred features could fit any target exactly, the noise precision would grow
    without bound and the evidence would have no maximum.
    """
    n, d = x.shape
    if n > d:  # eigenvectors of F^T F directly
        sigma, basis = torch.linalg.eigh(moments(x)[1])
    else:  # right singular vectors F^T u / sqrt(sigma) from the N x N Gram F F^T
        sigma, u = torch.linalg.eigh(moments(x.T)[1])
        basis = x.T @ u / sigma.clamp(min=1e-300).sqrt()
    keep = torch.nonzero(sigma > sigma.max() * 1e-12).flatten()[-(n - 2) :]  # eigh sorts ascending
    return sigma[keep][:, None], basis[:, keep]


def _evidence(
    x: torch.Tensor, sigma: torch.Tensor, basis: torch.Tensor, t: torch.Tensor, v: torch.Tensor, t_val: torch.Tensor
) -> tuple[float, float]:
    """(E_train, E_val) averaged over target columns, given the principal directions of :func:`_principal`.

    Centring spends one of the N training samples (the intercept), so the evidence is that of the N - 1 directions
    orthogonal to the constant vector. When the features explain a target no better than noise, the maximum is at
    alpha -> inf (the head m = 0): alpha is capped at 1e100 beta max(sigma), where the head's contribution to the
    evidence is below 1e-100, and k log alpha - sum log(alpha + beta sigma) is summed as -sum log1p(beta sigma / alpha)
    so that the limit stays finite.
    """
    dof = x.shape[0] - 1
    z = basis.T @ (x.T @ t)  # k x K: coordinates of F^T t
    tt = (t**2).sum(0)
    alpha = torch.ones(t.shape[1], dtype=torch.float64, device=x.device)
    beta = alpha.clone()
    for _ in range(_MAX_ITER):
        mt = beta * z / (alpha + beta * sigma)  # posterior mean on the principal directions, k x K
        m2, res2 = (mt**2).sum(0), tt - 2 * (mt * z).sum(0) + (sigma * mt**2).sum(0)
        gamma = (beta * sigma / (alpha + beta * sigma)).sum(0)
        alpha_new = torch.minimum(gamma / m2, _ALPHA_CAP * beta * sigma.max())  # gamma / 0 = inf: capped too
        beta_new = (dof - gamma) / res2.clamp(min=1e-300)
        step = torch.maximum((alpha_new - alpha).abs() / alpha, (beta_new - beta).abs() / beta)
        alpha, beta = alpha_new, beta_new
        if bool((step <= _TOL).all()):
            break
    mt = beta * z / (alpha + beta * sigma)
    m2, res2 = (mt**2).sum(0), tt - 2 * (mt * z).sum(0) + (sigma * mt**2).sum(0)
    log_det_ratio = torch.log1p(beta * sigma / alpha).sum(0)  # log det(alpha I + beta F^T F) - k log alpha
    e_train = (dof * torch.log(beta) - beta * res2 - alpha * m2 - log_det_ratio) / 2 / dof
    e_train = e_train - math.log(2 * math.pi) / 2

    p = v @ basis  # M x k: validation features on the same principal directions
    var = 1 / beta + (p**2) @ (1 / (alpha + beta * sigma))  # M x K predictive variance
    e_val = -0.5 * (torch.log(2 * math.pi * var) + (t_val - p @ mt) ** 2 / var).mean(0)
    return float(e_train.mean()), float(e_val.mean())
