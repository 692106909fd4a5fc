"""Tests for nclib.published: the published tables recomputed, checked against scipy and plain loops over the CSVs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import nclib
from nclib import published

DATA = Path(nclib.__file__).parent / "published"
HALF_UNIT = 0.0005 + 1e-12  # the printed correlations have 3 decimals


@pytest.fixture(scope="module")
def recomputed() -> pd.DataFrame:
    return published.recompute_printed()


def _tllib() -> pd.DataFrame:
    return pd.read_csv(DATA / "published_tllib_model_selection.csv")


def test_every_printed_correlation_is_recomputed_as_scipy_does(recomputed):
    table = _tllib()
    assert len(recomputed) == 8 * 4 * 2
    reproduced = 0
    for row in recomputed.itertuples():
        part = table[table.dataset == row.dataset]
        assert len(part) == 10
        s, acc = part[row.score].to_numpy(), part.finetuned_acc.to_numpy()
        expected = (stats.pearsonr if row.measure == "pearson" else stats.weightedtau)(s, acc).statistic
        assert row.recomputed == pytest.approx(expected, abs=1e-12)
        assert row.difference == pytest.approx(expected - row.printed, abs=1e-12)
        follows = abs(expected - row.printed) <= HALF_UNIT
        assert (row.verdict == "reproduces") == follows, row
        reproduced += follows
    assert reproduced >= 10  # not vacuous: 11 of 32 Pearson and 20 of 32 weighted-tau cells (scipy 1.17)


def test_printed_values_are_tllibs():
    # spot checks against thuml/Transfer-Learning-Library examples/model_selection/README.md
    assert published.PRINTED["Aircraft"] == ((0.688, 0.127, 0.582, 0.173), (0.664, -0.264, 0.595, 0.002))
    assert published.PRINTED["SUN397"][1][3] == 0.873
    assert set(published.PRINTED) == set(_tllib().dataset)


@pytest.mark.parametrize(("text", "half"), [("-4.310", 5e-4), ("28.37", 5e-3), ("82.7", 0.05), ("117.23", 5e-3)])
def test_half_unit_of_the_last_printed_digit(text, half):
    assert published._half_unit(pd.Series([text]))[0] == pytest.approx(half)


def _synthetic(monkeypatch, scores: list[str], acc: list[str], printed: float) -> pd.DataFrame:
    rows = [{"dataset": "toy", "model": f"m{i}", "finetuned_acc": a, "hscore": s}
            for i, (s, a) in enumerate(zip(scores, acc, strict=True))]  # fmt: skip
    monkeypatch.setattr(published, "load", lambda name, as_text=False: pd.DataFrame(rows))
    monkeypatch.setattr(published, "SCORES", ("hscore",))
    monkeypatch.setattr(published, "PRINTED", {"toy": ((printed,), (printed,))})
    return published.recompute_printed(n_draws=1000)


def test_verdicts_on_a_hand_worked_table(monkeypatch):
    # perfectly linear numbers: r = weighted tau = 1 reproduce a printed 1.000
    exact = _synthetic(monkeypatch, ["1.0", "2.0", "3.0"], ["10.0", "20.0", "30.0"], 1.0)
    assert (exact.verdict == "reproduces").all()
    # rounding by +-0.05 cannot take these far from r = 1: a printed 0.5 does not follow
    far = _synthetic(monkeypatch, ["1.0", "2.0", "3.0"], ["10.0", "20.0", "30.0"], 0.5)
    assert (far.verdict == "does not follow").all() and (far.low > 0.99).all()
    # scores printed as integers (1, 2, 2) hide a tie: r = 0.866 as printed, yet (0.5, 1.6, 2.5) rounds to the same
    # print and gives r > 0.95, so a printed 0.950 is "within input rounding"
    assert stats.pearsonr([0.5, 1.6, 2.5], [1, 2, 3]).statistic > 0.95
    tied = _synthetic(monkeypatch, ["1", "2", "2"], ["1.0", "2.0", "3.0"], 0.95)
    pear = tied[tied.measure == "pearson"]
    assert pear.recomputed.iloc[0] == pytest.approx(stats.pearsonr([1, 2, 2], [1, 2, 3]).statistic)
    assert (pear.verdict == "within input rounding").all()


def test_dtd_nce_column_repeats_logme():
    table = _tllib()
    dtd = table[table.dataset == "DTD"]
    assert np.array_equal(dtd.nce.to_numpy(), dtd.logme.to_numpy())
    dup = published.duplicated_columns()
    assert dup.to_dict("records") == [{"dataset": "DTD", "score": "nce", "same_as": "logme"}]


def test_ground_truths_pair_the_same_model_and_dataset():
    both = published.ground_truths()
    assert len(both) == 8 * 10 and not both.isna().any().any()
    sfda = pd.read_csv(DATA / "published_sfda_finetune_acc.csv")
    lookup = {(d, m): a for d, m, a in sfda.itertuples(index=False)}
    for row in both.itertuples():
        key = (published.TLLIB_TO_SFDA_DATASET[row.dataset], published.TLLIB_TO_SFDA_MODEL[row.model])
        assert row.sfda_acc == lookup[key]
    aircraft = both[both.dataset == "Aircraft"].set_index("model")
    assert aircraft.loc["Inception V3", ["tllib_acc", "sfda_acc"]].tolist() == [88.8, 80.15]  # data/README.md
    assert aircraft.loc["MNasNet", ["tllib_acc", "sfda_acc"]].tolist() == [72.8, 66.48]


def test_ground_truth_agreement_matches_scipy():
    both = published.ground_truths()
    agreement = published.ground_truth_agreement().set_index("dataset")
    for dataset, part in both.groupby("dataset"):
        row = agreement.loc[dataset]
        a, b = part.tllib_acc.to_numpy(), part.sfda_acc.to_numpy()
        assert row.kendall == pytest.approx(stats.kendalltau(a, b).statistic, abs=1e-12)
        assert row.weighted_kendall == pytest.approx(stats.weightedtau(a, b).statistic, abs=1e-12)
        assert row.max_abs_diff == pytest.approx(np.abs(a - b).max())
        best = part.model.to_numpy()[[np.argmax(a), np.argmax(b)]]
        assert [row.best_tllib, row.best_sfda] == best.tolist() and row.best_changes == (best[0] != best[1])


def test_score_winners_match_a_plain_loop():
    both = published.ground_truths()
    winners = published.score_winners()
    assert len(winners) == 8 * 2
    for row in winners.itertuples():
        part = both[both.dataset == row.dataset]
        for truth in ("tllib", "sfda"):
            fn = stats.pearsonr if row.measure == "pearson" else stats.weightedtau
            values = [fn(part[s], part[f"{truth}_acc"]).statistic for s in published.SCORES]
            for s, v in zip(published.SCORES, values, strict=True):
                assert getattr(row, f"{s}_{truth}") == pytest.approx(v, abs=1e-12)
            assert getattr(row, f"winner_{truth}") == published.SCORES[int(np.argmax(values))]
        assert row.winner_changes == (row.winner_tllib != row.winner_sfda)


def test_figures_are_saved(tmp_path, recomputed):
    for name, fig in (("printed", published.plot_recomputed(recomputed, tmp_path / "a.png")),
                      ("truths", published.plot_ground_truths(tmp_path / "b.png"))):  # fmt: skip
        assert fig.axes, name
    assert (tmp_path / "a.png").stat().st_size > 0 and (tmp_path / "b.png").stat().st_size > 0
