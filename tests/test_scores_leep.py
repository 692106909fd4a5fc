"""Tests for LEEP, N-LEEP and NCE."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import pinned
from sklearn.decomposition import PCA
from sklearn.mixture import GaussianMixture

from nclib.scores.leep import leep, nce, nleep


def naive_leep(p: np.ndarray, y: np.ndarray) -> float:
    """Nguyen et al. 2020, Eq. 2, with plain loops; P(y | z) := 0 where P(z) = 0."""
    n, n_source = p.shape
    classes = sorted({int(v) for v in y})
    joint = {(c, z): sum(p[i][z] for i in range(n) if y[i] == c) / n for c in classes for z in range(n_source)}
    p_z = [sum(joint[c, z] for c in classes) for z in range(n_source)]
    cond = {(c, z): joint[c, z] / p_z[z] if p_z[z] > 0 else 0.0 for c in classes for z in range(n_source)}
    return sum(math.log(sum(cond[int(y[i]), z] * p[i][z] for z in range(n_source))) for i in range(n)) / n


def naive_nce(z: np.ndarray, y: np.ndarray) -> float:
    """-H(Y | Z) = sum_{y, z} P(y, z) log P(y | z), with plain loops."""
    n = len(y)
    pairs: dict[tuple[int, int], int] = {}
    sources: dict[int, int] = {}
    for zi, yi in zip(z.tolist(), y.tolist(), strict=True):
        pairs[yi, zi] = pairs.get((yi, zi), 0) + 1
        sources[zi] = sources.get(zi, 0) + 1
    return sum(count / n * math.log(count / sources[zi]) for (_, zi), count in pairs.items())


def softmax_probs(seed: int, n: int, n_source: int, n_target: int, temperature: float):
    """Informative source probabilities and balanced-ish target labels (recipe used for the TLlib pins)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % n_target
    logits = temperature * rng.normal(size=(n, n_source))
    logits[np.arange(n), labels % n_source] += 2.0
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True), labels


def pseudo_labels(seed: int, n: int, n_source: int, n_target: int):
    """Source pseudo-labels that agree with the target label 60% of the time (recipe used for the TLlib pins)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_target, n)
    z = np.where(rng.random(n) < 0.6, labels % n_source, rng.integers(0, n_source, n))
    return z, labels


# Pinned by running thuml/Transfer-Learning-Library (commit c4aa59eb565650a552b809411601d0589efbbfe4)
# tllib/ranking/leep.py::log_expected_empirical_prediction and tllib/ranking/nce.py::negative_conditional_entropy
# on the inputs built here by softmax_probs(*key) and pseudo_labels(*key): tests/reference/pins.json["leep"] and
# ["nce"], written by tests/reference/regenerate.py, which reruns them and records the versions used.
LEEP_CASES = [
    (3, 200, 7, 4, 2.0),
    (4, 300, 5, 2, 1.0),  # binary
    (5, 50, 20, 3, 0.5),  # more source classes than samples per class
]
NCE_CASES = [
    (6, 200, 6, 3),
    (7, 500, 10, 2),  # binary, imbalanced source classes
    (8, 40, 3, 5),  # fewer source than target classes
]
LEEP_PINS = pinned("leep", LEEP_CASES)
NCE_PINS = pinned("nce", NCE_CASES)


@pytest.mark.parametrize("key", LEEP_PINS)
def test_leep_matches_tllib(key):
    p, y = softmax_probs(*key)
    assert leep(p, y) == pytest.approx(LEEP_PINS[key], rel=1e-12)
    assert leep(torch.from_numpy(p), torch.from_numpy(y)) == pytest.approx(LEEP_PINS[key], rel=1e-12)


@pytest.mark.parametrize("key", LEEP_PINS)
def test_leep_matches_naive_loop(key):
    p, y = softmax_probs(*key)
    assert leep(p, y) == pytest.approx(naive_leep(p, y), rel=1e-12)


def test_leep_imbalanced_matches_naive_loop():
    rng = np.random.default_rng(9)
    p = rng.dirichlet(np.full(6, 0.3), size=150)
    y = (rng.random(150) < 0.2).astype(int)
    assert leep(p, y) == pytest.approx(naive_leep(p, y), rel=1e-12)


def test_leep_source_class_with_zero_mass_is_finite_and_ignored():
    p, y = softmax_probs(3, 200, 7, 4, 2.0)
    padded = np.insert(p, [2, 7], 0.0, axis=1)  # two source classes that no sample predicts
    assert np.isfinite(leep(padded, y))
    assert leep(padded, y) == pytest.approx(leep(p, y), rel=1e-12)
    assert leep(padded, y) == pytest.approx(naive_leep(padded, y), rel=1e-12)


def test_leep_of_perfect_source_model_is_zero():
    y = np.repeat(np.arange(3), 4)
    assert leep(np.eye(3)[y], y) == pytest.approx(0.0, abs=1e-15)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(2, 60),
    n_source=st.integers(1, 12),
    concentration=st.floats(0.05, 5.0),
)
def test_leep_is_at_most_zero(seed, n, n_source, concentration):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(n_source, concentration), size=n)
    p /= p.sum(axis=1, keepdims=True)
    y = np.arange(n) % rng.integers(2, n + 1)
    assert leep(p, y) <= 1e-12


@settings(max_examples=25, deadline=None)
@given(target=st.permutations(range(4)), source=st.permutations(range(7)), offset=st.integers(-50, 50))
def test_leep_invariant_to_label_permutations(target, source, offset):
    p, y = softmax_probs(3, 200, 7, 4, 2.0)
    relabelled = 5 * np.asarray(target)[y] + offset  # permuted, non-contiguous target classes
    assert leep(p[:, list(source)], relabelled) == pytest.approx(leep(p, y), rel=1e-12)


@pytest.mark.parametrize(
    ("probs", "labels", "message"),
    [
        (np.full((4, 3), 0.3), np.array([0, 0, 1, 1]), "sum to 1"),
        (np.array([[2.0, -1.0], [0.5, 0.5], [0.2, 0.8], [1.0, 0.0]]), np.array([0, 0, 1, 1]), "logits"),
        (np.full((4, 2), 0.5), np.array([0, 0, 1]), "lengths must match"),
        (np.full((4, 2), 0.5), np.array([1, 1, 1, 1]), "at least 2 classes"),
        (np.full((4, 2), 0.5), np.array([0.0, 0.0, 1.0, 1.0]), "must be integers"),
        (np.array([[0.5, 0.5], [np.nan, 0.5]]), np.array([0, 1]), "NaN or inf"),
    ],
)
def test_leep_bad_input_raises(probs, labels, message):
    with pytest.raises(ValueError, match=message):
        leep(probs, labels)


@pytest.mark.parametrize("key", NCE_PINS)
def test_nce_matches_tllib_and_naive_loop(key):
    z, y = pseudo_labels(*key)
    assert nce(z, y) == pytest.approx(NCE_PINS[key], rel=1e-12)
    assert nce(z, y) == pytest.approx(naive_nce(z, y), rel=1e-12)


def test_nce_remaps_source_labels():
    z, y = pseudo_labels(6, 200, 6, 3)
    assert nce(1000 - 17 * z, y) == pytest.approx(NCE_PINS[6, 200, 6, 3], rel=1e-12)


def test_nce_special_cases():
    y = np.array([0, 0, 0, 1, 1, 2])
    assert nce(y + 10, y) == pytest.approx(0.0, abs=1e-15)  # Z determines Y
    entropy_y = -sum(q * math.log(q) for q in (3 / 6, 2 / 6, 1 / 6))
    assert nce(np.zeros(6, dtype=int), y) == pytest.approx(-entropy_y, rel=1e-12)  # one source class: -H(Y)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 80), n_source=st.integers(1, 10))
def test_nce_is_at_most_zero_and_matches_naive_loop(seed, n, n_source):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % rng.integers(2, n + 1)
    z = rng.integers(0, n_source, n)
    assert nce(z, y) <= 1e-12
    assert nce(z, y) == pytest.approx(naive_nce(z, y), rel=1e-9, abs=1e-12)


@settings(max_examples=25, deadline=None)
@given(target=st.permutations(range(3)), source=st.permutations(range(6)))
def test_nce_invariant_to_label_permutations(target, source):
    z, y = pseudo_labels(6, 200, 6, 3)
    assert nce(np.asarray(source)[z], np.asarray(target)[y]) == pytest.approx(NCE_PINS[6, 200, 6, 3], rel=1e-12)


@pytest.mark.parametrize(
    ("source", "labels", "message"),
    [
        (np.array([0.0, 1.0, 1.0, 0.0]), np.array([0, 0, 1, 1]), "integer"),
        (np.array([0, 1, 1]), np.array([0, 0, 1, 1]), "lengths must match"),
        (np.array([0, 1, 1, 0]), np.array([1, 1, 1, 1]), "at least 2 classes"),
        (np.array([[0, 1], [1, 0]]), np.array([0, 1]), "1-D"),
    ],
)
def test_nce_bad_input_raises(source, labels, message):
    with pytest.raises(ValueError, match=message):
        nce(source, labels)


def blobs(seed: int, counts: list[int], dim: int, spread: float):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(counts)), counts)
    centres = spread * rng.normal(size=(len(counts), dim))
    return rng.normal(size=(labels.size, dim)) + centres[labels], labels


@pytest.mark.parametrize(
    "case",
    [(0, [40, 40, 40], 6, 0.7), (1, [120, 30], 8, 0.5), (2, [20, 20], 60, 0.3)],  # balanced, imbalanced, D > N
)
def test_nleep_is_leep_on_gaussian_mixture_posteriors(case):
    x, y = blobs(*case)
    reduced = PCA(n_components=0.8).fit_transform(x)
    posterior = GaussianMixture(n_components=5 * len(case[1]), covariance_type="full", random_state=0).fit(reduced)
    expected = naive_leep(posterior.predict_proba(reduced), y)
    assert expected < -0.1  # overlapping classes: a non-trivial value
    assert nleep(x, y) == pytest.approx(expected, rel=1e-8)


def test_nleep_is_deterministic_and_tracks_separability():
    x, y = blobs(3, [50, 50, 50], 12, 4.0)
    assert nleep(x, y) == nleep(x, y)
    assert nleep(x, y) > -0.05  # well-separated classes: close to the maximum, 0
    shuffled = np.random.default_rng(3).permutation(y)
    assert nleep(x, shuffled) < np.log(0.5)  # labels unrelated to the features: near -log(3)


def test_nleep_needs_enough_samples():
    x, y = blobs(4, [4, 4], 3, 1.0)
    with pytest.raises(ValueError, match="mixture components"):
        nleep(x, y)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    p, y = softmax_probs(3, 200, 7, 4, 2.0)
    assert leep(torch.from_numpy(p).cuda(), torch.from_numpy(y).cuda()) == pytest.approx(leep(p, y), rel=1e-12)
    z, y = pseudo_labels(6, 200, 6, 3)
    assert nce(torch.from_numpy(z).cuda(), torch.from_numpy(y).cuda()) == pytest.approx(nce(z, y), rel=1e-12)
    x, y = blobs(5, [50, 50], 8, 2.0)
    assert nleep(torch.from_numpy(x).cuda(), y) == nleep(x, y)
