"""Tests for nclib.scores.logme: the authors' LogME.py, a naive primal implementation, invariances, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nclib.scores import logme


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
# run outside this project (numpy 2.4.6, numba 0.68.1) as LogME().fit(x.astype(float64), y) and, for "icml", with
# _fit = _fit_icml; x, y = case(name) (float32_relu: the float32 matrix, cast to float64 by the reference).
REFERENCE = {
    "ten_classes": (0.48459990834379163, 0.4845651511146465),
    "d_gt_n": (15.187161143923, 0.2355973095364614),
    "binary": (-0.7354089803714599, -0.735412235516791),
    "imbalanced_relu": (0.998923149449853, 0.9989180131064754),
    "d_gt_n_relu": (5.676771728811195, 0.31768443876879915),
    "float32_relu": (0.6470258848988336, 0.647021341662408),
    "n_eq_d": (-0.37677030940585254, -0.37682439621292063),
    "few_samples": (9.06204758732457, 0.10689674575208245),
}


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
    assert logme(x, y) == pytest.approx(fixed, rel=1e-8)
    assert logme(x, y, method="icml") == pytest.approx(icml, rel=1e-8)


@pytest.mark.parametrize("name", ["ten_classes", "d_gt_n", "binary", "imbalanced_relu", "n_eq_d", "few_samples"])
@pytest.mark.parametrize("method", ["fixed_point", "icml"])
def test_matches_naive_primal(name, method):
    x, y = case(name)
    assert logme(x, y, method=method) == pytest.approx(naive_logme(x, y, method), rel=1e-8)


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
