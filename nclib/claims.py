"""The claims ledger: one row per claim of the paper, our number with its 95 % interval, and a verdict.

    table = ledger(profile)                      # one row per claim, from the cached pipeline
    verdict(0.2, 0.95, paper=0.93)               # "reproduced": the rule below, applied mechanically

Columns (:data:`COLUMNS`): ``claim`` (short id), ``figure``, ``statement`` (the paper's claim in our words),
``paper`` (its number, or text), ``measure`` (what ``ours`` is), ``ours``, ``low``, ``high`` (95 % interval),
``n_models``, ``verdict`` (one of :data:`VERDICTS`) and ``reason`` (a sentence built from the numbers).

**The verdict rule.** A *value* claim is a number the paper reports, with a null value (0 for a correlation or a
difference): *reproduced* when our 95 % interval contains the paper's value and excludes the null; *not
reproduced* when it excludes the paper's value (the reason says on which side); *inconclusive* when it contains
both. A value without a null (an exact fact such as a rank) is reproduced when the interval contains it and not
reproduced otherwise. A *directional* claim says a quantity lies beyond a boundary (above 0 for a difference that
should be positive; below 0.1 for the NC1 ratio): *reproduced* when the whole interval lies beyond it, *not
reproduced* when the whole interval lies on the other side, *inconclusive* otherwise. A claim is *not testable*
when the profile cannot compute it (too few models or seeds, a missing quantity, a task mini does not have).

Intervals over models are the percentile bootstrap of :func:`nclib.evaluate.bootstrap_ci` /
:func:`nclib.evaluate.bootstrap_draws` (``N_BOOT`` resamples, seed ``SEED``: every score of a zoo sees the same
resamples, so differences are paired). Intervals over transfer seeds are Student-t intervals of the mean paired
difference: a percentile bootstrap over 2 or 3 seeds cannot reach beyond their range (and over 2 leaves half its
resamples with one seed). A quantity computed once (a rank, Figure 1's single training run) has the point as its
interval. Correlations are oriented so that higher is better for every score (``REGISTRY[name].higher_is_better``):
the paper's |r| is compared with our oriented r, so a score that ranks the zoo upside down does not reproduce it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from nclib import pipeline
from nclib.config import Profile
from nclib.evaluate import abs_pearson, bootstrap_ci, bootstrap_draws, kendall, pearson
from nclib.scores import REGISTRY

COLUMNS = ("claim", "figure", "statement", "paper", "measure", "ours", "low", "high", "n_models", "verdict",
           "reason")  # fmt: skip
VERDICTS = ("reproduced", "not reproduced", "inconclusive", "not testable")
N_BOOT, SEED, LEVEL = 2000, 0, 0.95
# Fewer models make the bootstrap degenerate: a resample with 2 distinct models has r = +-1 whatever the scores, and
# 78 % of the resamples of 3 models, 34 % of 4, 10 % of 5 have at most 2.
MIN_MODELS = 5
PAPER_SCORES = ("leep", "logme", "nc")  # Figures 2-3
LABEL = {"leep": "LEEP", "logme": "LogME", "nc": "NC", "nc_demo": "NC (demo variant)"}
PANEL = {("image", "linear"): "Fig. 2a", ("image", "finetune"): "Fig. 2b", ("audio", "linear"): "Fig. 3a",
         ("audio", "finetune"): "Fig. 3b"}  # fmt: skip
STRATEGY = {"linear": "a linear head", "finetune": "full fine-tuning"}
REPORTED = {"image": "fig2", "audio": "fig3", "linear": "linear_head", "finetune": "full_finetune"}
PICK, RUNNER_UP = "dcase_asc", "cnn_music"  # Section 5: the audio models the paper names


# --------------------------------------------------------------------------------------------------------------
# The rule and its sentence
# --------------------------------------------------------------------------------------------------------------
def verdict(low: float, high: float, paper: float | None = None, null: float | None = 0.0, below: bool = False) -> str:
    """The verdict rule of this module's docstring on the interval [low, high].

    ``paper`` a number: a value claim with null value ``null`` (None: no null). ``paper`` None: a directional
    claim that the quantity is above ``null`` (``below=True``: below it). A NaN bound: "not testable".
    """
    if not (math.isfinite(low) and math.isfinite(high)):
        return "not testable"
    if low > high:
        raise ValueError(f"the interval's low {low} is above its high {high}: pass (low, high) in order")
    if paper is not None:
        if not low <= paper <= high:
            return "not reproduced"
        return "inconclusive" if null is not None and low <= null <= high else "reproduced"
    if null is None:
        raise ValueError("a directional claim (paper=None) needs the boundary it is claimed beyond: pass null")
    beyond, short = (high < null, low > null) if below else (low > null, high < null)
    return "reproduced" if beyond else "not reproduced" if short else "inconclusive"


def _num(x: float) -> str:
    if isinstance(x, int | np.integer):  # a rank
        return str(x)
    return f"{x:.2f}" if x == 0 or 0.01 <= abs(x) < 1000 else f"{x:.2g}"


def interval_text(ours: float, low: float, high: float) -> str:
    """``"0.52 [0.10, 0.95]"``; the point alone where the interval is the point."""
    return _num(ours) if low == high == ours else f"{_num(ours)} [{_num(low)}, {_num(high)}]"


def judge(what: str, ours: float, low: float, high: float, paper: float | None = None, null: float | None = 0.0,
          below: bool = False) -> tuple[str, str]:  # fmt: skip
    """(:func:`verdict`, the sentence saying why) for ``what`` (e.g. "r over 6 models") = ``ours`` [low, high]."""
    v = verdict(low, high, paper, null, below)
    head = f"{what} is {interval_text(ours, low, high)}"
    if paper is not None:
        if null is None:
            return v, f"{head}, as the paper reports." if v == "reproduced" else f"{head}; the paper: {_num(paper)}."
        if v == "not reproduced":
            return v, f"{head}: {'below' if high < paper else 'above'} the paper's {_num(paper)}."
        if v == "reproduced":
            return v, f"{head}: it holds the paper's {_num(paper)} and excludes {_num(null)}."
        return v, f"{head}: it holds both the paper's {_num(paper)} and {_num(null)}, so it cannot tell them apart."
    assert null is not None  # verdict() raised otherwise
    side, other = ("below", "above") if below else ("above", "below")
    if v == "reproduced":
        return v, f"{head}: wholly {side} {_num(null)}, as the paper says."
    if v == "not reproduced":
        return v, f"{head}: wholly {other} {_num(null)}, against the paper."
    return v, f"{head}: it straddles {_num(null)}, so the direction is not settled."


def row(claim: str, figure: str, statement: str, paper: Any, measure: str, ours: float = math.nan,
        low: float = math.nan, high: float = math.nan, n_models: int = 0, outcome: str = "not testable",
        reason: str = "") -> dict[str, Any]:  # fmt: skip
    """One ledger row (the keys of :data:`COLUMNS`); ``outcome`` is its verdict."""
    if outcome not in VERDICTS:
        raise ValueError(f"verdict must be one of {VERDICTS}, got {outcome!r}")
    return {"claim": claim, "figure": figure, "statement": statement, "paper": paper, "measure": measure,
            "ours": ours, "low": low, "high": high, "n_models": n_models, "verdict": outcome, "reason": reason}


def untestable(claim: str, figure: str, statement: str, paper: Any, measure: str, why: str,
               n_models: int = 0) -> dict[str, Any]:  # fmt: skip
    """A "not testable" row whose reason is ``why``."""
    return row(claim, figure, statement, paper, measure, n_models=n_models, reason=why)


# --------------------------------------------------------------------------------------------------------------
# Intervals
# --------------------------------------------------------------------------------------------------------------
def model_interval(metric: Callable[..., float], scores: pd.Series, performance: pd.Series,
                   higher_is_better: bool = True) -> tuple[float, float, float]:  # fmt: skip
    """(metric, low, high) of ``scores`` (NaN = not scored) against ``performance``: percentile bootstrap over the
    scored models (:func:`nclib.evaluate.bootstrap_ci`, ``N_BOOT`` resamples, seed ``SEED``)."""
    s = scores.dropna()
    return bootstrap_ci(metric, s, performance.loc[s.index], N_BOOT, SEED, LEVEL, higher_is_better=higher_is_better)


def paired_difference(metric: Callable[..., float], a: pd.Series, b: pd.Series, performance: pd.Series,
                      higher_a: bool = True, higher_b: bool = True) -> tuple[float, float, float, int]:  # fmt: skip
    """(metric(a) - metric(b), low, high, models): over the models both score, each resample the same for a and b
    (:func:`nclib.evaluate.bootstrap_draws` with the same seed over the same models)."""
    models = [m for m in performance.index if m in a.dropna().index and m in b.dropna().index]
    y = performance.loc[models]
    draws = [bootstrap_draws(metric, s.loc[models], y, N_BOOT, SEED, higher_is_better=h)
             for s, h in ((a, higher_a), (b, higher_b))]  # fmt: skip
    diff = np.round(draws[0] - draws[1], 12)  # a resample both scores fit equally gives 0, not +-1e-16
    diff = diff[np.isfinite(diff)]
    if diff.size * 2 < N_BOOT:
        raise ValueError(f"{getattr(metric, '__name__', 'metric')} is undefined in {N_BOOT - diff.size} of {N_BOOT} "
                         f"resamples of {len(models)} models")
    point = metric(a.loc[models], y, higher_is_better=higher_a) - metric(b.loc[models], y, higher_is_better=higher_b)
    low, high = np.percentile(diff, [50 * (1 - LEVEL), 50 * (1 + LEVEL)])
    return float(point), float(low), float(high), len(models)


def seed_interval(values: np.ndarray) -> tuple[float, float, float]:
    """(mean, low, high) of per-seed values: the Student-t ``LEVEL`` interval of the mean (needs >= 2 seeds)."""
    v = np.asarray(values, dtype=float)
    if v.ndim != 1 or v.size < 2 or not np.isfinite(v).all():
        raise ValueError(f"need finite values of at least 2 seeds for an interval over seeds, got {v.tolist()}")
    half = stats.t.ppf((1 + LEVEL) / 2, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size)
    return float(v.mean()), float(v.mean() - half), float(v.mean() + half)


def oriented(scores: pd.Series, name: str) -> pd.Series:
    """``scores`` of score ``name`` without NaN, negated where lower is better: higher is preferred."""
    s = scores.dropna().astype(float)
    return s if REGISTRY[name].higher_is_better else -s


def balanced(labels: np.ndarray) -> bool:
    """Whether every class present has the same count (then NC's demo variant is (C - 1) / 2 times Eq. 2)."""
    return np.unique(np.unique(np.asarray(labels), return_counts=True)[1]).size == 1


# --------------------------------------------------------------------------------------------------------------
# One function per kind of claim
# --------------------------------------------------------------------------------------------------------------
def correlation_claim(claim: str, figure: str, statement: str, scores: pd.Series, performance: pd.Series,
                      name: str, paper: float, note: str = "") -> dict[str, Any]:  # fmt: skip
    """The paper's |Pearson r| of score ``name`` (Figures 2-3) against our r, oriented so higher is better, with a
    bootstrap interval over models; value claim, null 0. ``note`` ends the reason (e.g. on NC's two variants)."""
    n = int(scores.notna().sum())
    if n < MIN_MODELS:
        return untestable(claim, figure, statement, paper, "r", f"{LABEL[name]} scores {n} models; a "
                          f"correlation needs at least {MIN_MODELS}.{note}", n)
    try:
        r, low, high = model_interval(pearson, scores, performance, REGISTRY[name].higher_is_better)
    except ValueError as exc:
        return untestable(claim, figure, statement, paper, "r", f"r is undefined here ({exc}).{note}", n)
    v, why = judge(f"r over {n} models", r, low, high, paper)
    return row(claim, figure, statement, paper, "r", r, low, high, n, v, why + note)


def ordering_claim(claim: str, figure: str, statement: str, a: pd.Series, b: pd.Series, performance: pd.Series,
                   names: tuple[str, str], paper: tuple[float, float]) -> dict[str, Any]:  # fmt: skip
    """|r| of score ``names[0]`` minus |r| of ``names[1]`` (the quantity of Figures 2-3), paired bootstrap over
    the models both score; directional claim (the paper: > 0). ``paper``: the paper's two |r|."""
    text = f"{_num(paper[0])} vs {_num(paper[1])}"
    n = int((a.notna() & b.notna()).sum())
    if n < MIN_MODELS:
        return untestable(claim, figure, statement, text, "Δ|r|", f"{LABEL[names[0]]} and {LABEL[names[1]]} both "
                          f"score {n} models; a correlation needs at least {MIN_MODELS}.", n)
    try:
        d, low, high, n = paired_difference(abs_pearson, a, b, performance, *(REGISTRY[s].higher_is_better
                                                                              for s in names))  # fmt: skip
    except ValueError as exc:
        return untestable(claim, figure, statement, text, "Δ|r|", f"|r| is undefined here ({exc}).", n)
    v, why = judge(f"|r| of {LABEL[names[0]]} minus {LABEL[names[1]]} over {n} models", d, low, high)
    return row(claim, figure, statement, text, "Δ|r|", d, low, high, n, v, why)


def gap_claim(claim: str, figure: str, statement: str, per_seed: pd.DataFrame, better: str, worse: str,
              paper: Any = "> 0", n_models: int = 2) -> dict[str, Any]:  # fmt: skip
    """Performance of ``better`` minus ``worse`` (``per_seed``: model x seed test metric), Student-t interval over
    seeds; directional claim (> 0)."""
    try:
        d, low, high = seed_interval((per_seed.loc[better] - per_seed.loc[worse]).to_numpy())
    except ValueError:
        return untestable(claim, figure, statement, paper, "gap", f"{per_seed.shape[1]} seed(s) of transfer: an "
                          f"interval over seeds needs at least 2.", n_models)
    v, why = judge(f"the test metric of {better} minus {worse}, mean over {per_seed.shape[1]} seeds,", d, low, high)
    return row(claim, figure, statement, paper, "gap", d, low, high, n_models, v, why)


def top_pick_claim(claim: str, figure: str, statement: str, scores: pd.Series, per_seed: pd.DataFrame,
                   name: str) -> dict[str, Any]:  # fmt: skip
    """"The model score ``name`` ranks first is not the best performer": the best other model's test metric minus
    the pick's, over seeds (> 0). Ties for first: the worst-performing of them (conservative); "best other": by
    the mean over seeds, so a pick that is the best gives a negative gap."""
    s = oriented(scores, name)
    mean = per_seed.loc[s.index].mean(axis=1)
    if len(s) < 2:
        return untestable(claim, figure, statement, "> 0", "gap", f"{LABEL[name]} scores {len(s)} model(s).", len(s))
    pick = mean.loc[s.index[s == s.max()]].idxmin()
    other = mean.drop(pick).idxmax()
    out = gap_claim(claim, figure, statement, per_seed, other, pick, n_models=len(s))
    out["reason"] = f"{LABEL[name]} ranks {pick} first; {out['reason']}"
    return out


def rank_claim(claim: str, figure: str, statement: str, scores: pd.Series, name: str, model: str,
               paper: int) -> dict[str, Any]:  # fmt: skip
    """The rank (1 = first) score ``name`` gives ``model``: computed once on the training split, so exact; a value
    claim without a null (reproduced when it equals the paper's rank)."""
    s = oriented(scores, name)
    if model not in s.index:
        return untestable(claim, figure, statement, paper, "rank", f"{model} is not in this zoo (or {LABEL[name]} "
                          f"does not score it).", len(s))
    rank = int((s > s[model]).sum() + 1)
    v, why = judge(f"{LABEL[name]}'s rank of {model} among {len(s)} models", rank, rank, rank, paper, null=None)
    return row(claim, figure, statement, paper, "rank", rank, rank, rank, len(s), v, why)


def collapse_claims(diagnostics: pd.DataFrame, model: str) -> list[dict[str, Any]]:
    """Figure 1: NC1 at the last epoch over NC1 at the first (collapse: <= 0.1), and the training accuracy at the
    last epoch (terminal phase: >= 0.99; not testable without a ``train_accuracy`` column) of ``model``'s run
    (``diagnostics``: one row per epoch). One training run: the interval is the point."""
    statement = (f"Trained from scratch on its source task, {model} collapses its penultimate embeddings onto their "
                 f"class means (Figure 1): NC1 falls at least tenfold.")
    acc_statement = f"At the last epoch of Figure 1, {model} fits its training data (training accuracy >= 0.99)."
    epochs = len(diagnostics)
    if epochs < 2:
        why = f"the trajectory has {epochs} epoch(s); a first and a last are needed."
        return [untestable("fig1_nc1_ratio", "Fig. 1", statement, "≤ 0.1", "ratio", why, 1),
                untestable("fig1_train_accuracy", "Fig. 1", acc_statement, "≥ 0.99", "accuracy", why, 1)]
    nc1 = diagnostics["nc1"].to_numpy(float)
    ratio = float(nc1[-1] / nc1[0])
    v, why = judge(f"NC1 at epoch {epochs} over NC1 at epoch 1 (one run)", ratio, ratio, ratio, null=0.1, below=True)
    rows = [row("fig1_nc1_ratio", "Fig. 1", statement, "≤ 0.1", "ratio", ratio, ratio, ratio, 1, v, why)]
    if "train_accuracy" not in diagnostics:
        rows.append(untestable("fig1_train_accuracy", "Fig. 1", acc_statement, "≥ 0.99", "accuracy",
                               "the trajectory records no training accuracy.", 1))
        return rows
    acc = float(diagnostics["train_accuracy"].iloc[-1])
    v, why = judge(f"the training accuracy at epoch {epochs} (one run)", acc, acc, acc, null=0.99)
    rows.append(row("fig1_train_accuracy", "Fig. 1", acc_statement, "≥ 0.99", "accuracy", acc, acc, acc, 1, v, why))
    return rows


def dynamics_claims(history: pd.DataFrame, first: str, second: str) -> list[dict[str, Any]]:
    """Figure 4: the model a score ranks ``first`` converges faster (lower mean training loss over the epochs both
    runs have) but generalises worse (lower best validation metric) than the one it ranks ``second``; per seed the
    difference second minus first (both claims: > 0), Student-t interval over seeds. ``history``:
    :func:`nclib.pipeline.training_dynamics` of the two models."""
    rows, seeds = [], sorted(set(history["seed"]))
    claims = (("fig4_train_loss", "train_loss", "converges faster (a lower mean training loss over the epochs)",
               lambda h: h["train_loss"].mean()),
              ("fig4_val_metric", "val_metric", "generalises worse (a lower best validation metric)",
               lambda h: h["val_metric"].max()))  # fmt: skip
    for claim, measure, what, summary in claims:
        statement = f"While fine-tuning, the score's first choice {first} {what} than its second, {second}."
        diffs = []
        for seed in seeds:
            h = history[history["seed"] == seed]
            epochs = min(int((h["model"] == m).sum()) for m in (first, second))
            a, b = (h[h["model"] == m].sort_values("epoch").head(epochs) for m in (first, second))
            diffs.append(summary(b) - summary(a))
        try:
            d, low, high = seed_interval(np.array(diffs))
        except ValueError:
            rows.append(untestable(claim, "Fig. 4", statement, "> 0", measure, f"{len(seeds)} seed(s) of fine-tuning:"
                                   f" an interval over seeds needs at least 2.", 2))
            continue
        v, why = judge(f"{second} minus {first}, mean over {len(seeds)} seeds,", d, low, high)
        rows.append(row(claim, "Fig. 4", statement, "> 0", measure, d, low, high, 2, v, why))
    return rows


def dynamics_reading(rows: list[dict[str, Any]]) -> str:
    """The paper's reading of Figure 4 set against ours, from the verdicts of :func:`dynamics_claims` (one clause
    per claim: as in the paper, against it, or not settled)."""
    by = {r["measure"]: r["verdict"] for r in rows}
    words = {"train_loss": ("fits the training data faster, as in the paper", "fits the training data more slowly, "
                            "against the paper", "is not shown to fit the training data faster or slower"),
             "val_metric": ("generalises worse, as in the paper", "generalises better, against the paper",
                            "is not shown to generalise worse or better")}  # fmt: skip
    clauses = []
    for measure, (same, against, open_) in words.items():
        v = by.get(measure, "not testable")
        clauses.append(same if v == "reproduced" else against if v == "not reproduced" else open_)
    return f"the first choice {clauses[0]}, and it {clauses[1]}"


def split_claim(claim: str, figure: str, statement: str, train: pd.Series, val: pd.Series, performance: pd.Series,
                name: str) -> dict[str, Any]:  # fmt: skip
    """Section 5.1: a score on training data can mislead. r of score ``name`` computed on the validation split
    minus r on the training split (paired bootstrap over models); directional claim (> 0)."""
    h = REGISTRY[name].higher_is_better
    n = int((train.notna() & val.notna()).sum())
    if n < MIN_MODELS:
        return untestable(claim, figure, statement, "> 0", "Δr", f"{LABEL[name]} scores {n} models on both splits; "
                          f"a correlation needs at least {MIN_MODELS}.", n)
    try:
        d, low, high, n = paired_difference(pearson, val, train, performance, h, h)
    except ValueError as exc:
        return untestable(claim, figure, statement, "> 0", "Δr", f"r is undefined here ({exc}).", n)
    v, why = judge(f"r of {LABEL[name]} on validation minus on training data over {n} models", d, low, high)
    return row(claim, figure, statement, "> 0", "Δr", d, low, high, n, v, why)


def size_claim(claim: str, figure: str, statement: str, scores: pd.Series, params: pd.Series,
               performance: pd.Series, name: str) -> dict[str, Any]:  # fmt: skip
    """Section 5.1: scores do not take model size into account. Kendall tau of score ``name`` (oriented: higher is
    preferred) with the parameter count, bootstrap over models: wholly above 0, the score prefers larger models
    (no size penalty: reproduced); wholly below, it prefers smaller ones (not reproduced). Performance's own tau
    with size ends the reason, for context."""
    s = scores.dropna()
    if len(s) < MIN_MODELS or params.loc[s.index].nunique() < 2:
        return untestable(claim, figure, statement, "> 0", "τ", f"{LABEL[name]} scores {len(s)} models of "
                          f"{params.loc[s.index].nunique()} sizes; a rank correlation needs at least "
                          f"{MIN_MODELS} models and 2 sizes.", len(s))
    try:
        tau, low, high = model_interval(kendall, s, params.astype(float), REGISTRY[name].higher_is_better)
    except ValueError as exc:
        return untestable(claim, figure, statement, "> 0", "τ", f"τ is undefined here ({exc}).", len(s))
    v, why = judge(f"τ of {LABEL[name]} with the parameter count over {len(s)} models", tau, low, high)
    perf_tau = kendall(params.loc[s.index].astype(float), performance.loc[s.index])
    return row(claim, figure, statement, "> 0", "τ", tau, low, high, len(s), v,
               f"{why[:-1]} (performance's own τ with size: {_num(perf_tau)}).")


# --------------------------------------------------------------------------------------------------------------
# The ledger
# --------------------------------------------------------------------------------------------------------------
def _paper(reported: pd.DataFrame, track: str, strategy: str, score: str) -> float:
    hit = reported[(reported["figure"] == REPORTED[track]) & (reported["strategy"] == REPORTED[strategy])
                   & (reported["score"] == score)]  # fmt: skip
    if len(hit) != 1:
        raise ValueError(f"nclib/published/paper_reported.csv has {len(hit)} rows for {track}, {strategy}, {score}; "
                         f"it needs exactly one")
    return float(hit["abs_pearson"].iloc[0])


def _per_seed(profile: Profile, track: pipeline.Track, strategy: pipeline.Strategy) -> pd.DataFrame:
    runs = pipeline.transfer_results(profile, track, strategy)
    return runs.pivot_table(index="model", columns="seed", values="test_metric")


def figure_rows(profile: Profile, track: pipeline.Track) -> list[dict[str, Any]]:
    """The claims of Figure 2 (image) or 3 (audio): each score's r against the paper's, the ordering NC > LogME >
    LEEP per panel, and the top-pick claims of Section 5."""
    reported, scores = pipeline.paper_reported(), pipeline.zoo_scores(profile, track)
    label = pipeline.image_labels if track == "image" else pipeline.audio_labels
    same = balanced(label(profile, "train"))
    metric = {"accuracy": "accuracy", "auroc": "AUROC"}[pipeline.METRIC[track]]
    rows = []
    for strategy in ("linear", "finetune"):
        figure, per_seed = PANEL[track, strategy], _per_seed(profile, track, strategy)
        perf = per_seed.mean(axis=1)
        where = f"with {STRATEGY[strategy]} on the {track} zoo ({figure})"
        for name in PAPER_SCORES:
            paper = _paper(reported, track, strategy, name)
            note = (" The classes are balanced, so NC's demo variant is (C - 1) / 2 times Eq. 2 and ranks alike."
                    if name == "nc" and same else "")
            rows.append(correlation_claim(f"r_{track}_{strategy}_{name}", figure,
                                          f"{LABEL[name]} correlates with test {metric} {where}: |r| = {_num(paper)}.",
                                          scores[name], perf, name, paper, note))  # fmt: skip
            if name == "nc" and not same:
                rows.append(correlation_claim(f"r_{track}_{strategy}_nc_demo", figure,
                                              f"NC as the authors' demo computes it correlates with test {metric} "
                                              f"{where}: |r| = {_num(paper)}.", scores["nc_demo"], perf, "nc_demo",
                                              paper, " The classes are imbalanced, so the demo variant (weighted by "
                                              "class size) can rank models differently from Eq. 2."))  # fmt: skip
        for a, b in (("nc", "logme"), ("nc", "leep"), ("logme", "leep")):
            pa, pb = _paper(reported, track, strategy, a), _paper(reported, track, strategy, b)
            rows.append(ordering_claim(f"order_{track}_{strategy}_{a}_over_{b}", figure,
                                       f"{LABEL[a]} has a higher |r| than {LABEL[b]} {where}.", scores[a], scores[b],
                                       perf, (a, b), (pa, pb)))  # fmt: skip
        if track == "image":
            for name in PAPER_SCORES:
                rows.append(top_pick_claim(f"top1_image_{strategy}_{name}", "Sec. 5",
                                           f"The model {LABEL[name]} ranks first is not the best {where}, as "
                                           f"DenseNet-121 was not on CIFAR-10.", scores[name], per_seed, name))
        elif {PICK, RUNNER_UP} <= set(per_seed.index):
            rows.append(gap_claim(f"gap_audio_{strategy}_{RUNNER_UP}_over_{PICK}", "Sec. 5",
                                  f"{RUNNER_UP} outperforms {PICK} {where}.", per_seed, RUNNER_UP, PICK))
        else:
            rows.append(untestable(f"gap_audio_{strategy}_{RUNNER_UP}_over_{PICK}", "Sec. 5",
                                   f"{RUNNER_UP} outperforms {PICK} {where}.", "> 0", "gap",
                                   f"the audio zoo lacks {PICK} or {RUNNER_UP}."))
    if track == "audio":
        for name in ("logme", "nc"):
            for model, paper in ((PICK, 1), (RUNNER_UP, 2)):
                rows.append(rank_claim(f"rank_audio_{name}_{model}", "Sec. 5", f"{LABEL[name]} ranks {model} "
                                       f"{'first' if paper == 1 else 'second'} of the audio zoo.", scores[name], name,
                                       model, paper))  # fmt: skip
    return rows


def caveat_rows(profile: Profile) -> list[dict[str, Any]]:
    """The caveats of Section 5.1: scores on training versus validation data and model size (per zoo and score,
    against fine-tuned performance), and "not testable" rows for the rest."""
    rows = []
    for track in ("image", "audio"):
        train = pipeline.zoo_scores(profile, track, names=list(PAPER_SCORES))
        val = pipeline.zoo_scores(profile, track, "val", names=list(PAPER_SCORES))
        zoo = pipeline.image_zoo(profile) if track == "image" else pipeline.audio_zoo(profile)
        params = zoo.set_index("model")["params"]
        perf = _per_seed(profile, track, "finetune").mean(axis=1)
        for name in PAPER_SCORES:
            rows.append(split_claim(f"val_{track}_{name}", "Sec. 5.1", f"{LABEL[name]} computed on validation data "
                                    f"ranks the {track} zoo better for fine-tuning than on training data, which can "
                                    f"mislead.", train[name], val[name], perf, name))  # fmt: skip
            rows.append(size_claim(f"size_{track}_{name}", "Sec. 5.1", f"{LABEL[name]} takes no account of model size"
                                   f" on the {track} zoo: it does not prefer smaller models.", train[name], params,
                                   perf, name))  # fmt: skip
    rows += [
        untestable("caveat_simple", "Sec. 5.1", "Simple variability analysis (NC) makes complex probabilistic "
                   "estimates (LEEP, LogME) unnecessary.", "question", "—", "a question, not a measurement; its "
                   "evidence is the order_* rows (NC against LogME and LEEP)."),
        untestable("caveat_generic", "Sec. 5.1", "Scores built on class separability do not measure transferability "
                   "to generative, clustering or segmentation tasks.", "argument", "—", "every downstream task of "
                   "nclib's profiles is a classification task."),
        untestable("caveat_scarcity", "Sec. 5.1", "Scarce training data (971 coughs) amplifies the gap between a "
                   "score on training data and held-out performance.", "argument", "—", "the ledger has one "
                   "training-set size per profile; the claim needs scores and transfers at several sizes."),
    ]  # fmt: skip
    return rows


def ledger(profile: Profile) -> pd.DataFrame:
    """Every claim of the paper that the ledger tracks, one row each (:data:`COLUMNS`), from the cached pipeline
    (runs what is not cached): Figures 1-4, Section 5's top picks and Section 5.1's caveats."""
    trajectory = pipeline.collapse_trajectory(profile)
    rows = collapse_claims(trajectory["diagnostics"], trajectory["model"])
    rows += figure_rows(profile, "image")
    rows += figure_rows(profile, "audio")
    pair = pipeline.figure4_models(profile)  # the two audio models NC ranks first and second
    if len(pair) == 2:
        rows += dynamics_claims(pipeline.training_dynamics(profile, pair), *pair)
    rows += caveat_rows(profile)
    return pd.DataFrame(rows, columns=list(COLUMNS))


# --------------------------------------------------------------------------------------------------------------
# The ledger on a page (its figure: nclib.plots.plot_claims)
# --------------------------------------------------------------------------------------------------------------
def summary(table: pd.DataFrame) -> str:
    """One sentence counting the verdicts of ``table`` (rows of the ledger) and naming the claims of each."""
    parts = []
    for v in VERDICTS:
        ids = list(table.loc[table["verdict"] == v, "claim"])
        if ids:
            parts.append(f"{len(ids)} {v} ({', '.join(f'`{c}`' for c in ids)})")
    return f"Of these {len(table)} claims, " + "; ".join(parts) + "." if parts else "There are no claims here."


def display_table(table: pd.DataFrame) -> pd.DataFrame:
    """The ledger narrowed for a page: claim, paper (numbers to 2 decimals), ours ("r = 0.52 [0.10, 0.95]"; "—"
    when not testable), verdict, reason."""
    ours = [f"{m} = {int(o) if m == 'rank' else interval_text(o, lo, hi)}" if math.isfinite(lo) else "—"
            for m, o, lo, hi in zip(table["measure"], table["ours"], table["low"], table["high"], strict=True)]
    paper = [_num(p) if isinstance(p, int | float) else str(p) for p in table["paper"]]
    return table.assign(ours=ours, paper=paper)[["claim", "paper", "ours", "verdict", "reason"]]
