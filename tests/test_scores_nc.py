"""Tests for the neural-collapse score ``nc`` (paper Eq. 2 and the authors' demo variant)."""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import pinned

from nclib.scores.nc import nc

nc_module = importlib.import_module("nclib.scores.nc")  # the module; nclib.scores re-exports the function as `nc`


def naive_nc(x: np.ndarray, y: np.ndarray, variant: str = "paper") -> float:
    """Eq. 2 (or the demo's sample-weighted version) with plain Python loops."""
    classes = sorted({int(v) for v in y})
    members = {c: [i for i in range(len(y)) if y[i] == c] for c in classes}
    means = {c: [sum(x[i][d] for i in members[c]) / len(members[c]) for d in range(x.shape[1])] for c in classes}
    dists = {c: [math.dist(x[i], means[c]) for i in members[c]] for c in classes}
    pairs = [math.dist(means[a], means[b]) for a in classes for b in classes if a < b]
    if variant == "paper":
        return sum(sum(d) / len(d) for d in dists.values()) / sum(pairs)
    return (sum(sum(d) for d in dists.values()) / len(y)) / (sum(pairs) / len(pairs))


def blobs(seed: int, counts: list[int], dim: int, spread: float) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian classes around random centres (the recipe also used to produce the demo pins)."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(counts)), counts)
    centres = spread * rng.normal(size=(len(counts), dim))
    return rng.normal(size=(labels.size, dim)) + centres[labels], labels


CASES = {
    "balanced": (0, [25, 25, 25, 25], 8, 3.0),
    "imbalanced_binary_960_428": (1, [960, 428], 16, 0.5),
    "d_greater_than_n": (2, [5, 7, 4], 50, 1.0),
}


def test_hand_worked_2d():
    # Class means (0,0), (3,0), (3,4): pairwise distances 3, 4, 5 (sum 12).
    # Every point lies 1, 2 and 3 away from its class mean, respectively.
    x = np.array([[-1, 0], [1, 0], [3, -2], [3, 2], [0, 4], [6, 4], [3, 1], [3, 7]], dtype=float)
    y = np.array([0, 0, 1, 1, 2, 2, 2, 2])
    assert nc(x, y) == pytest.approx((1 + 2 + 3) / 12, rel=1e-12)
    # demo: mean over the 8 samples of the distances, (2*1 + 2*2 + 4*3) / 8, over the mean pair distance 24 / 6
    assert nc(x, y, variant="demo") == pytest.approx((18 / 8) / 4, rel=1e-12)


@pytest.mark.parametrize("variant", ["paper", "demo"])
@pytest.mark.parametrize("case", CASES)
def test_matches_naive_loop(case, variant):
    x, y = blobs(*CASES[case])
    assert nc(x, y, variant=variant) == pytest.approx(naive_nc(x, y, variant), rel=1e-10)


@pytest.mark.parametrize("variant", ["paper", "demo"])
def test_many_chunks_match_naive_loop(monkeypatch, variant):
    # 8-row chunks for D = 8: 13 chunks, the last one partial.
    monkeypatch.setattr(nc_module, "_CHUNK", 64)
    x, y = blobs(3, [40, 30, 30], 8, 1.0)
    perm = np.random.default_rng(3).permutation(y.size)  # classes interleaved across chunks
    x, y = x[perm], y[perm]
    assert nc(x, y, variant=variant) == pytest.approx(naive_nc(x, y, variant), rel=1e-10)


# Pinned by running compute_neural_collapse_score from the authors' demo notebook
# (github.com/AnshThakur/NC_Scores_Demo, Demo_NC_Scores.ipynb, commit bcf5473dd90d03b734c59b8b90578022f1ad6d01)
# on blobs(*CASES[case]) (float64 features, labels 0..C-1): tests/reference/pins.json["nc_demo"], written by
# tests/reference/regenerate.py, which reruns it and records the versions used.
DEMO_PINS = pinned("nc_demo", CASES)


@pytest.mark.parametrize("case", DEMO_PINS)
def test_demo_variant_matches_authors_code(case):
    x, y = blobs(*CASES[case])
    assert nc(x, y, variant="demo") == pytest.approx(DEMO_PINS[case], rel=1e-10)
    assert nc(torch.from_numpy(x), torch.from_numpy(y), variant="demo") == pytest.approx(DEMO_PINS[case], rel=1e-10)


@pytest.mark.parametrize("n_classes", [2, 3, 5])
def test_demo_is_constant_multiple_for_balanced_classes(n_classes):
    x, y = blobs(10 + n_classes, [12] * n_classes, 6, 2.0)
    assert nc(x, y, variant="demo") == pytest.approx(nc(x, y) * (n_classes - 1) / 2, rel=1e-10)


def test_demo_and_paper_can_rank_differently_for_imbalanced_classes():
    # 960 / 428 as in the cough data. Points sit at +-r from their class mean along one axis, so the mean
    # distances are exactly r; the class means are 10 apart in both models.
    def model(r_majority, r_minority):
        signs = np.tile([1.0, -1.0], 480)
        major = np.zeros((960, 2))
        major[:, 1] = r_majority * signs
        minor = np.zeros((428, 2))
        minor[:, 0] = 10.0
        minor[:, 1] = r_minority * signs[:428]
        return np.vstack([major, minor]), np.repeat([0, 1], [960, 428])

    a, b = model(1.0, 3.0), model(2.5, 1.0)
    # paper: A = (1 + 3) / 10 > B = (2.5 + 1) / 10; demo: A = (960 + 3 * 428) / 1388 / 10 < B = (2400 + 428) / 1388 / 10
    assert nc(*a) == pytest.approx(0.4) and nc(*b) == pytest.approx(0.35)
    assert nc(*a, variant="demo") == pytest.approx((960 + 3 * 428) / 1388 / 10)
    assert nc(*b, variant="demo") == pytest.approx((2400 + 428) / 1388 / 10)
    assert nc(*b) < nc(*a) and nc(*a, variant="demo") < nc(*b, variant="demo")


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    shift=st.floats(-50, 50),
    scale=st.floats(1e-2, 1e2),
    variant=st.sampled_from(["paper", "demo"]),
)
def test_invariant_to_translation_rotation_and_scaling(seed, shift, scale, variant):
    rng = np.random.default_rng(seed)
    x, y = blobs(seed, [int(n) for n in rng.integers(2, 9, size=3)], 5, 1.0)
    rotation, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    moved = scale * (x @ rotation) + shift * rng.normal(size=5)
    assert nc(moved, y, variant=variant) == pytest.approx(nc(x, y, variant=variant), rel=1e-9)


@settings(max_examples=30, deadline=None)
@given(perm=st.permutations(range(4)), offset=st.integers(-100, 100), variant=st.sampled_from(["paper", "demo"]))
def test_invariant_to_label_permutation(perm, offset, variant):
    x, y = blobs(4, [6, 9, 3, 12], 7, 1.0)
    relabelled = 3 * np.asarray(perm)[y] + offset  # permuted and non-contiguous class ids
    assert nc(x, relabelled, variant=variant) == pytest.approx(nc(x, y, variant=variant), rel=1e-12)


def test_float32_input_is_accurate():
    x, y = blobs(5, [1200, 800], 8, 1.0)
    x32 = (x + 1000.0).astype(np.float32)  # offset 1000x the spread: float32 class sums would lose ~1e-5
    assert nc(x32, y) == pytest.approx(naive_nc(x32.astype(np.float64), y), rel=1e-7)


def test_class_with_one_sample_raises():
    x, y = blobs(6, [5, 1, 4], 3, 1.0)
    with pytest.raises(ValueError, match="at least 2 samples per class"):
        nc(x, y)


@pytest.mark.parametrize(
    ("features", "labels", "message"),
    [
        (np.array([[0.0, 1.0], [np.nan, 0.0], [1.0, 1.0], [2.0, 2.0]]), np.array([0, 0, 1, 1]), "NaN or inf"),
        (np.ones((4, 2)), np.array([0, 0, 1]), "lengths must match"),
        (np.ones((4, 2)), np.array([0.0, 0.0, 1.0, 1.0]), "must be integers"),
        (np.ones((4, 2)), np.array([1, 1, 1, 1]), "at least 2 classes"),
        (np.ones((4, 2)), np.array([0, 0, 1, 1]), "same mean"),  # constant features: 0 / 0
        (np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 2.0], [0.0, -2.0]]), np.array([0, 0, 1, 1]), "same mean"),
    ],
)
def test_bad_input_raises(features, labels, message):
    with pytest.raises(ValueError, match=message):
        nc(features, labels)


def test_unknown_variant_raises():
    x, y = blobs(7, [3, 3], 2, 1.0)
    with pytest.raises(ValueError, match="variant"):
        nc(x, y, variant="Paper")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("variant", ["paper", "demo"])
def test_cuda_matches_cpu(variant):
    x, y = blobs(8, [500, 300, 200], 32, 1.0)
    xt, yt = torch.from_numpy(x).cuda(), torch.from_numpy(y).cuda()
    assert nc(xt, yt, variant=variant) == pytest.approx(nc(x, y, variant=variant), rel=1e-10)
    assert nc(xt.float(), yt, variant=variant) == pytest.approx(nc(x, y, variant=variant), rel=1e-5)
