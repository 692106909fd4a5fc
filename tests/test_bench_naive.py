"""The benchmark's baseline is honest: every naive numpy score in benchmarks/naive.py agrees with nclib to 1e-6."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from nclib.scores import REGISTRY

_spec = importlib.util.spec_from_file_location("naive", Path(__file__).resolve().parents[1] / "benchmarks" / "naive.py")
naive = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(naive)


def relu(seed: int, counts: list[int], dim: int, rank: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """ReLU of a rank-``rank`` class-structured signal with decaying scales plus noise; labels shuffled."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.repeat(np.arange(len(counts)), counts))
    latent = rng.normal(size=(labels.size, rank)) + 1.5 * rng.normal(size=(len(counts), rank))[labels]
    mix = rng.normal(size=(rank, dim)) / np.arange(1, rank + 1)[:, None]
    return np.maximum(latent @ mix + 0.3 + 0.1 * rng.normal(size=(labels.size, dim)), 0.0), labels


def source_probs(x: np.ndarray, seed: int = 7, n_source: int = 30) -> np.ndarray:
    logits = x @ np.random.default_rng(seed).normal(size=(x.shape[1], n_source)) * 2 / np.sqrt(x.shape[1])
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True)


CASES = {
    "multiclass": (0, [60] * 6, 24),
    "imbalanced": (1, [150, 40, 12, 80], 40),
    "binary": (2, [90, 50], 16),
    "d_gt_n": (3, [20, 25, 15], 90),
}
SINGLE = [name for name, score in REGISTRY.items() if score.needs in ("features", "source_probs", "source_labels")]
# N-LEEP's mixture fits dominate the runtime: keep it to the two smallest cases
PAIRS = [(name, case) for name in SINGLE for case in CASES if name != "nleep" or case in ("binary", "d_gt_n")]


def inputs(name: str, dtype=np.float64) -> tuple[dict, np.ndarray]:
    x, y = relu(*CASES[name])
    x = x.astype(dtype)
    probs = source_probs(x.astype(np.float64))
    return {"features": x, "source_probs": probs, "source_labels": probs.argmax(axis=1)}, y


def test_every_registered_score_has_a_naive_version():
    assert set(naive.NAIVE) == set(REGISTRY) - {"hev"}  # ours, no published reference; its naive check: test_scores_hev


@pytest.mark.parametrize(("name", "case"), PAIRS)
def test_naive_agrees_with_nclib(name, case):
    data, y = inputs(case)
    score = REGISTRY[name]
    expected = naive.NAIVE[name](data[score.needs], y)
    assert score(data[score.needs], y) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("name", [n for n in SINGLE if n != "gbc"])
def test_naive_agrees_with_nclib_on_float32(name):
    """The benchmark's features are float32; nclib accumulates in float64 as the naive code does (GBC excepted:
    like its reference, nclib's GBC keeps float32 input in float32)."""
    data, y = inputs("binary", np.float32)
    score = REGISTRY[name]
    assert score(data[score.needs], y) == pytest.approx(naive.NAIVE[name](data[score.needs], y), rel=1e-6)


@pytest.mark.parametrize("scales", [(1.0, 0.7, 1.6), (0.05, 0.04, 0.08), (1.0, 0.05, 0.5)])
def test_naive_ncti_agrees_with_nclib(scales):
    """Unit scales take NCTI's LDA 'svd' branch, small scales its shrinkage 'eigen' branch."""
    x, y = relu(4, [70, 50, 60, 40], 96)
    rng = np.random.default_rng(5)
    zoo = {f"m{i}": scale * x @ rng.normal(size=(96, 80)) / np.sqrt(96) for i, scale in enumerate(scales)}
    expected = naive.ncti(zoo, y)
    got = REGISTRY["ncti"](zoo, y)
    assert list(got) == list(expected)
    assert max(abs(got[m] - expected[m]) for m in zoo) <= 1e-6 * max(abs(v) for v in expected.values())
