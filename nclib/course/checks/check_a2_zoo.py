"""Hidden checks of assignment 2 (run by ``python -m nclib.grading``): the student's Kendall tau-b and top-1 regret
against nclib.evaluate on fresh random zoos, with ties, unequal model sets and both score directions."""

import numpy as np
import pandas as pd
import pytest

from nclib.evaluate import kendall, top1_regret

PARAMETERS = {  # a tiny run: the checks do not use the notebook's zoo
    "n_boot": 20,
    "overrides": {"image": {"split": {"train": 16, "val": 4, "test": 4}},
                  "train": {"epochs": 1, "seeds": [0], "patience": None}},
}  # fmt: skip


def zoo(rng: np.random.Generator, ties: bool) -> tuple[dict, dict]:
    """Scores of M models (dict in shuffled order) and the performance of those and a few more models. With ties,
    the highest and the lowest score are each shared by models of different performance, so that the tie rule of
    top-1 regret matters in both directions."""
    while True:
        n = int(rng.integers(5, 12))
        names = [f"model_{i}" for i in rng.permutation(100)[: n + 3]]
        perf = rng.integers(0, 5, n + 3) / 4 if ties else rng.uniform(50, 90, n + 3)
        score = rng.integers(0, 4, n) * 1.0 if ties else perf[:n] + rng.normal(scale=10, size=n)
        tied_ends = all(np.ptp(perf[:n][score == end]) > 0 for end in (score.max(), score.min()))
        if np.ptp(score) > 0 and np.ptp(perf[:n]) > 0 and (tied_ends or not ties):
            break
    scores = {names[i]: float(score[i]) for i in rng.permutation(n)}
    performance = {names[i]: float(perf[i]) for i in rng.permutation(n + 3)}
    return scores, performance


def reference(measure, scores, performance, higher_is_better):
    s = pd.Series(scores)
    return measure(s, pd.Series(performance)[s.index], higher_is_better=higher_is_better)


@pytest.mark.grades("kendall_tau")
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("higher_is_better", [True, False])
def test_kendall_tau_matches_nclib(submission, rng, ties, higher_is_better):
    scores, performance = zoo(rng, ties)
    got = submission.function("kendall_tau")(dict(scores), dict(performance), higher_is_better)
    assert np.isclose(got, reference(kendall, scores, performance, higher_is_better), atol=1e-9)


@pytest.mark.grades("top1_regret")
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("higher_is_better", [True, False])
def test_top1_regret_matches_nclib(submission, rng, ties, higher_is_better):
    scores, performance = zoo(rng, ties)
    got = submission.function("top1_regret")(dict(scores), dict(performance), higher_is_better)
    assert np.isclose(got, reference(top1_regret, scores, performance, higher_is_better), atol=1e-9)
