"""Straightforward numpy versions of every registered score: the baseline of ``bench_scores.py``.

Each follows the authors' public reference code step by step (loops over classes, explicit covariances,
SVD / pinv / slogdet / generalised eigh, scikit-learn PCA, LDA and mixtures), rewritten here in plain numpy:

    nc            per-class norms and a loop over class pairs (Eq. 2 of the paper)
    leep, nce     tllib/ranking/leep.py, nce.py (github.com/thuml/Transfer-Learning-Library)
    nleep         NLEEP of TencentARC/SFDA metrics.py (PCA 80 %, GaussianMixture), with LEEP's log kept
    logme         LogME._fit_fixed_point of thuml/LogME LogME.py (SVD of F^T F when N > D, else of F)
    hscore(_shrink)  h_score / regularized_h_score of tllib/ranking/hscore.py (np.cov, pinv, LedoitWolf)
    transrate     tllib/ranking/transrate.py (slogdet per class)
    gbc           google-research stable_transfer/transferability/gbc.py (PCA, loop over ordered class pairs)
    sfda          SFDA_Score of TencentARC/SFDA metrics.py (per-class np.cov, scipy generalised eigh, ConfMix)
    ncti          NCTI_Score of BUserName/NCTI metrics.py plus its min-max normalisation across the zoo

Deviations, each needed for an exact (1e-6) comparison: features are cast to float64 first (the LogME and
regularised H-score references do so; in float32 the others are only float32-accurate); NCTI's PCA is
exact (scikit-learn's ``covariance_eigh`` solver: above ~500 rows the reference's default switches to an
unseeded randomized SVD; GBC's reference already asks for the exact full SVD) and its LDA 'svd' solver is
written out as in scikit-learn <= 1.8 (1.9 rescaled its within-class data); LEEP guards empty source
classes (0 instead of 0 / 0).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import scipy.linalg
from sklearn.covariance import LedoitWolf
from sklearn.decomposition import PCA
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.mixture import GaussianMixture


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _class_mean_matrix(f: np.ndarray, y: np.ndarray) -> np.ndarray:
    """N x D matrix whose row i is the mean of sample i's class (tllib's ``g``)."""
    g = np.zeros_like(f)
    for c in np.unique(y):
        g[y == c] = f[y == c].mean(axis=0)
    return g


def nc(features: np.ndarray, labels: np.ndarray) -> float:
    """sum_c mean_{i in c} ||e_i - mu_c|| / sum_{c < c'} ||mu_c - mu_c'||; lower is better."""
    means, spreads = [], []
    for c in np.unique(labels):
        xc = features[labels == c].astype(np.float64)
        mu = xc.mean(axis=0)
        spreads.append(np.linalg.norm(xc - mu, axis=1).mean())
        means.append(mu)
    between = 0.0
    for a in range(len(means)):
        for b in range(a + 1, len(means)):
            between += np.linalg.norm(means[a] - means[b])
    return float(sum(spreads) / between)


def nc_demo(features: np.ndarray, labels: np.ndarray) -> float:
    """The authors' demo: mean_i ||e_i - mu_{y_i}|| over the mean ||mu_c - mu_c'|| of ordered pairs c != c'."""
    means = {c: features[labels == c].astype(np.float64).mean(axis=0) for c in np.unique(labels)}
    within = np.mean([np.linalg.norm(x.astype(np.float64) - means[y]) for x, y in zip(features, labels, strict=True)])
    return float(within / np.mean([np.linalg.norm(means[a] - means[b]) for a in means for b in means if a != b]))


def leep(source_probs: np.ndarray, labels: np.ndarray) -> float:
    """mean_i log sum_z P(y_i | z) theta(x_i)_z with the empirical joint P(y, z)."""
    theta = np.asarray(source_probs, dtype=np.float64)
    n = theta.shape[0]
    classes, y = np.unique(labels, return_inverse=True)
    joint = np.zeros((len(classes), theta.shape[1]))
    for c in range(len(classes)):
        joint[c] = (theta[y == c] / n).sum(axis=0)
    p_z = joint.sum(axis=0, keepdims=True)
    cond = np.divide(joint, p_z, out=np.zeros_like(joint), where=p_z > 0).T  # P(y | z), Z x C
    prediction = theta @ cond
    return float(np.mean(np.log(np.array([row[c] for row, c in zip(prediction, y, strict=True)]))))


def nce(source_labels: np.ndarray, labels: np.ndarray) -> float:
    """-H(Y | Z) from the empirical joint of target labels and source pseudo-labels."""
    z = np.unique(source_labels, return_inverse=True)[1]
    y = np.unique(labels, return_inverse=True)[1]
    n = len(y)
    joint = np.zeros((y.max() + 1, z.max() + 1))
    for s, t in zip(z, y, strict=True):
        joint[t, s] += 1.0 / n
    entropy = 0.0
    for s in range(joint.shape[1]):
        p_s = joint[:, s].sum()
        cond = joint[:, s][joint[:, s] > 0] / p_s
        entropy -= p_s * np.sum(cond * np.log(cond))
    return float(-entropy)


def nleep(features: np.ndarray, labels: np.ndarray, seed: int = 0) -> float:
    """PCA keeping 80 % of the variance, a GaussianMixture with 5 components per class, LEEP on its posteriors."""
    reduced = PCA(n_components=0.8, random_state=seed).fit_transform(np.asarray(features)).astype(np.float64)
    mixture = GaussianMixture(n_components=5 * len(np.unique(labels)), random_state=seed).fit(reduced)
    return leep(mixture.predict_proba(reduced), labels)


def logme(features: np.ndarray, labels: np.ndarray) -> float:
    """LogME, fixed-point iteration of the JMLR version, evidence per class divided by N, mean over classes."""
    f = np.asarray(features, dtype=np.float64)
    n, d = f.shape
    if n > d:  # singular vectors of F from the SVD of F^T F, keeping singular values > 1e-10
        _, s2, vh = np.linalg.svd(f.T @ f)
        s = np.sqrt(s2)
        k = int(np.sum(s > 1e-10))
        s, vh = s[:k], vh[:k]
        u = (f @ vh.T) / s
    else:
        u, s, vh = np.linalg.svd(f, full_matrices=False)
    sigma = s**2
    evidences = []
    for c in np.unique(labels):
        yc = (labels == c).astype(np.float64)
        x2 = (u.T @ yc) ** 2
        rest = yc @ yc - x2.sum()  # the part of y_c outside the span of U
        alpha = beta = 1.0
        for _ in range(11):
            t = alpha / beta
            gamma = np.sum(sigma / (sigma + t))
            m2 = np.sum(sigma * x2 / (t + sigma) ** 2)
            res2 = np.sum(x2 / (1 + sigma / t) ** 2) + rest
            alpha, beta = gamma / (m2 + 1e-5), (n - gamma) / (res2 + 1e-5)
            if abs(alpha / beta - t) / t <= 1e-3:
                break
        evidence = (
            d / 2 * np.log(alpha)
            + n / 2 * np.log(beta)
            - 0.5 * np.sum(np.log(alpha + beta * sigma))
            - beta / 2 * res2
            - alpha / 2 * m2
            - n / 2 * np.log(2 * np.pi)
        )
        evidences.append(evidence / n)
    return float(np.mean(evidences))


def hscore(features: np.ndarray, labels: np.ndarray) -> float:
    """tr(pinv(cov f) cov(E[f | y]))."""
    f = np.asarray(features, dtype=np.float64)
    cov_f = np.cov(f, rowvar=False)
    cov_g = np.cov(_class_mean_matrix(f, labels), rowvar=False)
    return float(np.trace(np.linalg.pinv(cov_f, rcond=1e-15) @ cov_g))


def hscore_shrink(features: np.ndarray, labels: np.ndarray) -> float:
    """tr(pinv(cov_a) (1 - a) cov(E[f | y])), cov_a the Ledoit-Wolf covariance with shrinkage a."""
    f = np.asarray(features, dtype=np.float64)
    f = f - f.mean(axis=0)
    lw = LedoitWolf(assume_centered=False).fit(f)
    cov_g = np.cov(_class_mean_matrix(f, labels), rowvar=False)
    return float(np.trace(np.linalg.pinv(lw.covariance_, rcond=1e-15) @ ((1 - lw.shrinkage_) * cov_g)))


def transrate(features: np.ndarray, labels: np.ndarray, eps: float = 1e-4) -> float:
    """R(Z) - mean_c R(Z_c), R(Z) = 1/2 logdet(I + Z^T Z / (n eps)), Z the globally centred features."""

    def rate(z: np.ndarray) -> float:
        n, d = z.shape
        return 0.5 * np.linalg.slogdet(np.eye(d) + z.T @ z / (n * eps))[1]

    f = np.asarray(features, dtype=np.float64)
    f = f - f.mean(axis=0)
    classes = np.unique(labels)
    return float(rate(f) - sum(rate(f[labels == c]) for c in classes) / len(classes))


def gbc(features: np.ndarray, labels: np.ndarray, pca_dim: int = 64) -> float:
    """-sum over ordered class pairs of exp(-Bhattacharyya distance) of spherical Gaussians after PCA."""
    f = np.asarray(features, dtype=np.float64)
    k = min(pca_dim, f.shape[1], f.shape[0] - 1)
    z = PCA(n_components=k, svd_solver="full").fit_transform(f)
    classes = np.unique(labels)
    mean = {c: z[labels == c].mean(axis=0) for c in classes}
    var = {c: np.maximum(z[labels == c].var(axis=0), 1e-4).mean() for c in classes}
    total = 0.0
    for a in classes:
        for b in classes:
            if a != b:
                s = (var[a] + var[b]) / 2
                distance = np.sum((mean[a] - mean[b]) ** 2) / s / 8
                distance += 0.5 * (np.log(s) - 0.5 * np.log(var[a]) - 0.5 * np.log(var[b]))
                total -= np.exp(-distance)
    return float(total)


def _shrunk(cov: np.ndarray, shrinkage: float) -> np.ndarray:
    return (1 - shrinkage) * cov + shrinkage * np.trace(cov) / cov.shape[0] * np.eye(cov.shape[0])


def _fisher_probs(x: np.ndarray, y: np.ndarray, shrinkage: float | None) -> tuple[np.ndarray, np.ndarray, float]:
    """SFDA's regularised Fisher classifier fitted and applied on (x, y): (posteriors, class means, shrinkage)."""
    n_classes = y.max() + 1
    priors = np.bincount(y) / len(y)
    means = np.zeros((n_classes, x.shape[1]))
    np.add.at(means, y, x)
    means /= np.bincount(y)[:, None]
    sw = np.zeros((x.shape[1], x.shape[1]))
    for c in range(n_classes):
        sw += priors[c] * np.cov(x[y == c], rowvar=False, bias=True)
    if shrinkage is None:  # 3 doubled power-iteration steps for the largest eigenvalue of Sw
        v = sw.sum(axis=1)
        for _ in range(3):
            u = sw @ v
            u /= np.linalg.norm(u)
            v = sw @ u
            v /= np.linalg.norm(v)
        shrinkage = max(np.exp(-5 * (v @ sw @ u)), 1e-10)
    st = _shrunk(np.cov(x, rowvar=False, bias=True), shrinkage)
    sw = _shrunk(sw, shrinkage)
    evals, evecs = scipy.linalg.eigh(st - sw, sw)
    evecs = evecs[:, np.argsort(evals)[::-1]]
    coef = means @ evecs @ evecs.T
    intercept = -0.5 * np.diag(means @ coef.T) + np.log(priors)
    return _softmax(x @ coef.T + intercept), means, shrinkage


def sfda(features: np.ndarray, labels: np.ndarray) -> float:
    """Mean true-class posterior of the Fisher classifier refitted on ConfMix features."""
    x = np.array(features, dtype=np.float64)  # a copy: ConfMix overwrites it
    y = np.unique(labels, return_inverse=True)[1]
    n_classes = y.max() + 1
    probs, means, shrinkage = _fisher_probs(x, y, None)
    probs = np.exp(probs) / np.exp(probs).sum(axis=1, keepdims=True)
    for c in range(n_classes):
        idx = np.where(y == c)[0]
        w = probs[idx, c][:, None]
        outer = (means.sum(axis=0) - means[c]) / (n_classes - 1)
        x[idx] = w * x[idx] + (1 - w) * outer
    probs, _, _ = _fisher_probs(x, y, shrinkage)
    return float(probs[np.arange(len(y)), y].mean())


def _lda_svd(z: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn <= 1.8 LinearDiscriminantAnalysis(solver='svd'): (fit_transform, predict_proba)."""
    n, n_classes = len(y), y.max() + 1
    priors = np.bincount(y) / n
    means = np.stack([z[y == c].mean(axis=0) for c in range(n_classes)])
    within = np.concatenate([z[y == c] - means[c] for c in range(n_classes)])
    std = within.std(axis=0)
    std[std == 0] = 1.0
    _, s, vt = np.linalg.svd(within / std / np.sqrt(n - n_classes), full_matrices=False)
    rank = int(np.sum(s > 1e-4))
    scalings = (vt[:rank] / std).T / s[:rank]
    xbar = priors @ means
    centres = (np.sqrt(n * priors / (n_classes - 1)) * (means - xbar).T).T @ scalings
    _, s, vt = np.linalg.svd(centres, full_matrices=False)
    scalings = scalings @ vt.T[:, : int(np.sum(s > 1e-4 * s[0]))]
    coef = (means - xbar) @ scalings
    intercept = -0.5 * np.sum(coef**2, axis=1) + np.log(priors)
    coef = coef @ scalings.T
    intercept -= xbar @ coef.T
    return ((z - xbar) @ scalings)[:, : n_classes - 1], _softmax(z @ coef.T + intercept)


def _ncti_terms(features: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """NCTI_Score's (nuclear norm of the centred LDA projection, mean true-class posterior, log sum_c ||P_c||_*)."""
    pca = PCA(n_components=64, svd_solver="covariance_eigh")
    z = pca.fit_transform(np.asarray(features, dtype=np.float64))
    shrinkage = max(np.exp(-pca.explained_variance_[:32].sum()), 1e-10)
    if shrinkage == 1e-10:
        low, probs = _lda_svd(z, y)
    else:
        lda = LinearDiscriminantAnalysis(solver="eigen", shrinkage=float(shrinkage))
        low = lda.fit_transform(z, y)
        probs = lda.predict_proba(z)
    low = low - low.mean(axis=0, keepdims=True)
    seli = np.linalg.norm(low, ord="nuc")
    ncc = np.sum(probs[np.arange(len(y)), y]) / len(y)
    vc = sum(np.linalg.norm(probs[y == c], ord="nuc") for c in range(y.max() + 1))
    return float(seli), float(ncc), float(np.log(vc))


def ncti(features_by_model: Mapping[str, np.ndarray], labels: np.ndarray) -> dict[str, float]:
    """Per model ncc~ + seli~ - vc~, each term min-max normalised across the zoo."""
    y = np.unique(labels, return_inverse=True)[1]
    terms = {name: _ncti_terms(x, y) for name, x in features_by_model.items()}
    table = np.array(list(terms.values()))
    norm = (table - table.min(axis=0)) / (table.max(axis=0) - table.min(axis=0))
    return {name: float(norm[i, 1] + norm[i, 0] - norm[i, 2]) for i, name in enumerate(terms)}


NAIVE = {
    "nc": nc,
    "nc_demo": nc_demo,
    "leep": leep,
    "nleep": nleep,
    "nce": nce,
    "logme": logme,
    "hscore": hscore,
    "hscore_shrink": hscore_shrink,
    "transrate": transrate,
    "gbc": gbc,
    "sfda": sfda,
    "ncti": ncti,
}
