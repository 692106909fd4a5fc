"""Tests for the H-score, TransRate and GBC: the authors' code, naive numpy versions, identities, invariances."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from expect import warns_if as _warns_if
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import pinned
from sklearn.covariance import LedoitWolf
from sklearn.decomposition import PCA

from nclib.scores import gbc, hscore, transrate

WIDE = "hscore: D = .* >= N - 1 = "  # the warning of the unregularised H-score when D >= N - 1


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


# Run outside this project on x.astype(float64), y = case(name):
#   h_score, regularized_h_score: tllib/ranking/hscore.py and transrate: tllib/ranking/transrate.py of
#     github.com/thuml/Transfer-Learning-Library at commit c4aa59eb565650a552b809411601d0589efbbfe4;
#   gbc: get_gbc_score(pca_reduction(x, k), y, "spherical") of github.com/google-research/google-research,
#     stable_transfer/transferability/gbc.py (commit 1d4d2f1aa6f2883a790d2ae46a6ee8ab150d8f31, tensorflow) and
#     features_targets_utils.py (sklearn PCA, output cast to float32), for k = min(64, D, N - 1) and k = 8.
# The values are tests/reference/pins.json["hscore"], ["transrate"] and ["gbc"], written by
# tests/reference/regenerate.py, which reruns them and records the versions used.
HSCORE = pinned("hscore", CASES)  # (h_score, regularized_h_score)
TRANSRATE = pinned("transrate", CASES)
GBC = pinned("gbc", CASES)  # (k = min(64, D, N - 1), k = 8)


def naive_hscore(f: np.ndarray, y: np.ndarray, shrinkage: bool) -> float:
    """tr(pinv(cov f) cov(E[f|y])), looping over samples for the class means; Ledoit-Wolf from scikit-learn."""
    f = f.astype(np.float64) - f.mean(0)
    g = np.stack([f[y == label].mean(0) for label in y])
    cov_g = np.cov(g, rowvar=False)
    if not shrinkage:
        return float(np.trace(np.linalg.pinv(np.cov(f, rowvar=False)) @ cov_g))
    lw = LedoitWolf().fit(f)
    return float(np.trace(np.linalg.inv(lw.covariance_) @ ((1 - lw.shrinkage_) * cov_g)))


def naive_transrate(f: np.ndarray, y: np.ndarray, eps: float = 1e-4) -> float:
    def rate(z):
        return 0.5 * np.linalg.slogdet(np.eye(z.shape[1]) + z.T @ z / (len(z) * eps))[1]

    z = f.astype(np.float64) - f.mean(0)
    classes = np.unique(y)
    return float(rate(z) - sum(rate(z[y == c]) for c in classes) / len(classes))


def naive_gbc(f: np.ndarray, y: np.ndarray, k: int) -> float:
    """Spherical Gaussians on scikit-learn's PCA, double loop over ordered class pairs."""
    z = PCA(n_components=k, svd_solver="full").fit_transform(f.astype(np.float64))
    classes = np.unique(y)
    mu = {c: z[y == c].mean(0) for c in classes}
    var = {c: np.maximum(z[y == c].var(0), 1e-4).mean() for c in classes}
    total = 0.0
    for a in classes:
        for b in classes:
            if a != b:
                s = (var[a] + var[b]) / 2
                db = np.sum((mu[a] - mu[b]) ** 2) / (8 * s) + 0.5 * (np.log(s) - 0.5 * np.log(var[a] * var[b]))
                total -= np.exp(-db)
    return total


@pytest.mark.parametrize("name", list(CASES))
def test_matches_authors_code(name):
    x, y = case(name)
    (h, h_shrunk), trr, (g64, g8) = HSCORE[name], TRANSRATE[name], GBC[name]
    with warns_if(x.shape[1] >= x.shape[0] - 1):
        assert hscore(x, y) == pytest.approx(h, rel=1e-8)
    with warns_if(False):  # Ledoit-Wolf shrinkage makes the covariance invertible
        assert hscore(x, y, shrinkage=True) == pytest.approx(h_shrunk, rel=1e-8)
    assert transrate(x, y) == pytest.approx(trr, rel=1e-8)
    # the reference's PCA output is float32, and a float32 input keeps our PCA in float32
    rel = 1e-4 if x.dtype == np.float32 else 5e-6
    assert gbc(x, y) == pytest.approx(g64, rel=rel)
    assert gbc(x, y, pca_dim=8) == pytest.approx(g8, rel=rel)


@pytest.mark.parametrize("name", ["ten_classes", "binary", "imbalanced_relu", "few_samples"])
def test_matches_naive_numpy(name):
    x, y = case(name)
    for shrinkage in (False, True):
        with warns_if(not shrinkage and x.shape[1] >= x.shape[0] - 1):
            assert hscore(x, y, shrinkage=shrinkage) == pytest.approx(naive_hscore(x, y, shrinkage), rel=1e-8)
    assert transrate(x, y) == pytest.approx(naive_transrate(x, y), rel=1e-8)
    assert transrate(x, y, eps=0.5) == pytest.approx(naive_transrate(x, y, eps=0.5), rel=1e-8)
    for k in (3, 64):
        k = min(k, x.shape[1], x.shape[0] - 1)
        assert gbc(x, y, pca_dim=k) == pytest.approx(naive_gbc(x, y, k), rel=1e-8)


@pytest.mark.parametrize("counts", [[5, 9, 6], [20, 3], [4, 4, 4, 4, 4]])
def test_hscore_is_c_minus_one_when_features_span_the_samples(counts):
    """D >= N - 1: cov(f) is invertible on the span of the centred samples, which holds every class-mean offset,
    so H = sum_c (n_c / (N - 1)) (N - 1) (1 / n_c - 1 / N) = C - 1."""
    x, y = blobs(7, counts, 60, 1.0)
    with pytest.warns(UserWarning, match=f"H-score equal C - 1 = {len(counts) - 1} for any features"):
        assert hscore(x, y) == pytest.approx(len(counts) - 1, rel=1e-9)


@pytest.mark.parametrize(("d", "warned"), [(18, False), (19, True), (20, True)])
def test_hscore_warns_exactly_when_d_reaches_n_minus_1(d, warned):
    x, y = blobs(8, [8, 12], d, 0.3)  # N = 20
    with warns_if(warned):
        h = hscore(x, y)
    assert (h == pytest.approx(1.0, rel=1e-9)) == warned  # C - 1 = 1 once D >= N - 1, and only then
    with warns_if(False):
        hscore(x, y, shrinkage=True)


def test_transrate_one_dimension_by_hand():
    """D = 1: R(z) = log(1 + sum z^2 / (n eps)) / 2."""
    x = np.array([[0.0], [2.0], [4.0], [6.0]])
    y = np.array([0, 0, 1, 1])  # centred: -3, -1 | 1, 3
    eps = 0.1
    whole = 0.5 * np.log(1 + 20 / (4 * eps))
    per_class = 0.5 * np.log(1 + 10 / (2 * eps))
    assert transrate(x, y, eps=eps) == pytest.approx(whole - per_class, rel=1e-12)


def test_gbc_two_classes_by_hand():
    """1-D, classes {0, 2} and {10, 12}: variance 1 each, D_B = 100 / 8; two ordered pairs."""
    x = np.array([[0.0], [2.0], [10.0], [12.0]])
    y = np.array([0, 0, 1, 1])
    assert gbc(x, y) == pytest.approx(-2 * np.exp(-100 / 8), rel=1e-6)


def test_torch_float32_input_matches_float64():
    x, y = case("binary")
    t = torch.from_numpy(x).float()
    x32 = t.double().numpy()
    assert hscore(t, torch.from_numpy(y)) == pytest.approx(naive_hscore(x32, y, False), rel=1e-8)
    assert transrate(t, torch.from_numpy(y)) == pytest.approx(naive_transrate(x32, y), rel=1e-8)
    assert gbc(t, torch.from_numpy(y)) == pytest.approx(naive_gbc(x32, y, 32), rel=1e-4)


def test_better_features_score_higher():
    x, y = blobs(3, [100, 100, 100], 16, 0.3)
    x_sep, _ = blobs(3, [100, 100, 100], 16, 3.0)
    for score in (hscore, transrate, gbc):
        assert score(x_sep, y) > score(x, y)
    assert gbc(x_sep, y) <= 0


SCORES = {
    "hscore": hscore,
    "hscore_shrink": lambda x, y: hscore(x, y, shrinkage=True),
    "transrate": transrate,
    "gbc": gbc,
}


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**16), n_classes=st.integers(2, 5), dim=st.sampled_from([6, 50]), data=st.data())
def test_invariant_to_relabelling_and_sample_order(seed, n_classes, dim, data):
    x, y = blobs(seed, [9, 7, 12, 10, 8][:n_classes], dim, 1.0)  # dim 50 > N
    perm = np.array(data.draw(st.permutations(range(n_classes))))
    order = np.random.default_rng(seed).permutation(len(y))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", WIDE, UserWarning)  # dim 50 > N
        for name, score in SCORES.items():
            assert score(x[order], perm[y[order]]) == pytest.approx(score(x, y), rel=1e-7, abs=1e-12), name


def test_bad_input():
    x, y = case("binary")
    for score in SCORES.values():
        with pytest.raises(ValueError, match="2-D"):
            score(x[:, 0], y)
        with pytest.raises(ValueError, match="NaN"):
            score(np.where(np.arange(x.shape[1]) == 3, np.inf, x), y)
        with pytest.raises(ValueError, match="2 classes"):
            score(x, np.zeros_like(y))
        with pytest.raises(ValueError, match="lengths"):
            score(x, y[:-1])
    with pytest.raises(ValueError, match="eps"):
        transrate(x, y, eps=0.0)
    with pytest.raises(ValueError, match="pca_dim"):
        gbc(x, y, pca_dim=0)
    with pytest.raises(ValueError, match="at least 2 samples"):
        gbc(x, np.where(np.arange(len(y)) == 0, 2, y))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_moments_match_numpy_over_many_blocks(monkeypatch, dtype):
    """The blocked syrk pass (labels, a row subset, a shift; 7-row blocks) against plain numpy sums and products."""
    from nclib.scores import _gram

    monkeypatch.setattr(_gram, "_CHUNK", 7 * 20)
    monkeypatch.setattr(_gram, "_CHUNK_LOW", 7 * 20)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(90, 20)) + 5.0
    y = rng.integers(0, 3, size=90)
    rows = np.flatnonzero(rng.random(90) < 0.6)
    shift = x.mean(0) + 0.1
    xt = torch.from_numpy(x).to(dtype)
    sums, g = _gram.moments(xt, torch.from_numpy(y), 3, rows=torch.from_numpy(rows), shift=torch.from_numpy(shift))
    z = xt.double().numpy()[rows] - shift.astype(xt.numpy().dtype)
    rel = 1e-12 if dtype == torch.float64 else 1e-5
    np.testing.assert_allclose(g.numpy(), z.T @ z, rtol=rel, atol=rel * np.abs(z.T @ z).max())
    expected = np.stack([z[y[rows] == c].sum(0) for c in range(3)])
    np.testing.assert_allclose(sums.numpy(), expected, rtol=rel, atol=rel * np.abs(z).sum(0).max())


@pytest.mark.parametrize("size", [100, 600])  # full eigh below 8 k, the LAPACK subset above
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_top_eigh_matches_numpy(size, dtype):
    from nclib.scores._gram import top_eigh

    a = np.random.default_rng(size).standard_normal((2 * size, size))
    sym = a.T @ a
    want_vals, want_vecs = np.linalg.eigh(sym)
    vals, vecs = top_eigh(torch.from_numpy(sym).to(dtype), 64)
    assert vals.dtype == dtype and vecs.shape == (size, 64)
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    np.testing.assert_allclose(vals.double().numpy(), want_vals[::-1][:64], rtol=tol)
    # eigenvectors up to sign: |<v, w>| = 1 for each pair
    overlap = np.abs(np.sum(vecs.double().numpy() * want_vecs[:, ::-1][:, :64], axis=0))
    np.testing.assert_allclose(overlap, 1, atol=10 * tol)
