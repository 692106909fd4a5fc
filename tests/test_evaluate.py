"""Tests for nclib.evaluate: hand-worked cases and scipy directly (the TLlib table: tests/test_published.py)."""

from __future__ import annotations

import math
import sys
import types

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from nclib.evaluate import (
    abs_pearson,
    bootstrap_ci,
    bootstrap_draws,
    correlation_table,
    drop_constant,
    kendall,
    pearson,
    relative_topk,
    spearman,
    top1_regret,
    weighted_kendall,
)

CORRELATIONS = [pearson, abs_pearson, spearman, kendall, weighted_kendall]
ALL = [*CORRELATIONS, top1_regret, relative_topk]


def _zoo(m: int, seed: int, noise: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Accuracy-like performance (positive) and a noisy score that tracks it."""
    rng = np.random.default_rng(seed)
    perf = 80 + 5 * rng.normal(size=m)
    return (perf - 80) / 5 + noise * rng.normal(size=m), perf


# ---------------------------------------------------------------- hand-worked cases


def test_pearson_hand_worked():
    # centred s = (-1, 0, 1), y = (-4, -1, 5)/3: r = 3 / sqrt(2 * 14/3) = sqrt(27/28)
    assert pearson([1, 2, 3], [1, 2, 4]) == pytest.approx(math.sqrt(27 / 28), abs=1e-14)
    assert pearson([1, 2, 3], [4, 2, 1]) == pytest.approx(-math.sqrt(27 / 28), abs=1e-14)
    assert abs_pearson([1, 2, 3], [4, 2, 1]) == pytest.approx(math.sqrt(27 / 28), abs=1e-14)


def test_spearman_and_kendall_hand_worked():
    s, y = [1, 2, 3, 4], [1, 3, 2, 4]  # one swapped pair out of six
    assert spearman(s, y) == pytest.approx(1 - 6 * 2 / (4 * 15), abs=1e-14)
    assert kendall(s, y) == pytest.approx((5 - 1) / 6, abs=1e-14)


def test_kendall_tau_b_with_ties_hand_worked():
    # pairs: (1,2) tied in s only; (1,3), (1,4) concordant; (2,3), (2,4), (3,4) tied in y only
    # tau_b = (P - Q) / sqrt((P + Q + T_s)(P + Q + T_y)) = 2 / sqrt(3 * 5)
    assert kendall([1, 1, 2, 3], [1, 2, 2, 2]) == pytest.approx(2 / math.sqrt(15), abs=1e-14)


def _naive_weighted_tau(x, y):
    """Vigna's weighted tau, hyperbolic additive weights 1/(r+1), averaged over ranking by x and by y (no ties)."""
    n = len(x)

    def one(key):
        rank = {m: r for r, m in enumerate(sorted(range(n), key=lambda i: -key[i]))}
        num = dx = dy = 0.0
        for i in range(n):
            for j in range(i + 1, n):
                w = 1 / (rank[i] + 1) + 1 / (rank[j] + 1)
                a, b = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
                num, dx, dy = num + w * a * b, dx + w * (a != 0), dy + w * (b != 0)
        return num / math.sqrt(dx * dy)

    return (one(x) + one(y)) / 2


@pytest.mark.parametrize("seed", range(5))
def test_weighted_kendall_is_vigna_hyperbolic_averaged(seed):
    s, y = _zoo(9, seed, noise=1.0)
    assert weighted_kendall(s, y) == pytest.approx(_naive_weighted_tau(s, y), abs=1e-12)


def test_weighted_kendall_weights_the_top():
    y = np.arange(6.0)
    top_swapped = np.array([0, 1, 2, 3, 5, 4.0])
    bottom_swapped = np.array([1, 0, 2, 3, 4, 5.0])
    assert kendall(top_swapped, y) == pytest.approx(kendall(bottom_swapped, y))
    assert weighted_kendall(top_swapped, y) < weighted_kendall(bottom_swapped, y)


def test_top1_regret_hand_worked():
    assert top1_regret([0.1, 0.5, 0.3], [70, 80, 90]) == pytest.approx(10)
    assert top1_regret([0.1, 0.3, 0.5], [70, 80, 90]) == 0
    # tie for the top score between models 0 (90) and 1 (70): the worst of them counts
    assert top1_regret([0.5, 0.5, 0.1], [90, 70, 80]) == pytest.approx(20)
    assert top1_regret([2, 2, 2], [90, 70, 80]) == pytest.approx(20)
    # lower is better: the lowest score (model 1) is picked
    assert top1_regret([3, 1, 2], [70, 90, 80], higher_is_better=False) == 0


def test_relative_topk_hand_worked():
    s, y = [0.9, 0.8, 0.1, 0.5], [80, 70, 100, 90]
    assert [relative_topk(s, y, k) for k in (1, 2, 3, 4)] == pytest.approx([0.8, 0.8, 0.9, 1.0])
    # tie for first between 50 and 100: k=1 takes the worse
    assert relative_topk([1, 1, 0], [50, 100, 80], k=1) == pytest.approx(0.5)
    assert relative_topk([1, 1, 0], [50, 100, 80], k=2) == pytest.approx(1.0)
    assert relative_topk([1, 2, 3], [50, 100, 80], k=1, higher_is_better=False) == pytest.approx(0.5)


@pytest.mark.parametrize("seed", range(5))
def test_top1_regret_and_rel1_agree(seed):
    s, y = _zoo(12, seed)
    s = np.round(s)  # create ties
    assert relative_topk(s, y, 1) == pytest.approx(1 - top1_regret(s, y) / y.max(), abs=1e-14)


# ---------------------------------------------------------------- scipy directly


def _scipy(measure, s, y):
    return {
        pearson: lambda: stats.pearsonr(s, y).statistic,
        abs_pearson: lambda: abs(stats.pearsonr(s, y).statistic),
        spearman: lambda: stats.spearmanr(s, y).statistic,
        kendall: lambda: stats.kendalltau(s, y).statistic,
        weighted_kendall: lambda: stats.weightedtau(s, y).statistic,
    }[measure]()


@pytest.mark.parametrize("measure", CORRELATIONS)
@pytest.mark.parametrize("seed", range(4))
def test_matches_scipy(measure, seed):
    s, y = _zoo(11, seed, noise=1.0)
    assert measure(s, y) == pytest.approx(_scipy(measure, s, y), abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4)), min_size=3, max_size=12))
def test_matches_scipy_with_ties(pairs):
    s, y = np.array(pairs, dtype=float).T
    if np.ptp(s) == 0 or np.ptp(y) == 0:
        for measure in CORRELATIONS:
            with pytest.raises(ValueError, match="constant"):
                measure(s, y)
        return
    for measure in CORRELATIONS:
        assert measure(s, y) == pytest.approx(_scipy(measure, s, y), abs=1e-12)


# ---------------------------------------------------------------- direction and inputs


@pytest.mark.parametrize("measure", ALL)
def test_lower_is_better_equals_negated_score(measure):
    s, y = _zoo(10, 3)
    s = np.round(s, 1)
    assert measure(s, y, higher_is_better=False) == pytest.approx(measure(-s, y), abs=1e-14)


def test_direction_flips_sign_of_correlations():
    s, y = _zoo(10, 4)
    for measure in (pearson, spearman, kendall):
        assert measure(s, y, higher_is_better=False) == pytest.approx(-measure(s, y), abs=1e-14)
    assert abs_pearson(s, y, higher_is_better=False) == pytest.approx(abs_pearson(s, y))


@pytest.mark.parametrize("measure", ALL)
def test_keyed_inputs_align_on_model_names(measure):
    s, y = _zoo(8, 5)
    names = [f"model{i}" for i in range(8)]
    order = np.random.default_rng(0).permutation(8)
    s_series = pd.Series(s, index=names)
    y_dict = {names[i]: y[i] for i in order}  # different order
    assert measure(s_series, y_dict) == pytest.approx(measure(s, y), abs=1e-14)


@pytest.mark.parametrize(
    ("s", "y", "match"),
    [
        ([1, 2, 3], [1, 2], "lengths must match"),
        ([1], [1], "at least 2 models"),
        ([1, np.nan, 3], [1, 2, 3], "NaN"),
        ([1, 2, 3], [1, 2, np.inf], "NaN or inf"),
        ([[1, 2], [3, 4]], [[1, 2], [3, 4]], "1-D"),
        ({"a": 1, "b": 2}, [1, 2], "both as arrays or both keyed"),
        ({"a": 1, "b": 2}, {"a": 1, "c": 2}, "different models"),
        ([1, 1, 1], [1, 2, 3], "constant"),
        ([1, 2, 3], [5, 5, 5], "constant"),
    ],
)
def test_bad_input_raises(s, y, match):
    with pytest.raises(ValueError, match=match):
        pearson(s, y)


def test_bad_input_raises_for_every_measure():
    for measure in ALL:
        with pytest.raises(ValueError, match="NaN"):
            measure([1.0, np.nan, 2.0], [1.0, 2.0, 3.0])


def test_relative_topk_bad_input():
    with pytest.raises(ValueError, match="k must be"):
        relative_topk([1, 2, 3], [1, 2, 3], k=4)
    with pytest.raises(ValueError, match="k must be"):
        relative_topk([1, 2, 3], [1, 2, 3], k=0)
    with pytest.raises(ValueError, match="non-negative"):
        relative_topk([1, 2, 3], [-1, 2, 3])


# ---------------------------------------------------------------- bootstrap


def test_bootstrap_deterministic_and_seeded():
    s, y = _zoo(15, 6)
    a = bootstrap_ci(kendall, s, y, n=500, seed=3)
    assert a == bootstrap_ci(kendall, s, y, n=500, seed=3)
    assert a[1:] != bootstrap_ci(kendall, s, y, n=500, seed=4)[1:]
    assert a[0] == kendall(s, y)


@pytest.mark.parametrize("measure", ALL)
def test_bootstrap_interval_contains_point(measure):
    s, y = _zoo(20, 7)
    point, low, high = bootstrap_ci(measure, s, y, n=400)
    assert point == pytest.approx(measure(s, y))
    assert low <= point <= high


@pytest.mark.parametrize("levels", [None, 3])
@pytest.mark.parametrize("m", [2, 5, 14, 40])
def test_bootstrapped_weighted_kendall_is_scipys_on_every_draw(m, levels):
    """The vectorised draws equal scipy.stats.weightedtau on each resample: duplicated models, ties in one or both."""
    rng = np.random.default_rng(m)
    s, y = rng.normal(size=(2, m)) if levels is None else [rng.permutation(np.arange(m) % levels) for _ in "sy"]
    draws = bootstrap_draws(weighted_kendall, s, y, n=300, seed=m)
    idx = np.random.default_rng(m).integers(0, m, size=(300, m))  # bootstrap_draws's resamples
    expected = np.array([stats.weightedtau(s[i], y[i]).statistic if np.ptp(i) and np.ptp(s[i]) and np.ptp(y[i])
                         else np.nan for i in idx])  # fmt: skip
    assert np.array_equal(np.isnan(draws), np.isnan(expected)) and np.isfinite(draws).sum() > 100
    assert draws == pytest.approx(expected, abs=1e-12, nan_ok=True)


@pytest.mark.parametrize("measure", [pearson, spearman, kendall, weighted_kendall])
def test_bootstrap_width_shrinks_with_more_models(measure):
    widths = []
    for m in (10, 200):
        s, y = _zoo(m, 8, noise=1.0)
        _, low, high = bootstrap_ci(measure, s, y, n=300, seed=1)
        widths.append(high - low)
    assert widths[1] < widths[0] / 2


def test_bootstrap_level_widens_interval():
    s, y = _zoo(15, 9)
    _, l90, h90 = bootstrap_ci(pearson, s, y, n=1000, level=0.9)
    _, l99, h99 = bootstrap_ci(pearson, s, y, n=1000, level=0.99)
    assert l99 <= l90 and h90 <= h99


def _scipy_pearson(s, y):
    if np.ptp(s) == 0 or np.ptp(y) == 0:
        raise ValueError("constant")
    return stats.pearsonr(s, y).statistic


def _scipy_kendall_lower(s, y, higher_is_better=True):
    if np.ptp(s) == 0 or np.ptp(y) == 0:
        raise ValueError("constant")
    return stats.kendalltau(s if higher_is_better else -s, y).statistic


def _loop_regret(s, y):
    best = max(range(len(s)), key=lambda i: (s[i], -y[i]))  # top score, worst performance among ties
    return max(y) - y[best]


@pytest.mark.parametrize(
    ("ours", "independent", "kwargs"),
    [
        (pearson, _scipy_pearson, {}),
        (kendall, _scipy_kendall_lower, {"higher_is_better": False}),
        (top1_regret, _loop_regret, {}),
    ],
)
def test_bootstrap_vectorised_matches_loop_over_independent_metric(ours, independent, kwargs):
    # a metric nclib does not know goes through the plain loop; both use the same resamples for a seed
    s, y = _zoo(9, 10)
    s = np.round(s, 1)
    fast = bootstrap_ci(ours, s, y, n=300, seed=2, **kwargs)
    slow = bootstrap_ci(independent, s, y, n=300, seed=2, **kwargs)
    assert fast == pytest.approx(slow, abs=1e-12)


def test_bootstrap_is_a_percentile_interval_over_resampled_models():
    s, y = _zoo(7, 13)
    seen = []

    def recording_mean(s_, y_):  # records each call: the full data first, then every resample
        assert set(zip(s_, y_, strict=True)) <= set(zip(s, y, strict=True))  # models drawn from the zoo
        seen.append(float(np.mean(y_)))
        return seen[-1]

    point, low, high = bootstrap_ci(recording_mean, s, y, n=500, level=0.8)
    assert point == seen[0] == pytest.approx(np.mean(y))
    assert 490 < len(seen) - 1 <= 500  # resamples with a single distinct model are skipped
    assert (low, high) == pytest.approx(tuple(np.percentile(seen[1:], [10, 90])), abs=1e-12)


@pytest.mark.parametrize("metric", [top1_regret, _loop_regret])
def test_bootstrap_skips_single_model_resamples(metric):
    # the score ranks the models in reverse: regret >= 1 on every resample of 2+ distinct models, 0 on one of
    # a single model (3 in 27 resamples, enough to pull the 2.5% percentile to 0 if they were kept)
    assert bootstrap_ci(metric, [2.0, 1.0, 0.0], [0.0, 1.0, 2.0], n=400) == (2.0, 1.0, 2.0)


@pytest.mark.parametrize(("ours", "independent", "kwargs"), [
    (pearson, _scipy_pearson, {}),
    (kendall, _scipy_kendall_lower, {"higher_is_better": False}),
    (top1_regret, _loop_regret, {}),
])  # fmt: skip
def test_bootstrap_draws_are_the_documented_resamples_with_nan_where_undefined(ours, independent, kwargs):
    s, y = np.array([1.0, 1.0, 2.0]), _zoo(3, 14)[1]  # a tie: resamples of models 0 and 1 only have a constant score
    idx = np.random.default_rng(5).integers(0, 3, size=(200, 3))
    expected = []
    for row in idx:
        try:
            expected.append(independent(s[row], y[row], **kwargs) if np.ptp(row) > 0 else np.nan)
        except ValueError:  # constant score or performance on this resample
            expected.append(np.nan)
    got = bootstrap_draws(ours, s, y, n=200, seed=5, **kwargs)
    np.testing.assert_allclose(got, expected, atol=1e-12)  # NaN in the same places
    assert np.isnan(got).any() and np.isfinite(got).any()


def test_bootstrap_draws_of_a_single_model_are_undefined_even_for_the_regret():
    got = bootstrap_draws(top1_regret, [1.0, 0.0], [0.0, 1.0], n=100, seed=0)
    single = np.ptp(np.random.default_rng(0).integers(0, 2, size=(100, 2)), axis=1) == 0
    assert np.isnan(got[single]).all() and (got[~single] == 1.0).all()


def test_bootstrap_too_many_undefined_raises():
    # defined only when models 0 and 2 are both drawn: P = 12/27, so > half the resamples are undefined
    with pytest.raises(ValueError, match="undefined in"):
        bootstrap_ci(pearson, [0, 0, 1], [0, 1, 1], n=2000)


def test_bootstrap_bad_arguments():
    s, y = _zoo(6, 0)
    with pytest.raises(ValueError, match="level"):
        bootstrap_ci(pearson, s, y, level=1.5)
    with pytest.raises(ValueError, match="resamples"):
        bootstrap_ci(pearson, s, y, n=0)


# ---------------------------------------------------------------- correlation_table


def test_drop_constant_keeps_the_scores_that_vary_over_their_models():
    scores = pd.DataFrame({"flat": [0.5, 0.5, 0.5], "flat_but_missing": [1.0, np.nan, 1.0],
                           "one": [np.nan, 2.0, np.nan], "varies": [1.0, 2.0, np.nan], "none": [np.nan] * 3},
                          index=["a", "b", "c"])  # fmt: skip
    kept = drop_constant(scores)
    assert list(kept.columns) == ["varies"]
    pd.testing.assert_frame_equal(kept, scores[["varies"]])


@pytest.fixture
def fake_registry(monkeypatch):
    """A stand-in for nclib.scores (directions only), so these tests do not depend on the score modules."""
    module = types.ModuleType("nclib.scores")
    module.REGISTRY = {
        "nc": types.SimpleNamespace(higher_is_better=False),
        "logme": types.SimpleNamespace(higher_is_better=True),
    }
    monkeypatch.setitem(sys.modules, "nclib.scores", module)


def test_correlation_table(fake_registry):
    s, y = _zoo(10, 11)
    models = [f"m{i}" for i in range(10)]
    perf = dict(zip(models, y, strict=True))
    logme_scores = dict(zip(models, s, strict=True))
    nc_scores = dict(zip(models[:8], -s[:8], strict=True))  # lower is better; two models not scored
    out = correlation_table({"nc": nc_scores, "logme": logme_scores}, perf, n_boot=200)
    assert list(out.columns) == ["score", "measure", "value", "low", "high", "n_models"]
    assert len(out) == 2 * 5
    nc_rows = out[out.score == "nc"].set_index("measure")
    assert (nc_rows.n_models == 8).all()
    # NC is lower-is-better: negated, so its Pearson is positive here
    assert nc_rows.loc["pearson", "value"] == pytest.approx(stats.pearsonr(s[:8], y[:8]).statistic)
    assert nc_rows.loc["weighted_kendall", "value"] == pytest.approx(stats.weightedtau(s[:8], y[:8]).statistic)
    logme_rows = out[out.score == "logme"].set_index("measure")
    assert logme_rows.loc["kendall", "value"] == pytest.approx(stats.kendalltau(s, y).statistic)
    assert (out.low <= out.value).all() and (out.value <= out.high).all()
    # a DataFrame (one column per score, one row per model) gives the same table
    frame = pd.DataFrame({"nc": nc_scores, "logme": logme_scores})
    pd.testing.assert_frame_equal(correlation_table(frame, pd.Series(perf), n_boot=200), out)


def test_correlation_table_bad_input(fake_registry):
    perf = {"a": 1.0, "b": 2.0, "c": 3.0}
    with pytest.raises(ValueError, match="unknown measure"):
        correlation_table({"nc": perf}, perf, measures=("nope",))
    with pytest.raises(ValueError, match="not in nclib.scores.REGISTRY"):
        correlation_table({"mystery": perf}, perf)
    with pytest.raises(ValueError, match="no performance"):
        correlation_table({"nc": {**perf, "d": 4.0}}, perf)


def test_correlation_table_uses_real_registry_direction():
    try:
        from nclib.scores import REGISTRY
    except ImportError as exc:
        pytest.skip(f"nclib.scores not importable yet: {exc}")
    s, y = _zoo(8, 12)
    models = [f"m{i}" for i in range(8)]
    perf = dict(zip(models, y, strict=True))
    out = correlation_table({"nc": dict(zip(models, s, strict=True))}, perf, measures=("pearson",), n_boot=100)
    sign = 1 if REGISTRY["nc"].higher_is_better else -1
    assert not REGISTRY["nc"].higher_is_better
    assert out.value.iloc[0] == pytest.approx(sign * stats.pearsonr(s, y).statistic)
