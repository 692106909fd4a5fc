"""Tests for nclib.collapse: hand-built configurations, naive loops, the Han et al. reference code, invariances."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import ortho_group

from nclib.collapse import diagnostics, nc1, nc2, nc3, nc4


def _etf(n_classes: int, dim: int, seed: int) -> np.ndarray:
    """C x D simplex ETF, D >= C - 1: rows e_c - 1/C (unit-normed), written in C - 1 coordinates of their span and
    placed in D dimensions by a random orthonormal map."""
    rng = np.random.default_rng(seed)
    m = np.eye(n_classes) - 1 / n_classes
    m /= np.linalg.norm(m, axis=1, keepdims=True)
    coords = m @ np.linalg.svd(m)[2][: n_classes - 1].T  # C x (C-1), same Gram matrix as m
    q = np.linalg.qr(rng.normal(size=(dim, n_classes - 1)))[0]  # D x (C-1) orthonormal columns
    return coords @ q.T


def _collapsed(counts: list[int], dim: int, seed: int = 0):
    """Features at a simplex ETF (scale 5, offset by a random global vector) with no within-class spread."""
    c = len(counts)
    etf = 5 * _etf(c, dim, seed)
    offset = np.random.default_rng(seed + 1).normal(size=dim)
    y = np.repeat(np.arange(c), counts)
    return etf[y] + offset, y, etf


def _blobs(counts: list[int], dim: int, seed: int, spread: float = 1.0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(len(counts)), counts)
    means = 2.0 * rng.normal(size=(len(counts), dim))
    return means[y] + spread * rng.normal(size=(len(y), dim)), y


# ---- naive references, written independently of nclib -------------------------------------------------------


def _naive_means(x, y):
    classes = sorted(set(y.tolist()))
    means = np.array([x[y == c].mean(axis=0) for c in classes])
    return classes, means, means - means.mean(axis=0)  # global mean = mean of class means (Papyan et al.)


def _naive_nc1(x, y):
    classes, means, centred = _naive_means(x, y)
    d = x.shape[1]
    sw = np.zeros((d, d))
    for i in range(len(y)):
        z = x[i] - means[classes.index(y[i])]
        sw += np.outer(z, z)
    sw /= len(y)
    sb = np.zeros((d, d))
    for row in centred:
        sb += np.outer(row, row)
    sb /= len(classes)
    return np.trace(sw @ np.linalg.pinv(sb, rcond=1e-10, hermitian=True)) / len(classes)


def _naive_nc2(x, y):
    _, _, centred = _naive_means(x, y)
    norms = [np.sqrt(sum(v * v for v in row)) for row in centred]
    cos = []
    for a in range(len(centred)):
        for b in range(a + 1, len(centred)):
            cos.append(float(centred[a] @ centred[b]) / (norms[a] * norms[b]))
    c = len(centred)
    return {
        "equinorm": np.std(norms, ddof=1) / np.mean(norms),
        "equiangularity": np.std(cos, ddof=1) if len(cos) > 1 else 0.0,
        "angle_gap": np.mean([abs(v + 1 / (c - 1)) for v in cos]),
    }


def _naive_nc4(x, y, pred):
    classes, means, _ = _naive_means(x, y)
    agree = 0
    for i in range(len(y)):
        dist = [np.linalg.norm(x[i] - m) for m in means]
        agree += classes[int(np.argmin(dist))] == pred[i]
    return agree / len(y)


# ---- hand-built configurations ---------------------------------------------------------------------------------


@pytest.mark.parametrize("counts, dim", [([20, 20, 20, 20], 6), ([5, 50, 9], 2), ([3, 3], 10), ([7] * 10, 9)])
def test_simplex_etf_with_no_spread_is_fully_collapsed(counts, dim):
    x, y, etf = _collapsed(counts, dim)
    c = len(counts)
    d = diagnostics(x, y, weights=0.3 * etf, predictions=y)
    assert d["nc1"] == pytest.approx(0, abs=1e-20)
    assert d["nc2_equinorm"] == pytest.approx(0, abs=1e-12)
    assert d["nc2_equiangularity"] == pytest.approx(0, abs=1e-12)
    assert d["nc2_angle_gap"] == pytest.approx(0, abs=1e-12)
    assert d["nc3"] == pytest.approx(0, abs=1e-12)
    assert d["nc4"] == 1.0
    if c > 2:  # moving one class mean away from the ETF breaks all three NC2 measures (C = 2 is always an ETF)
        x2 = x.copy()
        x2[y == 0] += 0.5 * etf[0]
        moved = nc2(x2, y)
        assert min(moved.values()) > 1e-3


def test_nc1_two_classes_in_one_dimension_by_hand():
    # class 0 at -1 +- a, class 1 at +1 +- a: Sigma_W = a^2, Sigma_B = 1, NC1 = a^2 / C = a^2 / 2
    a = 0.3
    x = np.array([[-1 - a], [-1 + a], [1 - a], [1 + a]])
    assert nc1(x, np.array([0, 0, 1, 1])) == pytest.approx(a**2 / 2, rel=1e-12)
    # imbalanced: class 1 a single point at +1: Sigma_W = 2 a^2 / 3, mu_G = 0, Sigma_B = 1, NC1 = a^2 / 3
    assert nc1(np.array([[-1 - a], [-1 + a], [1.0]]), np.array([0, 0, 1])) == pytest.approx(a**2 / 3, rel=1e-12)


def test_nc2_by_hand():
    # class means (0, 0), (4, 0), (0, 3): mean of means (4/3, 1); centred norms sqrt(16/9 + 1), sqrt(64/9 + 1),
    # sqrt(16/9 + 4)
    x = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 3.0]])
    y = np.array([0, 1, 2])
    norms = np.sqrt([16 / 9 + 1, 64 / 9 + 1, 16 / 9 + 4])
    assert nc2(x, y)["equinorm"] == pytest.approx(np.std(norms, ddof=1) / norms.mean(), rel=1e-12)
    two = nc2(np.array([[0.0, 1.0], [2.0, 5.0], [4.0, 3.0]]), np.array([0, 0, 1]))  # C = 2: means opposite
    assert two == pytest.approx({"equinorm": 0.0, "equiangularity": 0.0, "angle_gap": 0.0}, abs=1e-12)


def test_nc3_by_hand():
    x, y, etf = _collapsed([4, 4, 4], 3)
    assert nc3(x, y, -etf) == pytest.approx(4.0)  # opposite direction: ||-u - u||^2 = 4
    w = np.zeros_like(etf)
    w[0] = etf[0]  # ||w|| = 1, ||M|| = 5 sqrt(3); <w/|w|, M/|M|> = 5 / (5 sqrt 3)
    assert nc3(x, y, w) == pytest.approx(2 - 2 / np.sqrt(3))


def test_nc4_by_hand():
    x = np.array([[0.0], [1.0], [4.0], [10.0], [9.0], [6.0]])
    y = np.array([3, 3, 3, 7, 7, 7])  # means 5/3 and 25/3: NCC says 3, 3, 3, 7, 7, 7 (4 is nearer 5/3)
    assert nc4(x, y, np.array([3, 3, 7, 7, 7, 3])) == pytest.approx(4 / 6)
    assert nc4(x, y, y) == 1.0


# ---- naive loops on random data ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "counts, dim",
    [([30, 30, 30], 5), ([40, 7, 13, 25], 8), ([6, 5, 4], 40), ([80, 30], 3), ([9, 10, 11, 12, 13, 14], 3)],
    ids=["balanced", "imbalanced", "D>N", "binary", "D<C-1"],
)
def test_against_naive_loops(counts, dim):
    x, y = _blobs(counts, dim, seed=sum(counts) + dim)
    pred = np.random.default_rng(1).choice(np.unique(y), size=len(y))
    w = np.random.default_rng(2).normal(size=(len(counts), dim))
    d = diagnostics(x, y, weights=w, predictions=pred)
    assert d["nc1"] == pytest.approx(_naive_nc1(x, y), rel=1e-8)
    ref2 = _naive_nc2(x, y)
    for k in ref2:
        assert d[f"nc2_{k}"] == pytest.approx(ref2[k], rel=1e-9, abs=1e-12)
    _, _, centred = _naive_means(x, y)
    ref3 = np.sum((w / np.linalg.norm(w) - centred / np.linalg.norm(centred)) ** 2)
    assert d["nc3"] == pytest.approx(ref3, rel=1e-10)
    assert d["nc4"] == pytest.approx(_naive_nc4(x, y, pred))
    assert d["nc1"] == nc1(x, y) and d["nc3"] == nc3(x, y, w) and d["nc4"] == nc4(x, y, pred)


def test_nc1_matches_han_et_al_reference():
    # Pinned from tding1/Neural-Collapse (Han, Papyan & Donoho, ICLR 2022) validate_NC.py, commit
    # 04ef5860d4a8dd54aa159d2c800dce83f30490e6: compute_info + compute_Sigma_W + compute_Sigma_B, then
    # np.trace(Sigma_W @ scilin.pinv(Sigma_B)) / K, run in /tmp on exactly these features (dataset="cifar10": 10 x 5000,
    # balanced, so their sample global mean equals the mean of class means), float64 throughout.
    rng = np.random.default_rng(0)
    c, d, n = 10, 16, 5000
    means = 3.0 * rng.normal(size=(c, d))
    y = np.repeat(np.arange(c), n)
    x = means[y] + rng.normal(size=(c * n, d)) * (1 + np.arange(d) / d)
    assert nc1(x, y) == pytest.approx(0.36213609361531784, rel=1e-10)
    assert nc1(x.astype(np.float32), y) == pytest.approx(0.36213609361531784, rel=1e-5)


# ---- invariances ------------------------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    scale=st.floats(0.01, 100),
    dim=st.integers(2, 12),
    n_classes=st.integers(2, 5),
)
def test_invariances(seed, scale, dim, n_classes):
    rng = np.random.default_rng(seed)
    counts = rng.integers(2, 12, size=n_classes).tolist()
    x, y = _blobs(counts, dim, seed)
    w = rng.normal(size=(n_classes, dim))
    pred = rng.choice(n_classes, size=len(y))
    base = diagnostics(x, y, weights=w, predictions=pred)
    q = ortho_group.rvs(dim, random_state=seed)
    shift = rng.normal(size=dim) * 10
    perm = rng.permutation(len(y))
    labels = np.array([10, 3, 99, -4, 7])[:n_classes]  # relabel class k as labels[k]
    order = np.argsort(labels)  # weights' rows follow sorted labels: row r is the class order[r]
    moved = diagnostics(
        (scale * x @ q + shift)[perm], labels[y][perm], weights=(2 * w @ q)[order], predictions=labels[pred][perm]
    )
    assert moved == pytest.approx(base, rel=1e-6, abs=1e-9)


# ---- inputs -------------------------------------------------------------------------------------------------------


def test_torch_inputs_and_float32():
    x, y = _blobs([20, 30, 25], 6, seed=3)
    ref = diagnostics(x, y, predictions=y)
    got = diagnostics(torch.from_numpy(x).float(), torch.from_numpy(y), predictions=torch.from_numpy(y))
    assert got == pytest.approx(ref, rel=1e-5)


def test_bad_input():
    x, y = _blobs([5, 5, 5], 4, seed=0)
    with pytest.raises(ValueError, match="weights must be C x D"):
        nc3(x, y, np.ones((2, 4)))
    with pytest.raises(ValueError, match="predictions must be 15 integer"):
        nc4(x, y, np.zeros(14, dtype=int))
    with pytest.raises(ValueError, match="predictions must be"):
        nc4(x, y, np.zeros(15))
    with pytest.raises(ValueError, match="class means coincide"):
        nc1(np.ones((6, 3)), np.array([0, 0, 1, 1, 2, 2]))
    with pytest.raises(ValueError, match="at least 2 classes"):
        nc2(x, np.zeros(15, dtype=int))
    with pytest.raises(ValueError, match="NaN"):
        nc1(np.where(np.eye(15, 4) > 0, np.nan, x), y)
