"""Hidden checks of assignment 1 (run by ``python -m nclib.grading``): the student's NC score and H-score against
nclib's on fresh random data."""

import numpy as np
import pytest

from nclib.scores import hscore, nc

PARAMETERS = {"overrides": {"image": {"split": {"train": 10, "val": 2, "test": 2}}}}  # the checks need no data


def clusters(rng: np.random.Generator, n_min: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian classes of unequal sizes, labelled by arbitrary distinct integers (not 0..C-1)."""
    n_classes, dim = int(rng.integers(3, 7)), int(rng.integers(4, 12))
    sizes = rng.integers(n_min, 6 * n_min, size=n_classes)
    codes = rng.choice(np.arange(-50, 50), size=n_classes, replace=False)
    labels = rng.permutation(np.repeat(codes, sizes))
    centres = {c: rng.normal(scale=rng.uniform(0.5, 3), size=dim) for c in codes}
    spread = rng.uniform(0.3, 2.0, size=dim)
    features = np.stack([centres[c] for c in labels]) + rng.normal(size=(len(labels), dim)) * spread
    return features, labels


@pytest.mark.grades("nc_score")
@pytest.mark.parametrize("case", range(3))
def test_nc_score_matches_nclib(submission, rng, case):
    features, labels = clusters(rng)
    got = submission.function("nc_score")(features.copy(), labels.copy())
    assert isinstance(got, float), f"nc_score must return a float, got {type(got).__name__}"
    assert np.isclose(got, nc(features, labels), rtol=1e-6), "nc_score differs from Eq. 2"


@pytest.mark.grades("h_score")
@pytest.mark.parametrize("case", range(3))
def test_h_score_matches_nclib(submission, rng, case):
    features, labels = clusters(rng, n_min=8)  # N well above D: the covariance is invertible
    got = submission.function("h_score")(features.copy(), labels.copy())
    assert isinstance(got, float), f"h_score must return a float, got {type(got).__name__}"
    assert np.isclose(got, hscore(features, labels), rtol=1e-6), "h_score differs from Bao et al."
