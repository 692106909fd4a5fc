"""Hidden checks of assignment 4 (run by ``python -m nclib.grading``): leave-one-out and the paired bootstrap win
rate against naive loops over nclib.evaluate measures, on fresh random zoos."""

import numpy as np
import pandas as pd
import pytest

from nclib.evaluate import kendall, pearson

PARAMETERS = {"n_boot": 20}  # a short run


def zoo(rng: np.random.Generator) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Two noisy scores and the performance of M models, each Series in its own shuffled order."""
    n = int(rng.integers(6, 13))
    names = np.array([f"net_{i}" for i in rng.permutation(100)[:n]])
    perf = rng.uniform(60, 95, n)
    a, b = perf + rng.normal(scale=5, size=n), perf + rng.normal(scale=15, size=n)
    return tuple(pd.Series(v, index=names).iloc[rng.permutation(n)] for v in (a, b, perf))


def bootstrap(rng: np.random.Generator, n_models: int, size: int = 200) -> np.ndarray:
    """Resamples of model positions, one per row; the first three repeat one model (the metric is undefined), every
    other holds at least three distinct models (with two, Pearson r is +-1 for both scores: a tie, and rounding
    would decide the win)."""
    rows = rng.integers(0, n_models, size=(size, n_models))
    while (few := np.array([len(np.unique(row)) < 3 for row in rows])).any():
        rows[few] = rng.integers(0, n_models, size=(few.sum(), n_models))
    rows[:3] = rng.integers(0, n_models, size=(3, 1))
    return rows


@pytest.mark.grades("leave_one_out")
@pytest.mark.parametrize("metric", [pearson, kendall, lambda s, p: float(np.mean(s) - np.mean(p))],
                         ids=["pearson", "kendall", "difference_of_means"])
def test_leave_one_out_matches_a_loop(submission, rng, metric):
    a, _, perf = zoo(rng)
    got = pd.Series(submission.function("leave_one_out")(metric, a.copy(), perf.copy()), dtype=float)
    expected = {m: metric(a.drop(m), perf.drop(m)) for m in a.index}
    assert sorted(got.index) == sorted(expected), "one value per model, indexed by the model left out"
    assert np.allclose([got[m] for m in expected], list(expected.values()), atol=1e-12)


@pytest.mark.grades("paired_win_rate")
@pytest.mark.parametrize("metric", [pearson, kendall], ids=["pearson", "kendall"])
def test_paired_win_rate_matches_a_loop(submission, rng, metric):
    a, b, perf = zoo(rng)
    resamples = bootstrap(rng, len(perf))
    got = submission.function("paired_win_rate")(metric, a.copy(), b.copy(), perf.copy(), resamples.copy())
    x, z, y = a[perf.index].to_numpy(), b[perf.index].to_numpy(), perf.to_numpy()
    wins = []
    for r in resamples:
        try:
            wins.append(metric(x[r], y[r]) > metric(z[r], y[r]))
        except ValueError:  # as the exercise says: a row where either call raises is skipped
            continue
    assert np.isclose(float(got), np.mean(wins), atol=1e-12)
