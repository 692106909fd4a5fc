"""nclib.pitfalls against hand-worked cases, scipy and naive loops (the pipeline-backed sweeps run in the notebooks)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from nclib import pitfalls
from nclib.scores import REGISTRY

MODELS = ["a", "b", "c", "d", "e"]
PERF = pd.Series([0.9, 0.7, 0.8, 0.4, 0.5], index=MODELS)
SCORES = pd.DataFrame({
    "nc": [0.1, 0.5, 0.2, 0.9, 0.4],  # lower is better
    "logme": [1.0, 3.0, 2.0, 0.5, np.nan],  # e has no value
}, index=MODELS)  # fmt: skip


def test_measure_values_match_scipy_with_direction():
    table = pitfalls.measure_values(SCORES, PERF, ("pearson", "kendall"))
    assert table.loc["nc", "pearson"] == pytest.approx(stats.pearsonr(-SCORES["nc"], PERF)[0])
    assert table.loc["nc", "kendall"] == pytest.approx(stats.kendalltau(-SCORES["nc"], PERF)[0])
    four = SCORES["logme"].dropna()
    assert table.loc["logme", "kendall"] == pytest.approx(stats.kendalltau(four, PERF[four.index])[0])


def test_measure_values_unknown_direction_and_constant():
    with pytest.raises(ValueError, match="higher_is_better"):
        pitfalls.measure_values(PERF.to_frame("val"), PERF)
    own = pitfalls.measure_values(PERF.to_frame("val"), PERF, ("kendall",), higher_is_better={"val": True})
    assert own.loc["val", "kendall"] == pytest.approx(1.0)
    flat = pitfalls.measure_values(pd.DataFrame({"nc": [1.0] * 5}, index=MODELS), PERF, ("pearson",))
    assert np.isnan(flat.loc["nc", "pearson"])


def test_bootstrap_models_resamples_each_scores_models_and_matches_scipy():
    draws = pitfalls.bootstrap_models(SCORES, PERF, ("pearson",), n=30, seed=3)
    assert list(draws.columns) == ["draw", "score", "measure", "value"] and len(draws) == 30 * 2
    for name, sign in (("nc", -1.0), ("logme", 1.0)):  # NC over the 5 models, LogME over the 4 it has a value for
        col = SCORES[name].dropna()
        idx = np.random.default_rng(3).integers(0, len(col), size=(30, len(col)))  # the documented resampling
        for d in range(30):
            s, p = sign * col.to_numpy()[idx[d]], PERF[col.index].to_numpy()[idx[d]]
            got = draws.query("draw == @d and score == @name")["value"].item()
            expected = stats.pearsonr(s, p)[0] if np.ptp(s) > 0 and np.ptp(p) > 0 else np.nan
            assert got == pytest.approx(expected, nan_ok=True)


def test_bootstrap_models_undefined_draws_are_nan_for_every_measure():
    two = pd.DataFrame({"logme": [1.0, 2.0]}, index=["a", "b"])
    draws = pitfalls.bootstrap_models(two, PERF[["a", "b"]], ("pearson", "top1_regret"), n=40, seed=1)
    idx = np.random.default_rng(1).integers(0, 2, size=(40, 2))
    single = np.ptp(idx, axis=1) == 0  # a draw of one model twice: undefined even for the regret
    for m in ("pearson", "top1_regret"):
        values = draws[draws["measure"] == m].sort_values("draw")["value"].to_numpy()
        assert np.isnan(values[single]).all() and np.isfinite(values[~single]).all() and single.any()
    lone = pitfalls.bootstrap_models(SCORES.assign(logme=[1.0, *[np.nan] * 4]), PERF, ("kendall",), n=5)
    assert lone[lone["score"] == "logme"]["value"].isna().all()


def test_a_perfect_score_wins_every_draw():
    table = pd.DataFrame({"logme": PERF * 2, "nc": PERF}, index=MODELS)  # NC: lower is better, so exactly wrong
    draws = pitfalls.bootstrap_models(table, PERF, ("kendall",), n=50)
    defined = draws.dropna()
    assert np.allclose(defined[defined["score"] == "logme"]["value"], 1.0)
    assert pitfalls.win_frequency(draws, "kendall")["logme"] == pytest.approx(1.0)


def test_bootstrap_seeds_with_one_seed_is_the_mean():
    runs = pd.DataFrame({"model": MODELS, "seed": 0, "test_metric": PERF.to_numpy()})
    draws = pitfalls.bootstrap_seeds(SCORES[["nc"]], runs, ("kendall",), n=5)
    assert draws["value"].to_numpy() == pytest.approx([stats.kendalltau(-SCORES["nc"], PERF)[0]] * 5)
    with pytest.raises(ValueError, match="no seed"):
        pitfalls.bootstrap_seeds(SCORES, runs[runs["model"] != "a"])


def test_win_frequency_and_pairwise_wins_hand_case():
    draws = pd.DataFrame({"draw": [0, 0, 0, 1, 1, 1], "score": ["x", "y", "z"] * 2, "measure": "kendall",
                          "value": [0.5, 0.5, 0.1, 0.2, 0.9, np.nan]})  # fmt: skip
    wins = pitfalls.win_frequency(draws, "kendall")
    assert wins.to_dict() == pytest.approx({"x": 0.25, "y": 0.75, "z": 0.0})
    assert wins.sum() == pytest.approx(1.0)
    pair = pitfalls.pairwise_wins(draws, "kendall")
    assert pair.loc["y", "x"] == 0.5 and pair.loc["x", "y"] == 0.0  # a tie in draw 0, y ahead in draw 1
    assert pair.loc["x", "z"] == 1.0  # z is defined in draw 0 only
    regret = draws.assign(measure="top1_regret")
    assert pitfalls.win_frequency(regret, "top1_regret").to_dict() == pytest.approx({"x": 0.5, "y": 0.0, "z": 0.5})


def test_fisher_z_and_min_models_against_a_naive_search():
    z = pitfalls.correlation_difference_z(0.93, 0.76, 21)
    assert z == pytest.approx((np.arctanh(0.93) - np.arctanh(0.76)) / np.sqrt(2 / 18))
    critical = stats.norm.ppf(0.975)
    naive = next(n for n in range(4, 1000)
                 if abs(np.arctanh(0.93) - np.arctanh(0.76)) / np.sqrt(2 / (n - 3)) >= critical)  # fmt: skip
    assert pitfalls.min_models(0.93, 0.76) == naive == 21


def test_steiger_z_hand_case_and_impossible_correlations():
    r1, r2, r12, n = 0.6, 0.3, 0.4, 50
    rbar = 0.45
    psi = 0.4 * (1 - 2 * rbar**2) - 0.5 * rbar**2 * (1 - 2 * rbar**2 - 0.16)
    expected = (math.atanh(0.6) - math.atanh(0.3)) * math.sqrt(47) / math.sqrt(2 - 2 * psi / (1 - rbar**2) ** 2)
    assert pitfalls.correlation_difference_z(r1, r2, n, r12) == pytest.approx(expected)
    with pytest.raises(ValueError, match="no three variables"):
        pitfalls.correlation_difference_z(0.93, 0.76, 10, 0.0)
    grid = pitfalls.min_models_grid(0.93, [0.76], [0.0, None])
    assert np.isnan(grid["models"].iloc[0]) and grid["models"].iloc[1] == 21


def test_steiger_test_holds_its_level_under_the_null():
    rng = np.random.default_rng(0)
    cov = np.array([[1, 0.5, 0.5], [0.5, 1, 0.6], [0.5, 0.6, 1]])  # performance, score 1, score 2: equal r
    n, sims = 40, 2000
    x = rng.multivariate_normal(np.zeros(3), cov, size=(sims, n))
    rejected = 0
    for sample in x:
        c = np.corrcoef(sample.T)
        rejected += abs(pitfalls.correlation_difference_z(c[0, 1], c[0, 2], n, c[1, 2])) >= stats.norm.ppf(0.975)
    assert 0.03 <= rejected / sims <= 0.075


def test_min_seeds_hand_case():
    runs = pd.DataFrame({"model": ["a", "a", "b", "b", "c", "c"], "seed": [0, 1] * 3,
                         "test_metric": [0.8, 1.0, 0.7, 0.9, 0.3, 0.5]})  # fmt: skip
    table = pitfalls.min_seeds(runs)
    assert list(table["better"]) == ["a", "b"]
    # a vs b: gap 0.1, sd 0.1414 each: n = ceil(1.96^2 * 0.04 / 0.01) = 16; b vs c: gap 0.4 -> ceil(0.96) = 1
    assert list(table["seeds_needed"]) == [16, 1]
    one = pitfalls.min_seeds(runs[runs["seed"] == 0])
    assert one["seeds_needed"].isna().all()


def test_subsets_sweep_counts_and_values():
    sweep = pitfalls.subsets_sweep(SCORES, PERF, ("kendall",), min_size=3)
    assert sweep["subset"].nunique() == math.comb(5, 3) + math.comb(5, 4) + 1
    row = sweep[(sweep["subset"] == "a+b+d") & (sweep["score"] == "nc")].iloc[0]
    assert row["value"] == pytest.approx(stats.kendalltau(-SCORES["nc"][["a", "b", "d"]], PERF[["a", "b", "d"]])[0])
    assert row["spread"] == pytest.approx(0.5) and row["a"] and not row["c"]
    effect = pitfalls.spread_effect(sweep, "kendall")
    nc = sweep[sweep["score"] == "nc"].dropna(subset=["value"])
    assert effect["nc"] == pytest.approx(stats.spearmanr(nc["spread"], nc["value"])[0])
    every = set(sweep["subset"])  # more sub-zoos than max_subsets: a seeded sample of distinct ones, same values
    part = pitfalls.subsets_sweep(SCORES, PERF, ("kendall",), min_size=3, max_subsets=7, seed=1)
    again = pitfalls.subsets_sweep(SCORES, PERF, ("kendall",), min_size=3, max_subsets=7, seed=1)
    pd.testing.assert_frame_equal(part, again)
    assert part["subset"].nunique() == 7 and set(part["subset"]) <= every
    merged = part.merge(sweep, on=["subset", "score", "measure"], suffixes=("", "_all"))
    np.testing.assert_allclose(merged["value"], merged["value_all"])
    with pytest.raises(ValueError, match="max_subsets"):
        pitfalls.subsets_sweep(SCORES, PERF, max_subsets=0)


def test_with_without_hand_case():
    table = pitfalls.with_without(SCORES, PERF, ["d"], ("pearson",)).set_index("score")
    rest = ["a", "b", "c", "e"]
    assert table.loc["nc", "without"] == pytest.approx(stats.pearsonr(-SCORES.loc[rest, "nc"], PERF[rest])[0])
    assert table.loc["nc", "change"] == pytest.approx(table.loc["nc", "with"] - table.loc["nc", "without"])
    with pytest.raises(ValueError, match="subset of the zoo"):
        pitfalls.with_without(SCORES, PERF, ["zz"])


def test_size_table_and_pairs():
    params = pd.Series([5e6, 1e6, 2e6, 3e6, 4e6], index=MODELS)
    size = pitfalls.size_table(params, SCORES, PERF).set_index("score")
    assert size.loc["performance", "tau_size"] == pytest.approx(stats.kendalltau(PERF, params)[0])
    assert size.loc["nc", "tau_size"] == pytest.approx(stats.kendalltau(-SCORES["nc"], params)[0])
    pairs = pitfalls.size_pairs(params, SCORES, PERF, tolerance=0.2)
    nc = pairs[pairs["score"] == "nc"]
    # nc range 0.8; |diffs| <= 0.16: (a, c) 0.1, (b, e) 0.1 (c - e would be 0.2: not close)
    assert {tuple(sorted(p)) for p in zip(nc["smaller"], nc["larger"], strict=True)} == {("a", "c"), ("b", "e")}
    ac = nc[nc["larger"] == "a"].iloc[0]  # c (2 M) is smaller than a (5 M); nc prefers a (0.1 < 0.2)
    assert ac["smaller"] == "c" and ac["score_gap"] == pytest.approx(-0.1 / 0.8)
    assert ac["performance_gap"] == pytest.approx(0.8 - 0.9)


def test_top_picks_lower_is_better_and_ties():
    picks = pitfalls.top_picks(SCORES, PERF).set_index("score")
    assert picks.loc["nc", "pick"] == "a" and picks.loc["nc", "pick_rank"] == 1 and picks.loc["nc", "regret"] == 0
    assert picks.loc["logme", "pick"] == "b" and picks.loc["logme", "pick_rank"] == 3
    tied = pitfalls.top_picks(pd.DataFrame({"logme": [1.0, 1.0, 0.0, 0.0, 0.0]}, index=MODELS), PERF)
    assert tied["pick"].item() == "b"  # a and b tie: the worse one


def test_stratified_half_and_rescoring_the_whole_data():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], [10, 7, 5])
    keep = pitfalls.stratified_half(labels, np.random.default_rng(1))
    assert len(set(keep)) == len(keep) and np.bincount(labels[keep]).tolist() == [5, 4, 3]
    features = {"m1": rng.normal(size=(22, 4)) + labels[:, None], "m2": rng.normal(size=(22, 3))}
    probs = {"m1": rng.dirichlet(np.ones(5), size=22), "m2": None}
    full = pitfalls.rescore_subsets(features, labels, probs, ["nc", "leep"], n=2, fraction=1.0)
    nc = REGISTRY["nc"](features["m1"], labels)
    assert full.loc[full["model"] == "m1", "nc"].to_numpy() == pytest.approx([nc, nc])
    assert full.loc[full["model"] == "m1", "leep"].iloc[0] == pytest.approx(REGISTRY["leep"](probs["m1"], labels))
    assert full.loc[full["model"] == "m2", "leep"].isna().all()
    draws = pitfalls.bootstrap_data(full, pd.Series({"m1": 0.9, "m2": 0.1}), ("kendall",))
    assert len(draws) == 2 * 2  # two draws, two scores; one model per score for LEEP: undefined
    assert draws[draws["score"] == "leep"]["value"].isna().all()


def test_per_layer_and_split_taus():
    index = pd.MultiIndex.from_product([["early", "late"], ["a", "b", "c"]], names=["layer", "model"])
    scores = pd.DataFrame({"logme": [1.0, 2.0, 3.0, 3.0, 1.0, 2.0]}, index=index)
    perf = pd.Series([0.1, 0.2, 0.3, 0.6, 0.4, 0.5], index=index)
    taus = pitfalls.per_layer(scores, perf).set_index("layer")["value"]
    assert taus["early"] == pytest.approx(1.0) and taus["late"] == pytest.approx(1.0)
    assert taus["all"] == pytest.approx(stats.kendalltau(scores["logme"], perf)[0])
    split = pd.concat({"train": SCORES, "val": -SCORES}, names=["split", "model"])
    table = pitfalls.split_taus(split, {"p": PERF}).set_index("score")
    assert table.loc["nc", "val"] == pytest.approx(-table.loc["nc", "train"])


def test_inter_score_r():
    assert pitfalls.inter_score_r(SCORES, "nc", "logme") == pytest.approx(
        np.corrcoef(-SCORES["nc"][:4], SCORES["logme"][:4])[0, 1])
    assert set(pitfalls.RESCORED) <= set(REGISTRY) and not set(pitfalls.RESCORED) & pitfalls.EXPENSIVE


def test_seed_agreement_is_kendall_between_the_seeds_rankings():
    rng = np.random.default_rng(0)
    models = [f"m{i}" for i in range(6)]
    runs = pd.DataFrame([{"model": m, "seed": s, "test_metric": i + rng.normal(scale=2)}
                         for i, m in enumerate(models) for s in (0, 1, 2)])  # fmt: skip
    table = pitfalls.seed_agreement(runs).set_index(["seed_a", "seed_b"])
    assert list(table.index) == [(0, 1), (0, 2), (1, 2)] and (table["n_models"] == 6).all()
    by_seed = runs.pivot(index="model", columns="seed", values="test_metric")
    for (a, b), row in table.iterrows():
        assert row["value"] == pytest.approx(stats.kendalltau(by_seed[a], by_seed[b]).statistic)
    exact = runs.assign(test_metric=runs["model"].str[1:].astype(float))  # seeds that agree perfectly
    assert (pitfalls.seed_agreement(exact)["value"] == 1).all()
    assert pitfalls.seed_agreement(runs[runs["seed"] == 0]).empty
