"""The claims ledger (nclib.claims): the verdict rule, each kind of claim on tables whose answer is known by
construction, the ledger's columns on the tiny profile, and the nc_demo score it reads.

The tiny ledger runs the pipeline once per module (params/tiny.yaml's overrides, grids in a thread of this
process) in ``$NCLIB_CACHE`` when it is set, else in a temporary folder (about a minute cold).
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from nclib import claims, pipeline
from nclib.config import load_profile
from nclib.data import synth
from nclib.evaluate import abs_pearson
from nclib.scores import REGISTRY
from nclib.scores.nc import nc

MODELS = [f"m{i}" for i in range(10)]
PERF = pd.Series(np.linspace(0.5, 0.95, 10), index=MODELS)
NOISY = PERF + np.random.default_rng(0).normal(0, 0.06, 10)  # r = 0.95 with PERF
T_975_2 = 4.302652729911275  # Student t, 97.5 % quantile, 2 degrees of freedom (tables)


# ---------------------------------------------------------------------------------------------------------------
# The rule
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("low", "high", "paper", "null", "expected"), [
    (0.5, 0.99, 0.93, 0.0, "reproduced"),
    (0.1, 0.8, 0.93, 0.0, "not reproduced"),  # below the paper's value
    (0.95, 1.0, 0.93, 0.0, "not reproduced"),  # above it
    (-0.2, 0.95, 0.93, 0.0, "inconclusive"),
    (0.0, 0.95, 0.93, 0.0, "inconclusive"),  # the null on the boundary counts as contained
    (1.0, 1.0, 1.0, None, "reproduced"),  # an exact value (a rank) without a null
    (3.0, 3.0, 1.0, None, "not reproduced"),
    (math.nan, math.nan, 0.93, 0.0, "not testable"),
])  # fmt: skip
def test_value_claims(low, high, paper, null, expected):
    assert claims.verdict(low, high, paper, null) == expected


@pytest.mark.parametrize(("low", "high", "null", "below", "expected"), [
    (0.1, 0.5, 0.0, False, "reproduced"),
    (-0.5, -0.1, 0.0, False, "not reproduced"),
    (-0.1, 0.2, 0.0, False, "inconclusive"),
    (0.0, 0.2, 0.0, False, "inconclusive"),  # low must be strictly above
    (0.03, 0.03, 0.1, True, "reproduced"),  # the NC1 ratio below 0.1
    (0.5, 0.5, 0.1, True, "not reproduced"),
    (0.05, 0.2, 0.1, True, "inconclusive"),
    (0.2, math.nan, 0.0, False, "not testable"),
])  # fmt: skip
def test_directional_claims(low, high, null, below, expected):
    assert claims.verdict(low, high, None, null, below) == expected


def test_bad_intervals_are_refused():
    with pytest.raises(ValueError, match="low 0.5 is above its high 0.1"):
        claims.verdict(0.5, 0.1, 0.3)
    with pytest.raises(ValueError, match="needs the boundary"):
        claims.verdict(0.1, 0.5, None, None)
    with pytest.raises(ValueError, match="verdict must be one of"):
        claims.row("c", "f", "s", 1.0, "r", outcome="maybe")


def test_reasons_are_built_from_the_numbers_and_name_the_side():
    assert claims.judge("r over 6 models", 0.5, 0.1, 0.8, 0.93) == (
        "not reproduced", "r over 6 models is 0.50 [0.10, 0.80]: below the paper's 0.93.")
    assert "above the paper's 0.44" in claims.judge("r", 0.99, 0.97, 1.0, 0.44)[1]
    assert claims.judge("gap", 0.2, -0.1, 0.5)[1] == "gap is 0.20 [-0.10, 0.50]: it straddles 0.00, so the " \
                                                     "direction is not settled."
    assert claims.judge("rank", 3, 3, 3, 1, None)[1] == "rank is 3; the paper: 1."
    assert claims.judge("rank", 1, 1, 1, 1, None)[1] == "rank is 1, as the paper reports."
    assert claims.judge("ratio", 0.031, 0.031, 0.031, null=0.1, below=True)[1] == (
        "ratio is 0.03: wholly below 0.10, as the paper says.")


# ---------------------------------------------------------------------------------------------------------------
# Each kind of claim, on tables whose answer is known
# ---------------------------------------------------------------------------------------------------------------
def _bootstrap_r(s: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """The percentile interval of Pearson r over the resamples of numpy's default_rng(0), computed directly."""
    idx = np.random.default_rng(claims.SEED).integers(0, len(s), size=(claims.N_BOOT, len(s)))
    rs = [np.corrcoef(s[i], p[i])[0, 1] for i in idx if np.ptp(i) > 0]
    low, high = np.percentile(rs, [2.5, 97.5])
    return float(low), float(high)


def test_a_score_that_follows_performance_reproduces_and_one_pointing_backwards_does_not():
    row = claims.correlation_claim("c", "Fig. 2a", "s", NOISY, PERF, "logme", 0.93)
    assert row["verdict"] == "reproduced" and row["n_models"] == 10
    assert row["ours"] == pytest.approx(np.corrcoef(NOISY, PERF)[0, 1], abs=1e-12)
    assert (row["low"], row["high"]) == pytest.approx(_bootstrap_r(NOISY.to_numpy(), PERF.to_numpy()), abs=1e-9)
    assert row["reason"] == (f"r over 10 models is {row['ours']:.2f} [{row['low']:.2f}, {row['high']:.2f}]: it holds "
                             f"the paper's 0.93 and excludes 0.00.")
    # NC is lower-is-better: the same values as NC point the wrong way, their negation the right way
    assert claims.correlation_claim("c", "f", "s", NOISY, PERF, "nc", 0.93)["verdict"] == "not reproduced"
    assert claims.correlation_claim("c", "f", "s", -NOISY, PERF, "nc", 0.93)["ours"] == pytest.approx(row["ours"])


def test_a_weak_zoo_is_inconclusive_and_a_constant_or_small_one_not_testable():
    few = list("abcdef")
    perf = pd.Series([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], index=few)
    score = pd.Series([0.3, 0.1, 0.4, 0.2, 0.6, 0.5], index=few)  # r = 0.66 over 6 models
    weak = claims.correlation_claim("c", "f", "s", score, perf, "logme", 0.76)
    assert weak["verdict"] == "inconclusive" and weak["low"] < 0 < 0.76 < weak["high"]
    constant = claims.correlation_claim("c", "f", "s", pd.Series(1.0, index=few), perf, "logme", 0.76)
    assert constant["verdict"] == "not testable" and "undefined" in constant["reason"]
    four = claims.correlation_claim("c", "f", "s", score.iloc[:4], perf, "logme", 0.76)
    assert four["verdict"] == "not testable" and "at least 5" in four["reason"]
    assert math.isnan(four["ours"]) and four["n_models"] == 4


def test_orderings_are_paired_over_the_models_both_scores_cover():
    assert claims.paired_difference(abs_pearson, NOISY, NOISY, PERF) == (0.0, 0.0, 0.0, 10)  # same resamples
    row = claims.ordering_claim("o", "f", "s", PERF, NOISY, PERF, ("logme", "leep"), (0.76, 0.44))
    assert row["verdict"] == "reproduced" and row["paper"] == "0.76 vs 0.44"
    assert row["ours"] == pytest.approx(1 - abs(np.corrcoef(NOISY, PERF)[0, 1]), abs=1e-12)
    backwards = claims.ordering_claim("o", "f", "s", NOISY, PERF, PERF, ("logme", "leep"), (0.76, 0.44))
    assert backwards["verdict"] == "not reproduced"
    equal = claims.ordering_claim("o", "f", "s", NOISY, NOISY, PERF, ("logme", "leep"), (0.76, 0.44))
    assert equal["verdict"] == "inconclusive"
    partial = NOISY.copy()
    partial.iloc[:3] = np.nan  # LEEP: models without a source head
    assert claims.ordering_claim("o", "f", "s", PERF, partial, PERF, ("logme", "leep"), (0.76, 0.44))["n_models"] == 7


def test_seed_intervals_are_student_t():
    mean, low, high = claims.seed_interval(np.array([1.0, 2.0, 3.0]))
    assert (mean, low, high) == pytest.approx((2.0, 2.0 - T_975_2 / math.sqrt(3), 2.0 + T_975_2 / math.sqrt(3)))
    with pytest.raises(ValueError, match="at least 2 seeds"):
        claims.seed_interval(np.array([1.0]))


PER_SEED = pd.DataFrame({0: [0.90, 0.80, 0.50], 1: [0.91, 0.82, 0.52], 2: [0.92, 0.81, 0.49]}, index=["a", "b", "c"])


def test_top_pick_reproduces_when_the_pick_is_not_the_best():
    second = claims.top_pick_claim("t", "f", "s", pd.Series({"a": 1.0, "b": 2.0, "c": 0.0}), PER_SEED, "logme")
    assert second["verdict"] == "reproduced" and second["reason"].startswith("LogME ranks b first; ")
    assert second["ours"] == pytest.approx(0.10) and second["n_models"] == 3
    best = claims.top_pick_claim("t", "f", "s", pd.Series({"a": 0.1, "b": 0.2, "c": 0.3}), PER_SEED, "nc")  # lower
    assert best["verdict"] == "not reproduced" and best["ours"] == pytest.approx(-0.10)
    tied = claims.top_pick_claim("t", "f", "s", pd.Series({"a": 2.0, "b": 2.0, "c": 0.0}), PER_SEED, "logme")
    assert tied["reason"].startswith("LogME ranks b first")  # a tie goes to the worse model
    one_seed = claims.top_pick_claim("t", "f", "s", pd.Series({"a": 1.0, "b": 2.0, "c": 0.0}), PER_SEED[[0]], "logme")
    assert one_seed["verdict"] == "not testable" and "1 seed(s)" in one_seed["reason"]


def test_gaps_and_ranks():
    gap = claims.gap_claim("g", "f", "s", PER_SEED, "b", "c")
    assert gap["verdict"] == "reproduced" and gap["ours"] == pytest.approx((0.30 + 0.30 + 0.32) / 3)
    assert claims.gap_claim("g", "f", "s", PER_SEED, "c", "b")["verdict"] == "not reproduced"
    nc_values = pd.Series({"dcase_asc": 0.1, "cnn_music": 0.2, "crnn_music": 0.3})
    first = claims.rank_claim("r", "f", "s", nc_values, "nc", "dcase_asc", 1)  # NC: lower is better
    assert (first["ours"], first["low"], first["high"], first["verdict"]) == (1.0, 1.0, 1.0, "reproduced")
    assert claims.rank_claim("r", "f", "s", nc_values, "logme", "dcase_asc", 1)["ours"] == 3.0  # LogME: higher
    assert claims.rank_claim("r", "f", "s", nc_values, "logme", "dcase_asc", 1)["verdict"] == "not reproduced"
    assert claims.rank_claim("r", "f", "s", nc_values, "nc", "densenet121", 1)["verdict"] == "not testable"


def test_collapse_claims():
    base = pd.DataFrame({"epoch": [1, 2, 3], "nc1": [10.0, 1.0, 0.5]})
    ratio, accuracy = claims.collapse_claims(base, "crnn_music")
    assert (ratio["claim"], ratio["ours"], ratio["verdict"]) == ("fig1_nc1_ratio", 0.05, "reproduced")
    assert accuracy["verdict"] == "not testable" and "no training accuracy" in accuracy["reason"]
    fitted = claims.collapse_claims(base.assign(train_accuracy=[0.5, 0.9, 1.0]), "m")[1]
    assert (fitted["ours"], fitted["verdict"]) == (1.0, "reproduced")
    assert claims.collapse_claims(base.assign(train_accuracy=[0.5, 0.9, 0.95]), "m")[1]["verdict"] == "not reproduced"
    assert claims.collapse_claims(base.assign(nc1=[10.0, 5.0, 4.0]), "m")[0]["verdict"] == "not reproduced"
    assert [r["verdict"] for r in claims.collapse_claims(base.iloc[:1], "m")] == ["not testable"] * 2


def _history(loss_gap: float, val_gap: float, seeds: int = 3) -> pd.DataFrame:
    """Two models over 3 epochs; ``second`` has loss + loss_gap and validation metric + val_gap (+ seed noise)."""
    rows = []
    for seed in range(seeds):
        for model, dl, dv in (("first", 0.0, 0.0), ("second", loss_gap, val_gap)):
            for epoch in (1, 2, 3):
                rows.append({"model": model, "seed": seed, "epoch": epoch, "train_loss": 1 / epoch + dl + 0.01 * seed,
                             "val_metric": 0.6 + 0.05 * epoch + dv - 0.01 * seed * (model == "first")})
    return pd.DataFrame(rows)


def test_dynamics_claims():
    loss, val = claims.dynamics_claims(_history(0.2, 0.1), "first", "second")
    assert (loss["claim"], loss["verdict"], val["claim"], val["verdict"]) == (
        "fig4_train_loss", "reproduced", "fig4_val_metric", "reproduced")
    assert loss["ours"] == pytest.approx(0.2) and val["ours"] == pytest.approx(0.11)
    assert [r["verdict"] for r in claims.dynamics_claims(_history(-0.2, -0.1), "first", "second")] == [
        "not reproduced", "not reproduced"]
    assert [r["verdict"] for r in claims.dynamics_claims(_history(0.2, 0.1, seeds=1), "first", "second")] == [
        "not testable", "not testable"]


def test_split_and_size_claims():
    val = claims.split_claim("v", "f", "s", NOISY, PERF, PERF, "logme")  # validation scores follow performance
    assert val["verdict"] == "reproduced" and val["ours"] == pytest.approx(1 - np.corrcoef(NOISY, PERF)[0, 1])
    assert claims.split_claim("v", "f", "s", PERF, NOISY, PERF, "logme")["verdict"] == "not reproduced"
    params = pd.Series(np.arange(1, 11) * 1e6, index=MODELS)
    larger = claims.size_claim("z", "f", "s", pd.Series(np.arange(10.0), index=MODELS), params, PERF, "logme")
    assert (larger["ours"], larger["verdict"]) == (1.0, "reproduced")
    assert larger["reason"].endswith("(performance's own τ with size: 1.00).")
    smaller = claims.size_claim("z", "f", "s", pd.Series(np.arange(10.0), index=MODELS), params, PERF, "nc")
    assert (smaller["ours"], smaller["verdict"]) == (-1.0, "not reproduced")
    same = claims.size_claim("z", "f", "s", NOISY, pd.Series(1e6, index=MODELS), PERF, "logme")
    assert same["verdict"] == "not testable"


def test_balanced_labels():
    assert claims.balanced(np.repeat([0, 1, 2], 5)) and not claims.balanced(np.array([0, 0, 0, 1, 1]))


# ---------------------------------------------------------------------------------------------------------------
# nc_demo, and the ledger on the tiny profile
# ---------------------------------------------------------------------------------------------------------------
def test_nc_demo_is_the_demo_variant_of_nc():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], [30, 12, 6])  # imbalanced: the variants differ
    x = rng.normal(size=(len(y), 5)) + 3 * y[:, None]
    score = REGISTRY["nc_demo"]
    assert score(x, y) == nc(x, y, variant="demo") and score(x, y) != REGISTRY["nc"](x, y)
    assert not score.higher_is_better and score.needs == "features"


TINY = yaml.safe_load((Path(__file__).resolve().parents[1] / "params" / "tiny.yaml").read_text())["overrides"]
needs_audio = pytest.mark.skipif(
    bool(synth.missing_packages("synth_scenes") + synth.missing_packages("synth_music")
         + synth.missing_packages("synth_speech")),
    reason="the mini audio needs the Debian packages espeak-ng, fluidsynth, fluid-soundfont-gm, sonic-pi-samples",
)  # fmt: skip


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    profile = load_profile("mini", **TINY, cache_dir=os.environ.get("NCLIB_CACHE") or tmp_path_factory.mktemp("cache"))
    with ThreadPoolExecutor(1) as executor:  # the grids in this process; the ledger then reads them cached
        pipeline.audio_zoo(profile, executor)
        for track in ("image", "audio"):
            for strategy in ("linear", "finetune"):
                pipeline.transfer_results(profile, track, strategy, executor)
    yield profile, claims.ledger(profile)
    torch.set_num_threads(threads)


@needs_audio
def test_ledger_on_tiny(tiny):
    profile, table = tiny
    assert list(table.columns) == list(claims.COLUMNS)
    assert set(table["verdict"]) <= set(claims.VERDICTS) and table["claim"].is_unique
    assert table["reason"].str.len().gt(0).all() and table["statement"].str.len().gt(0).all()
    tested = table[table["verdict"] != "not testable"]
    assert (tested["low"] <= tested["high"]).all() and table.loc[table["verdict"] == "not testable", "low"].isna().all()
    reported = pipeline.paper_reported().set_index(["figure", "strategy", "score"])["abs_pearson"]
    for track, figure in (("image", "fig2"), ("audio", "fig3")):
        for strategy, reported_as in (("linear", "linear_head"), ("finetune", "full_finetune")):
            for score in ("leep", "logme", "nc"):
                r = table.set_index("claim").loc[f"r_{track}_{strategy}_{score}"]
                assert r["paper"] == reported[figure, reported_as, score] and r["measure"] == "r"
    demo = set(table.loc[table["claim"].str.endswith("_nc_demo"), "claim"])
    assert not claims.balanced(pipeline.audio_labels(profile, "train"))  # tiny's coughs: 49 / 22
    assert claims.balanced(pipeline.image_labels(profile, "train"))
    assert demo == {"r_audio_linear_nc_demo", "r_audio_finetune_nc_demo"}  # only where the variants can differ
    assert table.set_index("claim").loc["fig4_train_loss", "verdict"] == "not testable"  # tiny has one seed
    shown = claims.display_table(table)
    assert list(shown.columns) == ["claim", "paper", "ours", "verdict", "reason"]
    assert (shown.loc[table["verdict"] == "not testable", "ours"] == "—").all()


def test_summary_counts_and_names_the_claims_of_each_verdict():
    table = pd.DataFrame({"claim": ["a", "b", "c"], "verdict": ["reproduced", "inconclusive", "reproduced"]})
    assert claims.summary(table) == "Of these 3 claims, 2 reproduced (`a`, `c`); 1 inconclusive (`b`)."
    assert claims.summary(table.iloc[:0]) == "There are no claims here."


def test_dynamics_reading_says_which_half_of_the_papers_reading_holds():
    rows = [{"measure": "train_loss", "verdict": "reproduced"}, {"measure": "val_metric", "verdict": "not reproduced"}]
    assert claims.dynamics_reading(rows) == ("the first choice fits the training data faster, as in the paper, and it "
                                             "generalises better, against the paper")
    rows[0]["verdict"] = "inconclusive"
    assert claims.dynamics_reading(rows).startswith("the first choice is not shown to fit the training data faster")
