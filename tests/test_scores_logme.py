"""Tests for nclib.scores.logme: the authors' LogME.py, a naive primal implementation, the exact evidence against
scipy, the D >= N warning, invariances, bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from expect import warns_if as _warns_if
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import pinned
from scipy import linalg, optimize

from nclib.scores import logme

WIDE = "logme: D = .* >= N = "  # the warning of the reference-compatible score when D >= N


def warns_if(expected: bool, match: str = WIDE):
    """``expect.warns_if`` with this file's warning as the default."""
    return _warns_if(expected, match)


def blobs(seed: int, counts: list[int], dim: int, spread: float):
    """Gaussian classes: unit noise around centres drawn with scale ``spread``; labels shuffled."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.repeat(np.arange(len(counts)), counts))
    centres = spread * rng.normal(size=(len(counts), dim))
    return rng.normal(size=(labels.size, dim)) + centres[labels], labels


def relu(seed: int, counts: list[int], dim: int, rank: int = 16):
    """ReLU of a rank-``rank`` class-structured signal with decaying scales plus 0.01 noise: non-negative,
    non-centred and ill-conditioned, like CNN embeddings."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.repeat(np.arange(len(counts)), counts))
    latent = rng.normal(size=(labels.size, rank)) + 1.5 * rng.normal(size=(len(counts), rank))[labels]
    mix = rng.normal(size=(rank, dim)) / np.arange(1, rank + 1)[:, None]
    return np.maximum(latent @ mix + 0.5 + 0.01 * rng.normal(size=(labels.size, dim)), 0.0), labels


CASES = {
    "ten_classes": (blobs, (0, [60] * 10, 64, 1.0), np.float64),
    "d_gt_n": (blobs, (1, [40, 50, 30], 500, 0.5), np.float64),
    "binary": (blobs, (2, [250, 150], 32, 0.3), np.float64),
    "imbalanced_relu": (relu, (6, [500, 60, 12, 200], 128), np.float64),
    "d_gt_n_relu": (relu, (5, [30, 20, 25, 25], 256), np.float64),
    "float32_relu": (relu, (4, [80] * 10, 96), np.float32),
    "n_eq_d": (blobs, (11, [10, 10], 20, 1.0), np.float64),
    "few_samples": (blobs, (12, [10, 12, 8], 100, 1.0), np.float64),
}


def case(name: str):
    f, args, dtype = CASES[name]
    x, y = f(*args)
    return x.astype(dtype), y


# (fixed_point, icml) from LogME.py of github.com/thuml/LogME at commit 56551ca94a3295bcc37e6a01b1291911af985f07,
# run outside this project (numba) as LogME().fit(x.astype(float64), y) and, for "icml", with _fit = _fit_icml;
# x, y = case(name) (float32_relu: the float32 matrix, cast to float64 by the reference). The values are
# tests/reference/pins.json["logme"], written by tests/reference/regenerate.py, which reruns it and records the
# versions used.
REFERENCE = pinned("logme", CASES)


def naive_logme(f: np.ndarray, y: np.ndarray, method: str) -> float:
    """Class-by-class evidence maximisation in the primal: explicit posterior mean and log-determinant.

    The reference's fixed-point code sums log(alpha + beta sigma_i) over the min(N, D) singular values
    (logdet of the N x N matrix when D >= N), its ICML code over all D eigenvalues of F^T F."""
    f = f.astype(np.float64)
    n, d = f.shape
    sigma = np.linalg.eigvalsh(f.T @ f)
    small = f.T @ f if (n > d or method == "icml") else f @ f.T
    tol, eps = (1e-3, 0.0) if method == "fixed_point" else (1e-2, 1e-5)
    evidences = []
    for c in range(y.max() + 1):
        yc = (y == c).astype(np.float64)
        alpha = beta = 1.0
        for _ in range(11):
            t = alpha / beta
            if n > d:
                m = np.linalg.solve(f.T @ f + t * np.eye(d), f.T @ yc)
            else:  # push-through identity: (F^T F + t)^-1 F^T = F^T (F F^T + t)^-1
                m = f.T @ np.linalg.solve(f @ f.T + t * np.eye(n), yc)
            gamma = np.sum(sigma / (sigma + t))
            m2, res2 = m @ m, np.sum((yc - f @ m) ** 2)
            alpha, beta = gamma / (m2 + 1e-5), (n - gamma) / (res2 + 1e-5)
            ratio = abs(alpha / beta - t) / t
            if (ratio <= tol) if method == "fixed_point" else (ratio < tol):
                break
        logdet = np.linalg.slogdet(alpha * np.eye(len(small)) + beta * small)[1]
        ev = d / 2 * np.log(alpha) + n / 2 * np.log(beta) - logdet / 2
        ev -= beta / 2 * (res2 + eps) + alpha / 2 * (m2 + eps) + n / 2 * np.log(2 * np.pi)
        evidences.append(ev / n)
    return float(np.mean(evidences))


@pytest.mark.parametrize("name", list(CASES))
def test_matches_authors_code(name):
    x, y = case(name)
    fixed, icml = REFERENCE[name]
    with warns_if(x.shape[1] >= x.shape[0]):
        assert logme(x, y) == pytest.approx(fixed, rel=1e-8)
    with warns_if(False):  # the ICML code sums over all D eigenvalues: no quirk to warn about
        assert logme(x, y, method="icml") == pytest.approx(icml, rel=1e-8)


@pytest.mark.parametrize("name", ["ten_classes", "d_gt_n", "binary", "imbalanced_relu", "n_eq_d", "few_samples"])
@pytest.mark.parametrize("method", ["fixed_point", "icml"])
def test_matches_naive_primal(name, method):
    x, y = case(name)
    with warns_if(method == "fixed_point" and x.shape[1] >= x.shape[0]):
        assert logme(x, y, method=method) == pytest.approx(naive_logme(x, y, method), rel=1e-8)


def scipy_evidence(f: np.ndarray, y: np.ndarray) -> float:
    """mean_c max_{a, b} log N(y_c | 0, I / b + F F^T / a) / N: the Bayesian linear model's log marginal likelihood,
    as a Gaussian log-density (from a Cholesky factor) maximised by Nelder-Mead over (log a, log b) -- no
    eigendecomposition, no fixed point, no profile. When D >= N the supremum is often the noise-free limit b -> inf,
    which Nelder-Mead approaches as closely as its tolerances ask."""
    n = len(y)
    fft = f @ f.T
    best = []
    for c in range(y.max() + 1):
        yc = (y == c).astype(np.float64)

        def neg(p, yc=yc):
            a, b = np.exp(p)
            chol = linalg.cholesky(np.eye(n) / b + fft / a, lower=True)
            z = linalg.solve_triangular(chol, yc, lower=True)
            return z @ z / 2 + np.log(np.diag(chol)).sum() + n / 2 * np.log(2 * np.pi)

        res = optimize.minimize(neg, np.zeros(2), method="Nelder-Mead",
                                options={"xatol": 1e-10, "fatol": 1e-13, "maxiter": 4000})  # fmt: skip
        best.append(-res.fun / n)
    return float(np.mean(best))


def rank_deficient(seed: int, counts: list[int], dim: int):
    x, y = blobs(seed, counts, dim, 1.0)
    x[:, 3] = 0.0  # a dead unit and a duplicated one: two zero eigenvalues of F^T F, each adding log(alpha)
    x[:, 5] = x[:, 4]
    return x, y


EXACT_CASES = {  # and N = 80, D = 200 in test_issue_example_default_overstates_the_evidence
    "d_gt_n": (blobs, (5, [10, 10], 100, 1.0)),
    "d_gt_n_relu": (relu, (5, [20, 20, 20, 20], 200)),
    "n_gt_d": (blobs, (3, [40, 40], 20, 1.0)),
    "n_gt_d_three_classes": (blobs, (4, [30, 35, 25], 30, 0.3)),
    "n_gt_d_rank_deficient": (rank_deficient, (6, [30, 40], 12)),
}


@pytest.mark.parametrize("name", list(EXACT_CASES))
def test_exact_evidence_matches_scipy(name):
    f, args = EXACT_CASES[name]
    x, y = f(*args)
    with warns_if(False):
        assert logme(x, y, exact=True) == pytest.approx(scipy_evidence(x, y), rel=1e-8, abs=1e-9)


@pytest.mark.parametrize("name", ["ten_classes", "binary", "imbalanced_relu", "float32_relu"])
def test_exact_agrees_with_the_reference_when_n_exceeds_d(name):
    """N > D, full rank: the reference differs only by stopping at a 1e-3 relative step (and 1e-5 in its updates)."""
    x, y = case(name)
    assert logme(x, y, exact=True) == pytest.approx(REFERENCE[name][0], rel=1e-5)


def test_issue_example_default_overstates_the_evidence():
    """N = 80, D = 200 (blobs(0, [40, 40], 200, 1.0)): the reference-compatible score is about 7.51, reproducing the
    reference's own arithmetic (naive_logme), while the exact evidence, which scipy confirms, is about 0.60."""
    x, y = blobs(0, [40, 40], 200, 1.0)
    with warns_if(True, "reduce D with PCA below N, or pass exact=True"):
        default = logme(x, y)
    exact = logme(x, y, exact=True)
    assert default == pytest.approx(naive_logme(x, y, "fixed_point"), rel=1e-8)
    assert default == pytest.approx(7.508, abs=1e-3)
    assert exact == pytest.approx(scipy_evidence(x, y), rel=1e-8)
    assert exact == pytest.approx(0.603, abs=1e-3)
    assert default - exact > 6


@pytest.mark.parametrize(("n", "d", "method", "warned"), [
    (30, 29, "fixed_point", False), (30, 30, "fixed_point", True), (30, 90, "fixed_point", True),
    (30, 90, "icml", False),
])  # fmt: skip
def test_warns_exactly_when_d_reaches_n(n, d, method, warned):
    x, y = blobs(8, [n // 2, n - n // 2], d, 1.0)
    with warns_if(warned):
        logme(x, y, method=method)
    with warns_if(False):
        logme(x, y, exact=True)


def test_exact_refuses_an_unbounded_evidence():
    """N > D with the one-hot targets among the features: noise-free fits, so the evidence has no maximum."""
    x, y = blobs(9, [20, 30], 6, 1.0)
    x = np.hstack([x, np.eye(2)[y]])
    with pytest.raises(ValueError, match="span of the features"):
        logme(x, y, exact=True)
    assert np.isfinite(logme(x, y))  # the reference's 1e-5 in its updates bounds the noise precision


def test_torch_input_and_rank_deficient_features():
    x, y = case("binary")
    x[:, 5] = 0.0  # a dead unit: F^T F is singular
    x[:, 7] = x[:, 3]
    assert logme(torch.from_numpy(x), torch.from_numpy(y)) == pytest.approx(naive_logme(x, y, "fixed_point"), rel=1e-8)


def test_better_features_score_higher():
    x, y = blobs(3, [100, 100, 100], 16, 0.2)
    x_sep, _ = blobs(3, [100, 100, 100], 16, 3.0)
    assert logme(x_sep, y) > logme(x, y)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), n_classes=st.integers(2, 5), dim=st.sampled_from([8, 40]), data=st.data())
def test_invariant_to_relabelling_and_sample_order(seed, n_classes, dim, data):
    x, y = blobs(seed, [9, 7, 12, 10, 8][:n_classes], dim, 1.0)  # dim 40 > N for 2-3 classes
    perm = np.array(data.draw(st.permutations(range(n_classes))))
    order = np.random.default_rng(seed).permutation(len(y))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", WIDE, UserWarning)  # dim 40 > N for 2-3 classes
        for method in ("fixed_point", "icml"):
            assert logme(x[order], perm[y[order]], method) == pytest.approx(logme(x, y, method), rel=1e-9, abs=1e-12)


def test_bad_input():
    x, y = case("binary")
    with pytest.raises(ValueError, match="method"):
        logme(x, y, method="jmlr")
    with pytest.raises(ValueError, match="2-D"):
        logme(x[:, 0], y)
    with pytest.raises(ValueError, match="NaN"):
        logme(np.where(np.arange(x.shape[1]) == 3, np.nan, x), y)
    with pytest.raises(ValueError, match="2 classes"):
        logme(x, np.zeros_like(y))
    with pytest.raises(ValueError, match="lengths"):
        logme(x, y[:-1])
    with pytest.raises(ValueError, match="integers"):
        logme(x, y.astype(float))
    with pytest.raises(ValueError, match="exact=True"):
        logme(x, y, method="icml", exact=True)
    for exact in (False, True):
        with pytest.raises(ValueError, match="all zero"):
            logme(np.zeros_like(x), y, exact=exact)
    with pytest.raises(ValueError, match="cut-off 1e-10"):  # the reference's threshold on singular values
        logme(x * 1e-13, y)
    assert np.isfinite(logme(x * 1e-13, y, exact=True))
