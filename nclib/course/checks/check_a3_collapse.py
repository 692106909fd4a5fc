"""Hidden checks of assignment 3 (run by ``python -m nclib.grading``): the student's NC1 and nearest-class-mean
agreement against nclib.collapse on fresh random data."""

import numpy as np
import pytest

from nclib.collapse import nc1, nc4

PARAMETERS = {"epochs": 2, "overrides": {"image": {"split": {"train": 10, "val": 2, "test": 5}}}}  # a short run


def clusters(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian classes of unequal sizes in D >= C dimensions, labelled by arbitrary distinct integers. Redrawn
    until the class means span C - 1 directions well (else the exercise's eigenvalue cut and nclib's could keep
    different ranks) and every sample is clearly nearer one class mean than the others (else rounding could pick
    its nearest mean)."""
    while True:
        n_classes = int(rng.integers(3, 7))
        dim = int(rng.integers(n_classes, 3 * n_classes))
        codes = rng.choice(np.arange(-50, 50), size=n_classes, replace=False)
        labels = rng.permutation(np.repeat(codes, rng.integers(4, 30, size=n_classes)))
        centres = {c: rng.normal(scale=rng.uniform(1, 3), size=dim) for c in codes}
        noise = rng.normal(size=(len(labels), dim)) * rng.uniform(0.3, 2)
        features = np.stack([centres[c] for c in labels]) + noise
        means = np.stack([features[labels == c].mean(axis=0) for c in codes])
        spread = np.linalg.svd(means - means.mean(axis=0), compute_uv=False)
        nearest = np.sort(((features[:, None, :] - means) ** 2).sum(axis=2), axis=1)
        if spread[n_classes - 2] > 1e-3 * spread[0] and (nearest[:, 1] - nearest[:, 0] > 1e-6 * nearest[:, 1]).all():
            return features, labels


@pytest.mark.grades("nc1")
@pytest.mark.parametrize("case", range(3))
def test_nc1_matches_nclib(submission, rng, case):
    features, labels = clusters(rng)
    got = submission.function("nc1")(features.copy(), labels.copy())
    assert np.isclose(float(got), nc1(features, labels), rtol=1e-6), "nc1 differs from tr(Sigma_W Sigma_B^+) / C"


@pytest.mark.grades("nc1")
def test_nc1_falls_to_zero_at_full_collapse(submission, rng):
    features, labels = clusters(rng)
    means = {c: features[labels == c].mean(axis=0) for c in np.unique(labels)}
    halfway = (features + np.stack([means[c] for c in labels])) / 2  # every sample halfway to its class mean
    collapsed = np.stack([means[c] for c in labels])
    got = [float(submission.function("nc1")(x, labels)) for x in (features, halfway, collapsed)]
    assert np.allclose(got[:2], [nc1(features, labels), nc1(halfway, labels)], rtol=1e-6)
    assert abs(got[2]) < 1e-9, "NC1 is 0 when every sample sits on its class mean"


@pytest.mark.grades("ncc_agreement")
@pytest.mark.parametrize("case", range(3))
def test_ncc_agreement_matches_nclib(submission, rng, case):
    features, labels = clusters(rng)
    codes = np.unique(labels)
    predictions = np.where(rng.random(len(labels)) < 0.7, labels, rng.choice(codes, size=len(labels)))
    got = submission.function("ncc_agreement")(features.copy(), labels.copy(), predictions.copy())
    assert np.isclose(float(got), nc4(features, labels, predictions), atol=1e-12)
